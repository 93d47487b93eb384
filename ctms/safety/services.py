"""Serious adverse events and their expedited reporting clocks.

Day 0 is the day the sponsor became aware. A serious *unexpected* event is due to the
regulator within ``fatal_days`` (7) calendar days if fatal or life-threatening, else within
``other_days`` (15); both are configurable per study. An expected event has no expedited
clock. The submission date and the filed report (SAE Report, 07.02.02) close the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.safety.models import SaeClock, SeriousAdverseEvent
from ctms.subjects.models import Subject
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents import services as docs
from etmf.errors import InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site

FATAL_DAYS, OTHER_DAYS = 7, 15
#: TMF Reference Model 3.3.1: SAE Report (zone 07, 07.02.02).
REPORT_ARTIFACT = "153"


def set_clock(uow: UnitOfWork, access: Access, study_id: int, *, fatal_days: int,
              other_days: int) -> None:
    access.require(Permission.MANAGE_STUDY, study_id)
    if not (1 <= fatal_days <= 90 and 1 <= other_days <= 90):
        raise ValidationError("Reporting clocks are 1 to 90 calendar days.")
    uow.emit("sae_clock", study_id, "safety.clock_set",
             {"study_id": study_id, "fatal_days": fatal_days, "other_days": other_days},
             study_id=study_id)


def clock_of(session: Session, study_id: int) -> tuple[int, int]:
    row = session.get(SaeClock, study_id)
    return (row.fatal_days, row.other_days) if row else (FATAL_DAYS, OTHER_DAYS)


def clock_days(fatal_days: int, other_days: int, *, fatal: bool, life_threatening: bool,
               expected: bool) -> int | None:
    """The expedited reporting clock of one event, or None when none applies."""
    if expected:
        return None
    return fatal_days if (fatal or life_threatening) else other_days


@dataclass(frozen=True)
class NewSae:
    site_id: int
    term: str
    seriousness: str
    awareness_on: date
    fatal: bool = False
    life_threatening: bool = False
    expected: bool = False
    subject_id: int | None = None
    narrative: str = ""


def report_sae(uow: UnitOfWork, access: Access, cmd: NewSae) -> int:
    site = uow.session.get(Site, cmd.site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.REPORT_SAFETY, site.study_id, site.id)
    term = " ".join(cmd.term.split())
    seriousness = " ".join(cmd.seriousness.split())
    if not term or len(term) > 300:
        raise ValidationError("Give the event term (at most 300 characters).")
    if cmd.fatal:
        seriousness = seriousness or "Results in death"
    if not seriousness or len(seriousness) > 200:
        raise ValidationError("Give the seriousness criterion (e.g. hospitalisation).")
    if cmd.awareness_on > uow.now.date():
        raise ValidationError(f"The awareness date {cmd.awareness_on.isoformat()} is in the "
                              "future.")
    if cmd.subject_id is not None:
        subject = uow.session.get(Subject, cmd.subject_id)
        if subject is None or subject.site_id != site.id:
            raise ValidationError("The subject is not one of this site.")
    days = clock_days(*clock_of(uow.session, site.study_id), fatal=cmd.fatal,
                      life_threatening=cmd.life_threatening, expected=cmd.expected)
    sae_id = uow.allocate_id(SeriousAdverseEvent)
    uow.emit("sae", sae_id, "safety.sae_reported", {
        "study_id": site.study_id, "site_id": site.id, "subject_id": cmd.subject_id,
        "term": term, "seriousness": seriousness, "fatal": cmd.fatal,
        "life_threatening": cmd.life_threatening, "expected": cmd.expected,
        "awareness_on": cmd.awareness_on.isoformat(), "clock_days": days,
        "due_on": (cmd.awareness_on + timedelta(days=days)).isoformat() if days else None,
        "narrative": cmd.narrative.strip()[:8000] or None,
    }, expected_version=0, study_id=site.study_id)
    return sae_id


def load_sae(session: Session, access: Access, sae_id: int,
             permission: Permission = Permission.VIEW_STUDY) -> SeriousAdverseEvent:
    sae = session.get(SeriousAdverseEvent, sae_id)
    if sae is None or sae.study_id not in access.study_ids():
        raise NotFound("There is no such SAE.")
    access.require(permission, sae.study_id, sae.site_id)
    return sae


def record_submission(uow: UnitOfWork, access: Access, sae_id: int, *, submitted_on: date,
                      report: docs.StoredFile | None = None) -> int | None:
    """Record that the report went to the regulator; the file is filed at 07.02.02."""
    sae = load_sae(uow.session, access, sae_id, Permission.REPORT_SAFETY)
    if sae.submitted_on is not None:
        raise InvalidTransition(f"This SAE was submitted on {sae.submitted_on.isoformat()}.")
    if submitted_on > uow.now.date() or submitted_on < sae.awareness_on:
        raise ValidationError("The submission date must be between awareness and today.")
    doc_id = None
    if report is not None:
        doc_id = docs.file_document(uow, access, docs.FileDocument(
            study_id=sae.study_id, artifact=REPORT_ARTIFACT, level="site", site_id=sae.site_id,
            title=f"SAE report {sae.id}: {sae.term}"[:500], file=report,
            document_date=submitted_on))
    uow.emit("sae", sae.id, "safety.sae_submitted",
             {"submitted_on": submitted_on.isoformat(), "report_document_id": doc_id},
             expected_version=sae.version, study_id=sae.study_id)
    return doc_id


def days_left(sae: SeriousAdverseEvent, today: date) -> int | None:
    return (sae.due_on - today).days if sae.due_on else None


def clock_state(sae: SeriousAdverseEvent, today: date) -> str:
    """What a person reads in the list: due in N days, due today, overdue, submitted …"""
    if sae.due_on is None:
        return "no expedited report"
    if sae.submitted_on is not None:
        return "submitted on time" if sae.submitted_on <= sae.due_on else "submitted late"
    left = (sae.due_on - today).days
    if left > 1:
        return f"due in {left} days"
    if left == 1:
        return "due tomorrow"
    if left == 0:
        return "due today"
    return f"overdue by {-left} day{'s' if left < -1 else ''}"


def is_late(sae: SeriousAdverseEvent, today: date) -> bool:
    if sae.due_on is None:
        return False
    return (sae.submitted_on or today) > sae.due_on


def saes(session: Session, study_id: int, site_ids: frozenset[int] | None = None
         ) -> list[SeriousAdverseEvent]:
    q = select(SeriousAdverseEvent).where(SeriousAdverseEvent.study_id == study_id)
    if site_ids is not None:
        q = q.where(SeriousAdverseEvent.site_id.in_(list(site_ids)))
    return list(session.scalars(q.order_by(SeriousAdverseEvent.awareness_on.desc(),
                                           SeriousAdverseEvent.id.desc())))
