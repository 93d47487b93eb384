"""Import an ODM export: a dry run lists what would change and what is unknown; the import
applies the same changes in one transaction; importing the same data twice changes nothing.

Each change goes through the subject commands (``change_status`` and ``complete_visit`` with
``source="edc"``), so the consent, window and date rules of the CTMS apply to EDC data too;
a change they refuse is listed as a problem and not made. A dry run runs exactly the same
commands in a transaction that is never committed, so what it lists is what the import does.

Matching: ``SubjectKey`` is the subject number; an event matches a visit of the schedule by
code or name, after dropping an OID prefix (``SE.``, ``Event.``) and REDCap's arm suffix
(``_arm_1``) — ``SE.V2``, ``v2_arm_1`` and an event defined with Name "Week 2" all match.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from sqlalchemy import select

from ctms.edc.models import EdcImport
from ctms.edc.odm import OdmData, parse_date, read_odm
from ctms.subjects import services as subj
from ctms.subjects.models import Subject, Visit, VisitDefinition
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.errors import EtmfError, ValidationError

_ARM = re.compile(r"_arm_\d+$", re.IGNORECASE)
#: Order of status changes around visits: enrollment plans the visits, an end closes them.
_BEFORE_VISITS = ("enrolled", "screen_failed")


@dataclass(frozen=True)
class Change:
    subject: str
    what: str


@dataclass(frozen=True)
class Problem:
    kind: str  # entity | unknown_subject | unknown_event | malformed_date | missing_date |
    #            conflict | refused
    subject: str | None
    message: str


@dataclass
class ImportReport:
    filename: str
    sha256: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unchanged: int = 0
    subjects: int = 0
    imported: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"filename": self.filename, "sha256": self.sha256, "dry_run": self.dry_run,
                "imported": self.imported, "subjects": self.subjects,
                "unchanged": self.unchanged,
                "changes": [{"subject": c.subject, "change": c.what} for c in self.changes],
                "problems": [{"kind": p.kind, "subject": p.subject, "message": p.message}
                             for p in self.problems]}


def _norm(text: str) -> str:
    text = text.rsplit(".", 1)[-1] if "." in text else text
    return re.sub(r"[^A-Z0-9]", "", _ARM.sub("", text).upper())


def _visit_codes(uow: UnitOfWork, study_id: int, odm: OdmData) -> dict[str, str]:
    """Normalised event OID / unique name / defined name → visit code."""
    by: dict[str, str] = {}
    for d in uow.session.scalars(select(VisitDefinition)
                                 .where(VisitDefinition.study_id == study_id)):
        by[_norm(d.code)] = d.code
        by.setdefault(_norm(d.name), d.code)
    for oid, name in odm.event_names.items():
        if _norm(name) in by:
            by.setdefault(_norm(oid), by[_norm(name)])
    return by


def import_odm(uow: UnitOfWork, access: Access, study_id: int, data: bytes, *,
               filename: str = "odm.xml", dry_run: bool = True,
               report_unreadable: bool = False) -> ImportReport:
    """Dry-run or import an ODM file; the caller commits only when ``report.imported``.

    A file that is not ODM at all raises :class:`ValidationError`, or with
    ``report_unreadable`` comes back as a report whose one problem says why (the API)."""
    access.require(Permission.MANAGE_SUBJECTS, study_id)
    report = ImportReport(filename=filename[:255], sha256=hashlib.sha256(data).hexdigest(),
                          dry_run=dry_run)
    try:
        odm = read_odm(data)
    except ValidationError as unreadable:
        if not report_unreadable:
            raise
        report.problems.append(Problem("unreadable", None, unreadable.message))
        return report
    report.problems += [Problem("entity", None, f"The file declares {e}; it was not resolved "
                                "(entities are never read or expanded).")
                        for e in odm.entities]
    scope = access.site_scope(study_id)
    subjects = {s.number: s for s in uow.session.scalars(
        select(Subject).where(Subject.study_id == study_id))
        if scope is None or s.site_id in scope}
    codes = _visit_codes(uow, study_id, odm)
    known = []
    for key in dict.fromkeys(odm.subjects):
        if key in subjects:
            known.append(key)
        else:
            report.problems.append(Problem("unknown_subject", key or None, (
                f"Subject {key or '(no SubjectKey)'} is not a subject of this study"
                + (" at your sites" if scope is not None else "") + "; screen them first.")))
    report.subjects = len(known)
    for key in known:
        _import_subject(uow, access, subjects[key], odm, codes, report)
    if not dry_run and report.changes:
        import_id = uow.allocate_id(EdcImport)
        uow.emit("edc_import", import_id, "edc.imported",
                 {"study_id": study_id, "filename": report.filename, "sha256": report.sha256,
                  "changes": len(report.changes), "problems": len(report.problems)},
                 expected_version=0, study_id=study_id)
        report.imported = True
    return report


def _try(uow: UnitOfWork, report: ImportReport, number: str, what: str, fn, *args,  # type: ignore[no-untyped-def]
         **kwargs) -> None:
    try:
        fn(uow, *args, **kwargs)
    except EtmfError as refused:
        report.problems.append(Problem("refused", number, f"{what}: {refused.message}"))
    else:
        report.changes.append(Change(number, what))


def _status(uow: UnitOfWork, access: Access, subject: Subject, odm: OdmData,
            report: ImportReport, phase: tuple[str, ...] | None) -> None:
    for s in odm.statuses:
        if s.subject_key != subject.number or (phase is not None and s.status not in phase) \
                or (phase is None and s.status in _BEFORE_VISITS):
            continue
        label = subj.STATUS_LABELS_SUBJECT[s.status]
        on = parse_date(s.date_text)
        if on is None:
            report.problems.append(Problem("malformed_date", subject.number, (
                f"{s.item_oid} = {s.date_text!r} is not a date (YYYY-MM-DD); "
                f"{label.lower()} not recorded.")))
            continue
        reached = {"enrolled": subject.enrolled_on, "screen_failed": None,
                   "completed": None, "discontinued": None}.get(s.status)
        if subject.status == s.status or reached is not None:
            if (reached or subject.ended_on) != on:
                report.problems.append(Problem("conflict", subject.number, (
                    f"The EDC says {label.lower()} on {on.isoformat()}; the CTMS has "
                    f"{(reached or subject.ended_on or on).isoformat()}. Not changed.")))
            else:
                report.unchanged += 1
            continue
        _try(uow, report, subject.number, f"{label} on {on.isoformat()}",
             lambda u, to, **kw: subj.change_status(u, access, subject.id, to, **kw),
             s.status, effective_on=on, source="edc",
             reason=(s.reason or "Reported by the EDC") if s.status in (
                 "screen_failed", "discontinued") else None)


def _import_subject(uow: UnitOfWork, access: Access, subject: Subject, odm: OdmData,
                    codes: dict[str, str], report: ImportReport) -> None:
    _status(uow, access, subject, odm, report, _BEFORE_VISITS)
    for ev in odm.events:
        if ev.subject_key != subject.number:
            continue
        code = codes.get(_norm(ev.event_name)) or codes.get(_norm(ev.event_oid))
        if code is None:
            if ev.date_text is not None:  # events without a date are forms, not visits
                report.problems.append(Problem("unknown_event", subject.number, (
                    f"Event {ev.event_name} matches no visit of the schedule.")))
            continue
        if ev.date_text is None:
            continue
        on = parse_date(ev.date_text)
        if on is None:
            report.problems.append(Problem("malformed_date", subject.number, (
                f"Visit {code}: {ev.date_text!r} is not a date (YYYY-MM-DD); not recorded.")))
            continue
        visit = uow.session.scalar(select(Visit).where(Visit.subject_id == subject.id,
                                                       Visit.code == code))
        if visit is None:
            report.problems.append(Problem("refused", subject.number, (
                f"Visit {code} on {on.isoformat()}: the subject has no planned visit {code} "
                "(not enrolled?).")))
        elif visit.status == "completed":
            if visit.completed_on == on:
                report.unchanged += 1
            else:
                report.problems.append(Problem("conflict", subject.number, (
                    f"Visit {code}: the EDC says {on.isoformat()}, the CTMS has "
                    f"{visit.completed_on.isoformat() if visit.completed_on else '?'}. "
                    "Not changed.")))
        else:
            _try(uow, report, subject.number, f"Visit {code} completed on {on.isoformat()}",
                 lambda u, **kw: subj.complete_visit(u, access, visit.id, **kw),  # noqa: B023
                 completed_on=on, source="edc")
    _status(uow, access, subject, odm, report, None)


def imports(session, study_id: int) -> list[EdcImport]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(EdcImport).where(EdcImport.study_id == study_id)
                                .order_by(EdcImport.id.desc())))
