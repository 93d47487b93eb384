"""Monitoring visits: plan per site, record what was seen, file the signed report in the TMF.

A visit is planned (type, mode, date, CRA), then recorded once (attendees, subjects and
documents reviewed, findings with category and severity, action items with owner and due
date). Its report is a PDF generated from the record, filed at the Monitoring Visit Report
artifact (05.04.03) of the site, sent to QC and put to a sequential signature request: the
CRA signs as author, then the study manager as reviewer. The follow-up letter to the site
(findings, action items with owners and due dates) is generated likewise, signed by the CRA
and filed at Monitoring Visit Follow-up Documentation (05.04.12).

The next visit of a site is due ``interval_weeks`` after its last recorded visit (or after
activation, before any visit), or on the day the ``every_subjects``-th new subject since that
visit was screened, whichever comes first. A recorded visit's report is overdue when it is
not filed ``report_days`` after the visit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctms.monitoring.models import ActionItem, Finding, MonitoringRule, MonitoringVisit
from ctms.subjects.models import Subject
from etmf.accounts.access import Access
from etmf.accounts.models import User
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents import services as docs
from etmf.documents.lifecycle import Action
from etmf.errors import Conflict, InvalidTransition, NotFound, ValidationError
from etmf.mail import Mail
from etmf.studies.models import Site
from etmf.workflows import services as workflow

KINDS = {"qualification": "Qualification", "initiation": "Initiation", "routine": "Routine",
         "close_out": "Close-out"}
MODES = {"on_site": "On-site", "remote": "Remote", "centralised": "Centralised"}
SEVERITIES = {"minor": "Minor", "major": "Major", "critical": "Critical"}
CATEGORIES = {"consent": "Informed consent", "eligibility": "Eligibility",
              "source_data": "Source data verification", "safety": "Safety reporting",
              "ip": "Investigational product", "essential_documents": "Essential documents",
              "other": "Other"}
#: TMF Reference Model 3.3.1: Monitoring Visit Report (zone 05, 05.04.03).
REPORT_ARTIFACT = "107"
#: TMF Reference Model 3.3.1: Monitoring Visit Follow-up Documentation (zone 05, 05.04.12).
LETTER_ARTIFACT = "241"
#: Days after the visit by which its report is due, when the study sets none.
REPORT_DAYS = 14


def _text(value: str | None, limit: int, what: str, *, required: bool = False) -> str | None:
    text = " ".join((value or "").split()) if limit <= 300 else (value or "").strip()
    if required and not text:
        raise ValidationError(f"Give the {what}.")
    if len(text) > limit:
        raise ValidationError(f"The {what} is longer than {limit} characters.")
    return text or None


def set_rule(uow: UnitOfWork, access: Access, study_id: int, interval_weeks: int | None,
             every_subjects: int | None = None, report_days: int | None = None) -> None:
    """Each site of the study is due a visit every ``interval_weeks`` weeks after its last
    one, or once ``every_subjects`` new subjects were screened since it, whichever comes
    first (either may be None, not both); its report is due ``report_days`` after the visit
    (None: :data:`REPORT_DAYS`)."""
    access.require(Permission.MANAGE_STUDY, study_id)
    if interval_weeks is None and every_subjects is None:
        raise ValidationError("Give the visit interval in weeks, the number of new subjects, "
                              "or both.")
    if interval_weeks is not None and not 1 <= interval_weeks <= 104:
        raise ValidationError("The visit interval must be 1 to 104 weeks.")
    if every_subjects is not None and not 1 <= every_subjects <= 1000:
        raise ValidationError("The number of new subjects must be 1 to 1000.")
    if report_days is not None and not 1 <= report_days <= 90:
        raise ValidationError("The report target must be 1 to 90 days after the visit.")
    uow.emit("monitoring_rule", study_id, "monitoring.rule_set",
             {"study_id": study_id, "interval_weeks": interval_weeks,
              "every_subjects": every_subjects, "report_days": report_days},
             study_id=study_id)


def rule_of(session: Session, study_id: int) -> MonitoringRule | None:
    return session.get(MonitoringRule, study_id)


def plan_visit(uow: UnitOfWork, access: Access, *, site_id: int, kind: str, mode: str,
               planned_on: date, cra_user_id: int) -> int:
    site = uow.session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.RECORD_MONITORING, site.study_id, site.id)
    if kind not in KINDS:
        raise ValidationError(f"Choose the visit type: {', '.join(KINDS.values())}.")
    if mode not in MODES:
        raise ValidationError(f"Choose how the visit is made: {', '.join(MODES.values())}.")
    cra = uow.session.get(User, cra_user_id)
    if cra is None or not cra.active or not workflow.access_of(uow.session, cra).can(
            Permission.RECORD_MONITORING, site.study_id, site.id):
        raise ValidationError("The CRA must be an active monitor of this site.")
    visit_id = uow.allocate_id(MonitoringVisit)
    uow.emit("monitoring_visit", visit_id, "monitoring.visit_planned",
             {"study_id": site.study_id, "site_id": site.id, "kind": kind, "mode": mode,
              "planned_on": planned_on.isoformat(), "cra_user_id": cra.id,
              "cra_name": cra.full_name}, expected_version=0, study_id=site.study_id)
    return visit_id


def load_visit(session: Session, access: Access, visit_id: int,
               permission: Permission = Permission.VIEW_STUDY) -> MonitoringVisit:
    visit = session.get(MonitoringVisit, visit_id)
    if visit is None or visit.study_id not in access.study_ids():
        raise NotFound("There is no such monitoring visit.")
    scope = access.site_scope(visit.study_id)
    if scope is not None and visit.site_id not in scope:
        raise NotFound("There is no such monitoring visit.")
    access.require(permission, visit.study_id, visit.site_id)
    return visit


@dataclass(frozen=True)
class NewFinding:
    category: str
    severity: str
    description: str


@dataclass(frozen=True)
class NewActionItem:
    description: str
    owner: str
    due_on: date


@dataclass(frozen=True)
class VisitRecord:
    visited_on: date
    attendees: str
    subjects_reviewed: str = ""
    documents_reviewed: str = ""
    summary: str = ""
    findings: tuple[NewFinding, ...] = field(default_factory=tuple)
    action_items: tuple[NewActionItem, ...] = field(default_factory=tuple)


def record_visit(uow: UnitOfWork, access: Access, visit_id: int, rec: VisitRecord) -> None:
    """Record what happened at a planned visit (once; the report is generated from it)."""
    visit = load_visit(uow.session, access, visit_id, Permission.RECORD_MONITORING)
    if visit.status != "planned":
        raise InvalidTransition("This visit is already recorded.")
    if rec.visited_on > uow.now.date():
        raise ValidationError(f"The visit date {rec.visited_on.isoformat()} is in the future.")
    findings = []
    for n, f in enumerate(rec.findings, start=1):
        if f.category not in CATEGORIES or f.severity not in SEVERITIES:
            raise ValidationError(f"Finding {n} needs a category and a severity.")
        findings.append({"id": uow.allocate_id(Finding), "category": f.category,
                         "severity": f.severity,
                         "description": _text(f.description, 4000, f"finding {n}",
                                              required=True)})
    items = []
    for n, a in enumerate(rec.action_items, start=1):
        if a.due_on < rec.visited_on:
            raise ValidationError(f"Action item {n} is due before the visit.")
        items.append({"id": uow.allocate_id(ActionItem),
                      "description": _text(a.description, 4000, f"action item {n}",
                                           required=True),
                      "owner": _text(a.owner, 200, f"owner of action item {n}", required=True),
                      "due_on": a.due_on.isoformat()})
    uow.emit("monitoring_visit", visit.id, "monitoring.visit_recorded", {
        "visited_on": rec.visited_on.isoformat(),
        "attendees": _text(rec.attendees, 2000, "attendees", required=True),
        "subjects_reviewed": _text(rec.subjects_reviewed, 2000, "subjects reviewed"),
        "documents_reviewed": _text(rec.documents_reviewed, 2000, "documents reviewed"),
        "summary": _text(rec.summary, 8000, "summary"),
        "findings": findings, "action_items": items,
    }, expected_version=visit.version, study_id=visit.study_id)


def close_action_item(uow: UnitOfWork, access: Access, item_id: int, *,
                      closed_on: date | None = None) -> None:
    item = uow.session.get(ActionItem, item_id)
    if item is None:
        raise NotFound("There is no such action item.")
    visit = load_visit(uow.session, access, item.visit_id, Permission.RECORD_MONITORING)
    if item.status == "closed":
        raise Conflict("This action item is already closed.")
    uow.emit("monitoring_visit", visit.id, "monitoring.action_item_closed",
             {"item_id": item.id, "closed_on": (closed_on or uow.now.date()).isoformat()},
             expected_version=visit.version, study_id=visit.study_id)


def findings_of(session: Session, visit_id: int) -> list[Finding]:
    return list(session.scalars(select(Finding).where(Finding.visit_id == visit_id)
                                .order_by(Finding.id)))


def action_items_of(session: Session, visit_id: int) -> list[ActionItem]:
    return list(session.scalars(select(ActionItem).where(ActionItem.visit_id == visit_id)
                                .order_by(ActionItem.id)))


def report_pdf(session: Session, visit: MonitoringVisit, generated_by: str) -> bytes:
    """The monitoring visit report, rendered from the recorded visit."""
    from ctms.monitoring.report import render

    site = session.get(Site, visit.site_id)
    assert site is not None
    return render(visit, site, findings_of(session, visit.id),
                  action_items_of(session, visit.id), generated_by)


def file_report(uow: UnitOfWork, access: Access, visit_id: int, *, file: docs.StoredFile,
                manager_user_id: int, link: Callable[[int], str],
                notify: Callable[[Mail], None]) -> int:
    """File the generated report at the site's Monitoring Visit Report artifact, send it to
    QC and ask the CRA (author) then the manager (review) to sign it; returns the document."""
    visit = load_visit(uow.session, access, visit_id, Permission.RECORD_MONITORING)
    if visit.status != "recorded":
        raise InvalidTransition("Record the visit before generating its report"
                                if visit.status == "planned"
                                else "The report of this visit is already filed.")
    if access.user_id != visit.cra_user_id:
        raise InvalidTransition(f"The report is generated and signed by the visit's CRA, "
                                f"{visit.cra_name}.")
    return _file_for_signature(
        uow, access, visit, REPORT_ARTIFACT, "Monitoring visit report", file,
        (workflow.SignerSpec(visit.cra_user_id, "author"),
         workflow.SignerSpec(manager_user_id, "review")),
        "monitoring.report_filed", link, notify)


def _file_for_signature(uow: UnitOfWork, access: Access, visit: MonitoringVisit,
                        artifact: str, what: str, file: docs.StoredFile,
                        signers: tuple[workflow.SignerSpec, ...], event_type: str,
                        link: Callable[[int], str], notify: Callable[[Mail], None]) -> int:
    """File a PDF of the visit at the site, send it to QC, ask ``signers`` to sign it in
    turn and record on the visit that it was filed; returns the document."""
    assert visit.visited_on is not None
    site = uow.session.get(Site, visit.site_id)
    assert site is not None
    doc_id = docs.file_document(uow, access, docs.FileDocument(
        study_id=visit.study_id, artifact=artifact, level="site", site_id=site.id,
        title=f"{what}, site {site.number}, {KINDS[visit.kind].lower()} "
              f"visit {visit.visited_on.isoformat()}",
        file=file, document_date=visit.visited_on))
    docs.transition(uow, access, doc_id, Action.SUBMIT_QC, expected_version=1)
    request_id = workflow.request_signatures(uow, access, workflow.NewSignatureRequest(
        document_id=doc_id, ordering="sequential", signers=signers), link, notify)
    uow.emit("monitoring_visit", visit.id, event_type,
             {"document_id": doc_id, "signature_request_id": request_id},
             expected_version=visit.version, study_id=visit.study_id)
    return doc_id


def letter_pdf(session: Session, visit: MonitoringVisit, generated_by: str) -> bytes:
    """The follow-up letter to the site, rendered from the recorded visit."""
    from ctms.monitoring.letter import render

    site = session.get(Site, visit.site_id)
    assert site is not None
    return render(visit, site, findings_of(session, visit.id),
                  action_items_of(session, visit.id), generated_by)


def file_letter(uow: UnitOfWork, access: Access, visit_id: int, *, file: docs.StoredFile,
                link: Callable[[int], str], notify: Callable[[Mail], None]) -> int:
    """File the generated follow-up letter at the site's Monitoring Visit Follow-up
    Documentation artifact (05.04.12), send it to QC and ask the CRA to sign it as its
    author; returns the document. One letter per visit, once the visit is recorded."""
    visit = load_visit(uow.session, access, visit_id, Permission.RECORD_MONITORING)
    if visit.status == "planned":
        raise InvalidTransition("Record the visit before writing its follow-up letter.")
    if visit.letter_document_id is not None:
        raise InvalidTransition("The follow-up letter of this visit is already filed.")
    if access.user_id != visit.cra_user_id:
        raise InvalidTransition(f"The follow-up letter is signed by the visit's CRA, "
                                f"{visit.cra_name}.")
    return _file_for_signature(
        uow, access, visit, LETTER_ARTIFACT, "Monitoring visit follow-up letter", file,
        (workflow.SignerSpec(visit.cra_user_id, "author"),), "monitoring.letter_filed",
        link, notify)


def visits(session: Session, study_id: int, site_ids: frozenset[int] | None = None
           ) -> list[MonitoringVisit]:
    q = select(MonitoringVisit).where(MonitoringVisit.study_id == study_id)
    if site_ids is not None:
        q = q.where(MonitoringVisit.site_id.in_(list(site_ids)))
    return list(session.scalars(q.order_by(MonitoringVisit.planned_on.desc(),
                                           MonitoringVisit.id.desc())))


@dataclass(frozen=True)
class VisitDue:
    """When a site's next visit is due, and which rule makes it due then."""

    on: date | None
    reason: str


def visit_due(session: Session, site: Site) -> VisitDue:
    """The site's next visit under the study's rule: ``interval_weeks`` after the last
    recorded visit (or activation), or the day the ``every_subjects``-th subject was
    screened since that visit, whichever comes first."""
    rule = rule_of(session, site.study_id)
    if rule is None:
        return VisitDue(None, "no visit rule")
    last = session.scalar(select(func.max(MonitoringVisit.visited_on)).where(
        MonitoringVisit.site_id == site.id, MonitoringVisit.visited_on.is_not(None)))
    screened: list[date] = []
    if rule.every_subjects:
        q = select(Subject.screened_on).where(Subject.site_id == site.id)
        if last is not None:
            q = q.where(Subject.screened_on > last)
        screened = list(session.scalars(q.order_by(Subject.screened_on).limit(
            rule.every_subjects)))
    return _due(rule, site, last, screened)


def visits_due(session: Session, sites: Sequence[Site]) -> dict[int, VisitDue]:
    """``visit_due`` of many sites of one study, in three statements rather than three a
    site (the heat map shows every site)."""
    if not sites:
        return {}
    rule = rule_of(session, sites[0].study_id)
    if rule is None:
        return {site.id: VisitDue(None, "no visit rule") for site in sites}
    ids = sorted(site.id for site in sites)
    last: dict[int, date] = dict(session.execute(  # type: ignore[arg-type]
        select(MonitoringVisit.site_id, func.max(MonitoringVisit.visited_on)).where(
            MonitoringVisit.site_id.in_(ids), MonitoringVisit.visited_on.is_not(None))
        .group_by(MonitoringVisit.site_id)).all())
    screened: dict[int, list[date]] = {}
    if rule.every_subjects:
        for site_id, on in session.execute(select(Subject.site_id, Subject.screened_on).where(
                Subject.site_id.in_(ids)).order_by(Subject.screened_on)):
            if last.get(site_id) is None or on > last[site_id]:
                screened.setdefault(site_id, []).append(on)
    return {site.id: _due(rule, site, last.get(site.id),
                          screened.get(site.id, [])[:rule.every_subjects or 0])
            for site in sites}


def _due(rule: MonitoringRule, site: Site, last: date | None,
         screened: list[date]) -> VisitDue:
    """The due date from the rule, the last visit and the first subjects screened since it
    (at most ``every_subjects``, oldest first)."""
    start = last or site.activated_on
    candidates: list[tuple[date, str]] = []
    if rule.interval_weeks and start:
        candidates.append((start + timedelta(weeks=rule.interval_weeks),
                           f"{rule.interval_weeks} weeks after "
                           + ("the last visit" if last else "activation")))
    if rule.every_subjects and len(screened) == rule.every_subjects:
        candidates.append((screened[-1], f"{rule.every_subjects} new subject(s) screened "
                           + ("since the last visit" if last else "at the site")))
    if not candidates:
        return VisitDue(None, "no start date" if rule.interval_weeks else
                        f"fewer than {rule.every_subjects} new subject(s) since "
                        + ("the last visit" if last else "activation"))
    on, reason = min(candidates)
    return VisitDue(on, reason)


def next_visit_due(session: Session, site: Site) -> date | None:
    """When the site's next visit is due under the study's rule (None: no rule, no start)."""
    return visit_due(session, site).on


def report_due(session: Session, visit: MonitoringVisit) -> date | None:
    """The day the visit's report should be filed by (None before the visit is recorded)."""
    if visit.visited_on is None:
        return None
    rule = rule_of(session, visit.study_id)
    days = rule.report_days if rule is not None and rule.report_days else REPORT_DAYS
    return visit.visited_on + timedelta(days=days)


def overdue_reports(session: Session, study_id: int, today: date,
                    site_ids: frozenset[int] | None = None
                    ) -> list[tuple[MonitoringVisit, date]]:
    """Visits done whose report is not filed by the study's target day, with that day."""
    q = select(MonitoringVisit).where(MonitoringVisit.study_id == study_id,
                                      MonitoringVisit.status == "recorded")
    if site_ids is not None:
        q = q.where(MonitoringVisit.site_id.in_(list(site_ids)))
    out = []
    for visit in session.scalars(q.order_by(MonitoringVisit.visited_on, MonitoringVisit.id)):
        due = report_due(session, visit)
        if due is not None and due < today:
            out.append((visit, due))
    return out


def overdue_items(session: Session, study_id: int, today: date,
                  site_ids: frozenset[int] | None = None) -> list[ActionItem]:
    """Open action items past their due date, oldest first."""
    q = select(ActionItem).where(ActionItem.study_id == study_id, ActionItem.status == "open",
                                 ActionItem.due_on < today)
    if site_ids is not None:
        q = q.where(ActionItem.site_id.in_(list(site_ids)))
    return list(session.scalars(q.order_by(ActionItem.due_on, ActionItem.id)))


def overdue_action_items(session: Session, site_id: int, today: date) -> list[ActionItem]:
    return list(session.scalars(select(ActionItem).where(
        ActionItem.site_id == site_id, ActionItem.status == "open", ActionItem.due_on < today)
        .order_by(ActionItem.due_on)))
