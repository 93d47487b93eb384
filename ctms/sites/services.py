"""Site lifecycle with an essential-document gate on activation, and enrollment targets.

The gate asks a *gap finder* — ``(session, site_id, today) -> [gap]`` where a gap has
``artifact_id``, ``artifact_name``, ``problem`` and ``document_id`` — what the site still
lacks. By default that is ``etmf.tracking.readiness.site_gaps`` (the EDL); callers and tests
may pass another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.sites.models import SiteStatusChange
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.errors import InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site

STATUSES = ("feasibility", "selection", "initiation", "active", "enrolling", "closed")
STATUS_LABELS = {"feasibility": "Feasibility", "selection": "Selection",
                 "initiation": "Initiation", "active": "Active", "enrolling": "Enrolling",
                 "closed": "Closed"}
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "feasibility": ("selection", "closed"),
    "selection": ("initiation", "closed"),
    "initiation": ("active", "closed"),
    "active": ("enrolling", "closed"),
    "enrolling": ("active", "closed"),  # back to active pauses enrollment
    "closed": (),
}
#: Statuses in which a site may screen and enroll subjects.
OPEN_FOR_SUBJECTS = ("active", "enrolling")


class Gap(Protocol):
    artifact_id: str
    artifact_name: str
    problem: str
    document_id: int | None


GapFinder = Callable[[Session, int, date], Sequence[Any]]


def _readiness(name: str) -> Any:
    """A function of etmf.tracking's readiness check, when that area is installed."""
    try:
        module = importlib.import_module("etmf.tracking.readiness")
    except ModuleNotFoundError:
        return None
    return getattr(module, name, None)


def default_gap_finder() -> GapFinder | None:
    """The EDL readiness check of etmf.tracking, when that area is installed."""
    return _readiness("site_gaps")  # type: ignore[no-any-return]


class SiteNotReady(InvalidTransition):
    """Activation refused: the listed essential documents are missing or not valid."""

    def __init__(self, site: Site, gaps: Sequence[Any]) -> None:
        lines = [f"{g.artifact_name}: {g.problem}" for g in gaps]
        super().__init__(
            f"Site {site.number} cannot be activated: {len(gaps)} essential document"
            f"{'s are' if len(gaps) != 1 else ' is'} missing or not valid — "
            + "; ".join(lines) + ".",
            detail={"gaps": [{"artifact_id": g.artifact_id, "artifact_name": g.artifact_name,
                              "problem": g.problem, "document_id": g.document_id}
                             for g in gaps]})
        self.gaps = list(gaps)


def default_study_gap_finder() -> Callable[..., dict[int, Sequence[Any]]] | None:
    """The same check for many sites at once (``study_site_gaps(session, study_id, today,
    site_ids)`` → gaps by site id), when the EDL area is installed."""
    return _readiness("study_site_gaps")  # type: ignore[no-any-return]


def site_gaps(session: Session, site_id: int, today: date,
              gap_finder: GapFinder | None = None) -> list[Any]:
    finder = gap_finder or default_gap_finder()
    return list(finder(session, site_id, today)) if finder else []


def change_site_status(uow: UnitOfWork, access: Access, site_id: int, to: str, *,
                       expected_version: int, effective_on: date | None = None,
                       reason: str | None = None, gap_finder: GapFinder | None = None) -> None:
    """Move a site one step through its lifecycle; activation needs every essential document."""
    site = uow.session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.MANAGE_STUDY, site.study_id, site.id)
    if to not in STATUSES:
        raise ValidationError(f"Site status {to!r} is not one of {', '.join(STATUSES)}.")
    allowed = TRANSITIONS.get(site.status, ())
    if to not in allowed:
        raise InvalidTransition(
            f"Site {site.number} is {STATUS_LABELS.get(site.status, site.status)}; it can go to "
            + (", ".join(STATUS_LABELS[s] for s in allowed) or "no other status") + " from there.")
    today = uow.now.date()
    effective_on = effective_on or today
    if to == "active" and site.status == "initiation":
        gaps = site_gaps(uow.session, site.id, today, gap_finder)
        if gaps:
            raise SiteNotReady(site, gaps)
    if to == "closed" and not (reason and reason.strip()):
        raise ValidationError("Closing a site needs a reason.")
    change_id = uow.allocate_id(SiteStatusChange)
    uow.emit("site", site_id, "site.status_changed",
             {"study_id": site.study_id, "number": site.number, "from": site.status, "to": to,
              "effective_on": effective_on.isoformat(), "change_id": change_id},
             expected_version=expected_version, study_id=site.study_id, reason=reason)


def set_enrollment_target(uow: UnitOfWork, access: Access, site_id: int, target: int) -> None:
    site = uow.session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.MANAGE_STUDY, site.study_id, site.id)
    if not 0 <= target <= 100_000:
        raise ValidationError("The enrollment target must be a number of subjects (0 or more).")
    uow.emit("ctms_site_plan", site_id, "ctms.site_target_set",
             {"study_id": site.study_id, "site_id": site_id, "enrollment_target": target},
             study_id=site.study_id)


def status_history(session: Session, site_id: int) -> list[SiteStatusChange]:
    return list(session.scalars(select(SiteStatusChange)
                                .where(SiteStatusChange.site_id == site_id)
                                .order_by(SiteStatusChange.id)))
