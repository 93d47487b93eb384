"""Deviation events → the deviation log."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.deviations.models import Deviation
from etmf.audit.store import PendingEvent, projection


def _d(value: object) -> date:
    return date.fromisoformat(str(value))


@projection("deviation.logged")
def logged(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(Deviation(
        id=int(event.stream_id), study_id=d["study_id"], site_id=d["site_id"],
        subject_id=d["subject_id"], category=d["category"], description=d["description"],
        occurred_on=_d(d["occurred_on"]), identified_on=_d(d["identified_on"]),
        important=bool(d["important"]), capa=d["capa"], status="open",
        version=event.stream_version))


def _dev(session: Session, event: PendingEvent) -> Deviation:
    dev = session.get(Deviation, int(event.stream_id))
    assert dev is not None
    dev.version = event.stream_version
    return dev


@projection("deviation.reviewed")
def reviewed(session: Session, event: PendingEvent) -> None:
    dev = _dev(session, event)
    dev.status = "reviewed"
    dev.important = bool(event.data["important"])
    dev.capa = event.data["capa"]  # type: ignore[assignment]
    dev.reviewed_by = event.actor.name


@projection("deviation.closed")
def closed(session: Session, event: PendingEvent) -> None:
    dev = _dev(session, event)
    dev.status = "closed"
    dev.closed_on = _d(event.data["closed_on"])
