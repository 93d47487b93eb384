"""How inspection request events change the read table."""

from __future__ import annotations

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.inspection.models import InspectionRequest


@projection("inspection.request_raised")
def request_raised(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(InspectionRequest(
        id=int(event.stream_id), study_id=d["study_id"], document_id=d.get("document_id"),
        kind=d["kind"], subject=d["subject"], text=d["text"], status="open",
        raised_at=event.occurred_at, raised_by_id=event.actor.id,
        raised_by_name=event.actor.name, version=event.stream_version))
    session.flush()


@projection("inspection.request_answered")
def request_answered(session: Session, event: PendingEvent) -> None:
    req = session.get(InspectionRequest, int(event.stream_id))
    assert req is not None
    req.status = "answered"
    req.answer = event.data["answer"]
    req.answer_document_id = event.data.get("document_id")
    req.answered_at = event.occurred_at
    req.answered_by_id = event.actor.id
    req.answered_by_name = event.actor.name
    req.version = event.stream_version
