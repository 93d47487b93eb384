"""How document events change the read tables."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.documents.lifecycle import State
from etmf.documents.models import Document, DocumentVersion


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _document(session: Session, event: PendingEvent) -> Document:
    doc = session.get(Document, int(event.stream_id))
    assert doc is not None, f"{event.type} for unknown document {event.stream_id}"
    doc.version = event.stream_version
    return doc


def _add_version(session: Session, event: PendingEvent, doc_id: int, v: dict) -> None:
    session.add(
        DocumentVersion(
            id=v["id"], document_id=doc_id, number=v["number"], label=v["label"],
            status=v["status"], sha256=v["sha256"], size=v["size"], mime=v["mime"],
            filename=v["filename"], page_count=v.get("page_count"), note=v.get("note"),
            created_at=event.occurred_at, created_by_id=event.actor.id,
            created_by_name=event.actor.name,
            signed_from_version_id=v.get("signed_from_version_id"),
        )
    )


@projection("document.filed")
def document_filed(session: Session, event: PendingEvent) -> None:
    d = event.data
    doc_id = int(event.stream_id)
    session.add(
        Document(
            id=doc_id, study_id=d["study_id"], artifact_id=d["artifact_id"],
            artifact_number=d["artifact_number"], zone=d["zone"], section=d["section"],
            sub_artifact=d.get("sub_artifact"), level=d["level"],
            country_id=d.get("country_id"), site_id=d.get("site_id"), title=d["title"],
            person=d.get("person"), language=d.get("language"),
            document_date=_date(d.get("document_date")),
            expiry_date=_date(d.get("expiry_date")), status=d["version"]["status"],
            current_version_id=d["version"]["id"], created_at=event.occurred_at,
            created_by_id=event.actor.id, version=event.stream_version,
        )
    )
    session.flush()
    _add_version(session, event, doc_id, d["version"])
    session.flush()


@projection("document.version_added")
def version_added(session: Session, event: PendingEvent) -> None:
    doc = _document(session, event)
    _add_version(session, event, doc.id, event.data["version"])
    doc.current_version_id = event.data["version"]["id"]
    doc.status = event.data["version"]["status"]
    session.flush()


@projection("document.transitioned")
def document_transitioned(session: Session, event: PendingEvent) -> None:
    d = event.data
    doc = _document(session, event)
    version = session.get(DocumentVersion, d["version_id"])
    assert version is not None
    version.status = d["to"]
    if d.get("superseded_version_id"):
        old = session.get(DocumentVersion, d["superseded_version_id"])
        assert old is not None
        old.status = State.SUPERSEDED.value
    if version.id == doc.current_version_id:
        doc.status = d["to"]
    if d["to"] == State.APPROVED.value:
        doc.approved_at = event.occurred_at


_EDITABLE = {"title", "person", "language", "sub_artifact"}
_DATES = {"document_date", "expiry_date"}


@projection("document.metadata_changed")
def metadata_changed(session: Session, event: PendingEvent) -> None:
    doc = _document(session, event)
    for field, (_old, new) in event.data["changes"].items():
        if field in _DATES:
            setattr(doc, field, _date(new))
        elif field in _EDITABLE:
            setattr(doc, field, new)
        else:  # a bug, not user input: the service only emits known fields
            raise AssertionError(f"unknown document field {field}")
