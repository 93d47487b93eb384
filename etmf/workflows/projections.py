"""How signature request events change the read tables.

``signature.applied`` also marks the version that was signed as superseded by its signed
rendition (added by the ``document.version_added`` event of the same transaction), so the
document keeps exactly one current version in its state.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.documents.lifecycle import State
from etmf.documents.models import DocumentVersion
from etmf.workflows import rules
from etmf.workflows.models import RequestedSigner, SignatureRequest


def _request(session: Session, event: PendingEvent) -> SignatureRequest:
    request = session.get(SignatureRequest, int(event.stream_id))
    assert request is not None, f"{event.type} for unknown request {event.stream_id}"
    request.version = event.stream_version
    return request


@projection("signature_request.created")
def request_created(session: Session, event: PendingEvent) -> None:
    d = event.data
    request_id = int(event.stream_id)
    session.add(SignatureRequest(
        id=request_id, study_id=d["study_id"], document_id=d["document_id"],
        source_version_id=d["version_id"], current_version_id=d["version_id"],
        ordering=d["ordering"],
        due_date=date.fromisoformat(d["due_date"]) if d.get("due_date") else None,
        message=d.get("message"), status=rules.OPEN, created_at=event.occurred_at,
        created_by_id=event.actor.id, created_by_name=event.actor.name,
        version=event.stream_version))
    session.flush()
    for s in d["signers"]:
        session.add(RequestedSigner(
            id=s["id"], request_id=request_id, position=s["position"], user_id=s["user_id"],
            printed_name=s["printed_name"], meaning=s["meaning"], status=rules.PENDING))
    session.flush()


@projection("signature.applied")
def signature_applied(session: Session, event: PendingEvent) -> None:
    d = event.data
    request = _request(session, event)
    signer = session.get(RequestedSigner, d["signer_id"])
    assert signer is not None
    signer.status = rules.SIGNED
    signer.signed_at = datetime.fromisoformat(d["signed_at"])
    signer.auth_method = d["auth_method"]
    signer.certificate_serial = d["certificate_serial"]
    signer.level = d["level"]
    signer.signed_version_id = d["signed_version_id"]
    signer.result_version_id = d["result_version_id"]
    request.current_version_id = d["result_version_id"]
    signed = session.get(DocumentVersion, d["signed_version_id"])
    assert signed is not None
    signed.status = State.SUPERSEDED.value
    session.flush()
    statuses = session.scalars(select(RequestedSigner.status).where(
        RequestedSigner.request_id == request.id)).all()
    if all(status == rules.SIGNED for status in statuses):
        request.status = rules.COMPLETED
        request.closed_at = event.occurred_at


@projection("signature.declined")
def signature_declined(session: Session, event: PendingEvent) -> None:
    request = _request(session, event)
    signer = session.get(RequestedSigner, event.data["signer_id"])
    assert signer is not None
    signer.status = rules.DECLINED
    signer.declined_at = event.occurred_at
    signer.decline_reason = event.reason
    request.status = rules.DECLINED
    request.closed_at = event.occurred_at
    request.close_reason = event.reason


@projection("signature_request.cancelled")
def request_cancelled(session: Session, event: PendingEvent) -> None:
    request = _request(session, event)
    request.status = rules.CANCELLED
    request.closed_at = event.occurred_at
    request.close_reason = event.reason


@projection("signature.reminder_sent")
def reminder_sent(session: Session, event: PendingEvent) -> None:
    """A reminder changes no read table: the event itself is the record that it went out
    (etmf.workflows.reminders reads it back so each threshold is mailed once)."""


@projection("signature.rendition_filed")
def rendition_filed(session: Session, event: PendingEvent) -> None:
    """The PDF rendition (added by the ``document.version_added`` event just before) is the
    version to sign: the Word version it was rendered from is superseded by it."""
    source = session.get(DocumentVersion, event.data["rendered_from_version_id"])
    assert source is not None
    source.status = State.SUPERSEDED.value
