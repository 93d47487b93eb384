"""Protocol deviations: log per site (and subject), review, close with CAPA; rate per site.

open → reviewed (a monitor or manager confirms the classification) → closed (an important
deviation needs its corrective and preventive action before it can be closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctms.deviations.models import Deviation
from ctms.subjects.models import Subject
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.errors import InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site

CATEGORIES = {"consent": "Informed consent", "eligibility": "Eligibility",
              "visit_window": "Visit out of window", "procedure": "Procedure not done",
              "ip": "Investigational product", "safety": "Safety reporting",
              "other": "Other"}
STATUS_LABELS = {"open": "Open", "reviewed": "Reviewed", "closed": "Closed"}


@dataclass(frozen=True)
class NewDeviation:
    site_id: int
    category: str
    description: str
    occurred_on: date
    identified_on: date
    important: bool = False
    capa: str = ""
    subject_id: int | None = None


def log_deviation(uow: UnitOfWork, access: Access, cmd: NewDeviation) -> int:
    site = uow.session.get(Site, cmd.site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.RECORD_DEVIATIONS, site.study_id, site.id)
    if cmd.category not in CATEGORIES:
        raise ValidationError(f"Choose a category: {', '.join(CATEGORIES.values())}.")
    description = cmd.description.strip()
    if not description or len(description) > 4000:
        raise ValidationError("Describe the deviation (at most 4000 characters).")
    if cmd.identified_on < cmd.occurred_on:
        raise ValidationError("A deviation cannot be identified before it occurred.")
    if cmd.identified_on > uow.now.date():
        raise ValidationError("The identification date is in the future.")
    if cmd.subject_id is not None:
        subject = uow.session.get(Subject, cmd.subject_id)
        if subject is None or subject.site_id != site.id:
            raise ValidationError("The subject is not one of this site.")
    dev_id = uow.allocate_id(Deviation)
    uow.emit("deviation", dev_id, "deviation.logged", {
        "study_id": site.study_id, "site_id": site.id, "subject_id": cmd.subject_id,
        "category": cmd.category, "description": description,
        "occurred_on": cmd.occurred_on.isoformat(),
        "identified_on": cmd.identified_on.isoformat(), "important": cmd.important,
        "capa": cmd.capa.strip()[:4000] or None,
    }, expected_version=0, study_id=site.study_id)
    return dev_id


def load_deviation(session: Session, access: Access, dev_id: int,
                   permission: Permission = Permission.VIEW_STUDY) -> Deviation:
    dev = session.get(Deviation, dev_id)
    if dev is None or dev.study_id not in access.study_ids():
        raise NotFound("There is no such deviation.")
    access.require(permission, dev.study_id, dev.site_id)
    return dev


def review_deviation(uow: UnitOfWork, access: Access, dev_id: int, *, important: bool,
                     capa: str | None = None) -> None:
    dev = load_deviation(uow.session, access, dev_id, Permission.RECORD_DEVIATIONS)
    if dev.status != "open":
        raise InvalidTransition(f"This deviation is {STATUS_LABELS[dev.status]}.")
    uow.emit("deviation", dev.id, "deviation.reviewed",
             {"important": important, "capa": (capa or "").strip()[:4000] or dev.capa},
             expected_version=dev.version, study_id=dev.study_id)


def close_deviation(uow: UnitOfWork, access: Access, dev_id: int, *,
                    closed_on: date | None = None) -> None:
    dev = load_deviation(uow.session, access, dev_id, Permission.RECORD_DEVIATIONS)
    if dev.status != "reviewed":
        raise InvalidTransition("Review the deviation before closing it."
                                if dev.status == "open" else "This deviation is closed.")
    if dev.important and not dev.capa:
        raise ValidationError("An important deviation needs its corrective and preventive "
                              "action (CAPA) before it is closed.")
    uow.emit("deviation", dev.id, "deviation.closed",
             {"closed_on": (closed_on or uow.now.date()).isoformat()},
             expected_version=dev.version, study_id=dev.study_id)


def deviations(session: Session, study_id: int, site_ids: frozenset[int] | None = None
               ) -> list[Deviation]:
    q = select(Deviation).where(Deviation.study_id == study_id)
    if site_ids is not None:
        q = q.where(Deviation.site_id.in_(list(site_ids)))
    return list(session.scalars(q.order_by(Deviation.identified_on.desc(), Deviation.id.desc())))


def counts_by_site(session: Session, study_id: int) -> dict[int, int]:
    return dict(session.execute(select(Deviation.site_id, func.count()).where(
        Deviation.study_id == study_id).group_by(Deviation.site_id)).all())  # type: ignore[arg-type]
