"""How document events change the read tables."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.documents import counts  # noqa: F401 - keeps the tree's counts with every flush
from etmf.documents.lifecycle import PLACEHOLDER, SIGNPOST, State
from etmf.documents.models import Document, DocumentVersion, QcIssue


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


def _new_document(event: PendingEvent, status: str, version_id: int | None) -> Document:
    d = event.data
    return Document(
        id=int(event.stream_id), study_id=d["study_id"], artifact_id=d["artifact_id"],
        artifact_number=d["artifact_number"], zone=d["zone"], section=d["section"],
        sub_artifact=d.get("sub_artifact"), level=d["level"],
        country_id=d.get("country_id"), site_id=d.get("site_id"), title=d["title"],
        person=d.get("person"), language=d.get("language"),
        document_date=_date(d.get("document_date")),
        expiry_date=_date(d.get("expiry_date")), status=status,
        current_version_id=version_id, created_at=event.occurred_at,
        created_by_id=event.actor.id, version=event.stream_version,
        signpost_system=d.get("system"), signpost_location=d.get("location"),
    )


@projection("document.filed")
def document_filed(session: Session, event: PendingEvent) -> None:
    version = event.data["version"]
    session.add(_new_document(event, version["status"], version["id"]))
    session.flush()
    _add_version(session, event, int(event.stream_id), version)
    session.flush()


@projection("document.placeholder_created")
def placeholder_created(session: Session, event: PendingEvent) -> None:
    session.add(_new_document(event, PLACEHOLDER, None))
    session.flush()


@projection("document.signpost_created")
def signpost_created(session: Session, event: PendingEvent) -> None:
    session.add(_new_document(event, SIGNPOST, None))
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
    if d["version_id"] is None:  # a placeholder or signpost withdrawn
        doc.status = d["to"]
        return
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
    for issue in d.get("qc_issues", []):
        session.add(QcIssue(
            id=issue["id"], document_id=doc.id, study_id=doc.study_id, version_id=version.id,
            category=issue["category"], comment=issue["comment"],
            raised_at=event.occurred_at, raised_by_id=event.actor.id,
            raised_by_name=event.actor.name))
    session.flush()


@projection("document.qc_issue_answered")
def qc_issue_answered(session: Session, event: PendingEvent) -> None:
    _document(session, event)
    issue = session.get(QcIssue, event.data["issue_id"])
    assert issue is not None
    issue.response = event.data["response"]
    issue.answered_at = event.occurred_at
    issue.answered_by_id = event.actor.id
    issue.answered_by_name = event.actor.name


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
