"""Safety events → SAEs and the study's reporting clocks."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.safety.models import SaeClock, SeriousAdverseEvent
from etmf.audit.store import PendingEvent, projection


def _d(value: object) -> date | None:
    return date.fromisoformat(str(value)) if value else None


@projection("safety.clock_set")
def clock_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    row = session.get(SaeClock, d["study_id"])
    if row is None:
        session.add(SaeClock(study_id=d["study_id"], fatal_days=d["fatal_days"],
                             other_days=d["other_days"]))
    else:
        row.fatal_days, row.other_days = int(d["fatal_days"]), int(d["other_days"])  # type: ignore[arg-type]


@projection("safety.sae_reported")
def sae_reported(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(SeriousAdverseEvent(
        id=int(event.stream_id), study_id=d["study_id"], site_id=d["site_id"],
        subject_id=d["subject_id"], term=d["term"], seriousness=d["seriousness"],
        fatal=bool(d["fatal"]), life_threatening=bool(d["life_threatening"]),
        expected=bool(d["expected"]), awareness_on=_d(d["awareness_on"]),
        clock_days=d["clock_days"], due_on=_d(d["due_on"]), narrative=d["narrative"],
        version=event.stream_version))


@projection("safety.sae_submitted")
def sae_submitted(session: Session, event: PendingEvent) -> None:
    sae = session.get(SeriousAdverseEvent, int(event.stream_id))
    assert sae is not None
    sae.submitted_on = _d(event.data["submitted_on"])
    sae.report_document_id = event.data["report_document_id"]  # type: ignore[assignment]
    sae.version = event.stream_version


@projection("sae.reminder_sent")
def reminder_sent(session: Session, event: PendingEvent) -> None:
    """Nothing to project: the event itself is the record that the reminder went out."""
