"""Subject commands: screen, consent (checked against the ICF in force), enroll, visits, end.

Status: screening → screen_failed | enrolled → randomized → completed | discontinued
(enrolled may also complete or discontinue directly in a non-randomized study).
Every step is a ``subject.*`` event on the subject's stream with its effective date; the
payments and EDC-import areas add to the same stream (``complete_visit`` with a source).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.sites.services import OPEN_FOR_SUBJECTS, STATUS_LABELS
from ctms.studyplan.models import StudyDocumentVersion
from ctms.studyplan.services import version_in_force
from ctms.subjects.models import (
    Consent,
    Subject,
    SubjectStatusChange,
    Visit,
    VisitDefinition,
)
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.errors import Conflict, InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site

STATUSES = ("screening", "screen_failed", "enrolled", "randomized", "completed",
            "discontinued")
STATUS_LABELS_SUBJECT = {"screening": "Screening", "screen_failed": "Screen failure",
                         "enrolled": "Enrolled", "randomized": "Randomized",
                         "completed": "Completed", "discontinued": "Discontinued"}
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "screening": ("screen_failed", "enrolled"),
    "enrolled": ("randomized", "completed", "discontinued"),
    "randomized": ("completed", "discontinued"),
    "screen_failed": (),
    "completed": (),
    "discontinued": (),
}
#: Subjects still in the study (they must re-consent when a new ICF comes into force).
ONGOING = ("screening", "enrolled", "randomized")
#: Actions of the status form → target status.
ACTIONS = {"enroll": "enrolled", "screen_fail": "screen_failed", "complete": "completed",
           "discontinue": "discontinued"}


class ConsentRefused(ValidationError):
    code = "consent_refused"
    title = "The consent cannot be recorded"


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def load_subject(session: Session, access: Access, subject_id: int,
                 permission: Permission = Permission.VIEW_STUDY) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise NotFound("There is no such subject.")
    access.require(permission, subject.study_id, subject.site_id)
    return subject


def _not_in_future(uow: UnitOfWork, on: date, what: str) -> None:
    if on > uow.now.date():
        raise ValidationError(f"The {what} date {on.isoformat()} is in the future.")


def screen_subject(uow: UnitOfWork, access: Access, *, site_id: int, number: str,
                   screened_on: date | None = None) -> int:
    """Register a subject in screening at a site that is open for subjects."""
    site = uow.session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.MANAGE_SUBJECTS, site.study_id, site.id)
    number = number.strip()
    if not number or len(number) > 40:
        raise ValidationError("A subject needs a number (at most 40 characters).")
    if site.status not in OPEN_FOR_SUBJECTS:
        raise InvalidTransition(
            f"Site {site.number} is {STATUS_LABELS.get(site.status, site.status)}: subjects can "
            "be screened only at an active or enrolling site.")
    if uow.session.scalar(select(Subject.id).where(Subject.study_id == site.study_id,
                                                   Subject.number == number)):
        raise Conflict(f"Subject {number} already exists in this study.")
    screened_on = screened_on or uow.now.date()
    _not_in_future(uow, screened_on, "screening")
    subject_id = uow.allocate_id(Subject)
    uow.emit("subject", subject_id, "subject.screened",
             {"study_id": site.study_id, "site_id": site.id, "number": number,
              "screened_on": screened_on.isoformat(),
              "change_id": uow.allocate_id(SubjectStatusChange)},
             expected_version=0, study_id=site.study_id)
    return subject_id


def check_consent(session: Session, site: Site, version: StudyDocumentVersion,
                  on: date) -> None:
    """Refuse, with the reason, an ICF version not approved and in force at the site that day."""
    current = version_in_force(session, site.id, "icf", on)
    if current is None:
        raise ConsentRefused(
            f"No informed consent form was approved and active at site {site.number} on "
            f"{on.isoformat()}; the subject cannot be consented yet.")
    if current.id != version.id:
        raise ConsentRefused(
            f"ICF {version.label} was not the version approved and in force at site "
            f"{site.number} on {on.isoformat()}: the version in force was {current.label}. "
            f"Consent the subject on ICF {current.label}.",
            detail={"in_force": current.label, "given": version.label})


def record_consent(uow: UnitOfWork, access: Access, subject_id: int, *, icf_version_id: int,
                   consented_on: date, expected_version: int | None = None) -> int:
    subject = load_subject(uow.session, access, subject_id, Permission.MANAGE_SUBJECTS)
    version = uow.session.get(StudyDocumentVersion, icf_version_id)
    if version is None or version.study_id != subject.study_id or version.kind != "icf":
        raise NotFound("There is no such informed consent form version in this study.")
    if subject.status not in ONGOING:
        raise InvalidTransition(f"Subject {subject.number} has left the study "
                                f"({STATUS_LABELS_SUBJECT[subject.status]}).")
    _not_in_future(uow, consented_on, "consent")
    site = uow.session.get(Site, subject.site_id)
    assert site is not None
    check_consent(uow.session, site, version, consented_on)
    consent_id = uow.allocate_id(Consent)
    uow.emit("subject", subject_id, "subject.consented",
             {"consent_id": consent_id, "icf_version_id": version.id, "icf": version.label,
              "consented_on": consented_on.isoformat()},
             expected_version=subject.version if expected_version is None else expected_version,
             study_id=subject.study_id)
    return consent_id


def latest_consent(session: Session, subject_id: int) -> Consent | None:
    return session.scalars(select(Consent).where(Consent.subject_id == subject_id)
                           .order_by(Consent.consented_on.desc(), Consent.id.desc())
                           .limit(1)).first()


def needs_reconsent(session: Session, subject: Subject, today: date) -> StudyDocumentVersion | None:
    """The ICF version the subject must re-consent on, if their last consent is older."""
    if subject.status not in ONGOING:
        return None
    current = version_in_force(session, subject.site_id, "icf", today)
    last = latest_consent(session, subject.id)
    if current is None or last is None or last.icf_version_id == current.id:
        return None
    return current


def _visits_for(uow: UnitOfWork, subject: Subject, anchor: date) -> list[dict[str, Any]]:
    visits = []
    for d in uow.session.scalars(select(VisitDefinition)
                                 .where(VisitDefinition.study_id == subject.study_id)
                                 .order_by(VisitDefinition.day, VisitDefinition.id)):
        due = anchor + timedelta(days=d.day)
        visits.append({"id": uow.allocate_id(Visit), "code": d.code, "name": d.name,
                       "due_on": due.isoformat(),
                       "window_start": (due - timedelta(days=d.window_before)).isoformat(),
                       "window_end": (due + timedelta(days=d.window_after)).isoformat()})
    return visits


def change_status(uow: UnitOfWork, access: Access, subject_id: int, to: str, *,
                  effective_on: date | None = None, reason: str | None = None,
                  expected_version: int | None = None, source: str = "manual",
                  extra: dict[str, Any] | None = None, event_type: str = "subject.status_changed",
                  ) -> None:
    """Move a subject one step; enrolling needs a valid consent and plans the visits."""
    subject = load_subject(uow.session, access, subject_id, Permission.MANAGE_SUBJECTS)
    if to not in TRANSITIONS.get(subject.status, ()):
        raise InvalidTransition(
            f"Subject {subject.number} is {STATUS_LABELS_SUBJECT[subject.status]}; they cannot "
            f"become {STATUS_LABELS_SUBJECT.get(to, to)}.")
    effective_on = effective_on or uow.now.date()
    _not_in_future(uow, effective_on, "effective")
    if effective_on < subject.screened_on:
        raise ValidationError("The date is before the subject was screened.")
    if to in ("discontinued", "screen_failed") and not (reason and reason.strip()):
        raise ValidationError(f"{STATUS_LABELS_SUBJECT[to]} needs a reason.")
    data: dict[str, Any] = {"from": subject.status, "to": to,
                            "effective_on": effective_on.isoformat(),
                            "change_id": uow.allocate_id(SubjectStatusChange), "source": source,
                            **(extra or {})}
    if to == "enrolled":
        consent = latest_consent(uow.session, subject.id)
        if consent is None or consent.consented_on > effective_on:
            raise ConsentRefused(f"Subject {subject.number} has no informed consent on record "
                                 f"on {effective_on.isoformat()}; record the consent first.")
        data["visits"] = _visits_for(uow, subject, effective_on)
    uow.emit("subject", subject.id, event_type, data,
             expected_version=subject.version if expected_version is None else expected_version,
             study_id=subject.study_id, reason=reason)


def complete_visit(uow: UnitOfWork, access: Access, visit_id: int, *, completed_on: date,
                   source: str = "manual") -> bool:
    """Mark a visit done on a date; returns whether it was outside its window (flagged)."""
    visit = uow.session.get(Visit, visit_id)
    if visit is None:
        raise NotFound("There is no such visit.")
    subject = load_subject(uow.session, access, visit.subject_id, Permission.MANAGE_SUBJECTS)
    if visit.status == "completed":
        raise Conflict(f"Visit {visit.code} of subject {subject.number} is already completed.")
    _not_in_future(uow, completed_on, "visit")
    out = not (visit.window_start <= completed_on <= visit.window_end)
    uow.emit("subject", subject.id, "visit.completed",
             {"visit_id": visit.id, "code": visit.code, "completed_on": completed_on.isoformat(),
              "out_of_window": out, "source": source},
             expected_version=subject.version, study_id=subject.study_id)
    return out


@dataclass(frozen=True)
class VisitSpec:
    code: str
    name: str
    day: int
    window_before: int = 0
    window_after: int = 0


def define_visit(uow: UnitOfWork, access: Access, study_id: int, spec: VisitSpec) -> int:
    """Add a visit to the protocol's schedule (day offset from enrollment, ± window days)."""
    access.require(Permission.MANAGE_STUDY, study_id)
    code = spec.code.strip()
    if not code or len(code) > 20 or not spec.name.strip():
        raise ValidationError("A visit needs a code (at most 20 characters) and a name.")
    if not -3650 <= spec.day <= 3650 or not (0 <= spec.window_before <= 365
                                             and 0 <= spec.window_after <= 365):
        raise ValidationError("Day and window must be whole days (window 0–365).")
    if uow.session.scalar(select(VisitDefinition.id).where(
            VisitDefinition.study_id == study_id, VisitDefinition.code == code)):
        raise Conflict(f"Visit {code} is already in the schedule.")
    visit_id = uow.allocate_id(VisitDefinition)
    uow.emit("ctms_visit_definition", visit_id, "ctms.visit_defined",
             {"study_id": study_id, "code": code, "name": spec.name.strip(), "day": spec.day,
              "window_before": spec.window_before, "window_after": spec.window_after},
             expected_version=0, study_id=study_id)
    return visit_id


def schedule(session: Session, study_id: int) -> list[VisitDefinition]:
    return list(session.scalars(select(VisitDefinition)
                                .where(VisitDefinition.study_id == study_id)
                                .order_by(VisitDefinition.day, VisitDefinition.id)))
