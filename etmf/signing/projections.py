"""How signing events change the read tables (the only code that does)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.signing.models import SignatureValidation, SigningCertificate, SigningProfile


def _profile(session: Session, event: PendingEvent) -> SigningProfile:
    user_id = int(event.stream_id)
    found = session.get(SigningProfile, user_id)
    if found is None:
        found = SigningProfile(user_id=user_id, version=0)
        session.add(found)
    found.version = event.stream_version
    return found


@projection("signing.identity_verified")
def identity_verified(session: Session, event: PendingEvent) -> None:
    p = _profile(session, event)
    p.identity_method = event.data["method"]
    p.identity_document = event.data["document_seen"]
    p.identity_notes = event.data.get("notes")
    p.identity_verified_at = event.occurred_at
    p.identity_verified_by_id = event.actor.id
    p.identity_verified_by_name = event.actor.name
    session.flush()


@projection("signing.statement_accepted")
def statement_accepted(session: Session, event: PendingEvent) -> None:
    p = _profile(session, event)
    p.accepted_statement = event.data["statement"]
    p.accepted_at = event.occurred_at
    session.flush()


@projection("signing.certificate_issued")
def certificate_issued(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(SigningCertificate(
        id=int(event.stream_id), user_id=d["user_id"], key_id=d["key_id"],
        keystore=d["keystore"], serial=d["serial"], subject=d["subject"],
        fingerprint_sha256=d["fingerprint_sha256"],
        not_before=datetime.fromisoformat(d["not_before"]),
        not_after=datetime.fromisoformat(d["not_after"]),
        issued_at=event.occurred_at, issued_by_name=event.actor.name,
        version=event.stream_version))
    session.flush()


@projection("signing.certificate_revoked")
def certificate_revoked(session: Session, event: PendingEvent) -> None:
    cert = session.get(SigningCertificate, int(event.stream_id))
    assert cert is not None
    cert.revoked_at = event.occurred_at
    cert.revocation_reason = event.reason
    cert.revoked_by_name = event.actor.name
    cert.version = event.stream_version


@projection("signature.validated")
def signature_validated(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(SignatureValidation(
        id=int(event.stream_id), document_id=d["document_id"], version_id=d["version_id"],
        sha256=d["sha256"], checked_at=event.occurred_at, checked_by_name=event.actor.name,
        overall=d["overall"],
        report=json.dumps(d["signatures"], sort_keys=True, separators=(",", ":"))))
    session.flush()


@projection("signature.auth_failed")
def signature_auth_failed(session: Session, event: PendingEvent) -> None:
    """Recorded for the audit trail only; the failed-login count is the accounts event's."""
