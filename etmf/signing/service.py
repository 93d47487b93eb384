"""Signing commands: enrol a signer (identity check, acceptance, certificate), revoke,
re-authenticate a signer, and validate signed versions with the result stored as an event.

Enrolment (SIG-8): an administrator records how the user's identity was verified; the user
then accepts, once, that their electronic signature is the legally binding equivalent of
their handwritten one. Only when both are recorded is a key made and a certificate issued.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.access import Access
from etmf.accounts.models import User
from etmf.audit.store import UnitOfWork
from etmf.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from etmf.signing import pki
from etmf.signing.ca import UserIdentity
from etmf.signing.errors import SigningError
from etmf.signing.models import SignatureValidation, SigningCertificate, SigningProfile
from etmf.signing.validation import SignatureReport, validate_pdf

if TYPE_CHECKING:
    from etmf.bootstrap import Services
    from etmf.documents.models import DocumentVersion

IDENTITY_METHODS = {
    "in_person": "In person, with a government-issued photo ID",
    "video": "Video call, with a government-issued photo ID",
    "employer": "Confirmed against the employer's personnel record",
}

STATEMENT = ("I, {name}, agree that my electronic signature in this system is the legally "
             "binding equivalent of my handwritten signature (21 CFR 11.100(c)).")

REVOCATION_REASONS = {
    "superseded": "Replaced by a new certificate",
    "cessation_of_operation": "The user no longer signs (left the organisation or role)",
    "key_compromise": "The key or the password may be known to someone else",
    "affiliation_changed": "The user's name or affiliation changed",
}


class ReauthenticationFailed(SigningError):
    """The password or second factor given at signing was wrong: nothing was signed."""

    status = 401
    code = "reauthentication_failed"
    title = "Your password was not accepted"


class NotEnrolled(SigningError):
    status = 403
    code = "not_enrolled"
    title = "You cannot sign yet"


def statement_for(name: str) -> str:
    return STATEMENT.format(name=name)


def _require_admin(access: Access) -> None:
    if not access.is_admin:
        raise Forbidden("Only an administrator can do this.")


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("There is no such user.")
    return user


def profile(session: Session, user_id: int) -> SigningProfile | None:
    return session.get(SigningProfile, user_id)


def active_certificate(session: Session, user_id: int) -> SigningCertificate | None:
    return session.scalar(
        select(SigningCertificate).where(SigningCertificate.user_id == user_id,
                                         SigningCertificate.revoked_at.is_(None))
        .order_by(SigningCertificate.id.desc()).limit(1))


def certificates(session: Session, user_id: int) -> list[SigningCertificate]:
    return list(session.scalars(select(SigningCertificate).where(
        SigningCertificate.user_id == user_id).order_by(SigningCertificate.id.desc())))


def _clean(value: str | None, what: str, limit: int, required: bool = True) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError(f"{what} is required.")
    if len(text) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters.")
    return text or None


def record_identity_check(uow: UnitOfWork, svc: Services, access: Access, user_id: int, *,
                          method: str, document_seen: str, notes: str | None = None
                          ) -> SigningCertificate | None:
    """An administrator records how a user's identity was verified. Issues the certificate
    at once if the user has already accepted the statement (it cannot happen otherwise)."""
    _require_admin(access)
    user = _user(uow.session, user_id)
    if not user.active:
        raise InvalidTransition(f"The account of {user.full_name} is deactivated.")
    if method not in IDENTITY_METHODS:
        raise ValidationError(
            f"{method!r} is not an identity check method; use one of: "
            f"{', '.join(IDENTITY_METHODS)}.")
    if access.user_id == user_id:
        raise Forbidden("An administrator cannot verify their own identity; "
                        "ask another administrator.")
    current = profile(uow.session, user_id)
    uow.emit("signing_profile", user_id, "signing.identity_verified", {
        "user_id": user_id, "method": method,
        "document_seen": _clean(document_seen, "The identity document seen", 200),
        "notes": _clean(notes, "Notes", 2000, required=False),
    }, expected_version=current.version if current else 0)
    return _issue_if_ready(uow, svc, user)


def accept_statement(uow: UnitOfWork, svc: Services, access: Access, *, accepted: bool
                     ) -> SigningCertificate | None:
    """The signed-in user accepts, once, the legal equivalence of their e-signature."""
    if access.user_id is None:
        raise Forbidden("Sign in first.")
    if not accepted:
        raise ValidationError("Tick the box to accept the statement, or leave the page.")
    user = _user(uow.session, access.user_id)
    current = profile(uow.session, user.id)
    if current is None or current.identity_verified_at is None:
        raise InvalidTransition("An administrator must verify your identity before you can "
                                "accept the signature statement.")
    if current.accepted_at is not None:
        raise InvalidTransition("You have already accepted the signature statement.")
    uow.emit("signing_profile", user.id, "signing.statement_accepted",
             {"user_id": user.id, "statement": statement_for(user.full_name)},
             expected_version=current.version)
    return _issue_if_ready(uow, svc, user)


def issue_new_certificate(uow: UnitOfWork, svc: Services, access: Access, user_id: int
                          ) -> SigningCertificate:
    """An administrator issues a new certificate (after a revocation) to an enrolled user."""
    _require_admin(access)
    user = _user(uow.session, user_id)
    cert = _issue_if_ready(uow, svc, user)
    if cert is None:
        raise InvalidTransition(
            f"{user.full_name} is not enrolled: the identity check and their acceptance of "
            "the signature statement must both be recorded first.")
    return cert


def _issue_if_ready(uow: UnitOfWork, svc: Services, user: User) -> SigningCertificate | None:
    current = profile(uow.session, user.id)
    if current is None or current.identity_verified_at is None or current.accepted_at is None:
        return None
    if active_certificate(uow.session, user.id) is not None:
        return None
    ca = pki.authority(svc)
    store = pki.keystore(svc)
    key_id = f"user{user.id}-{uuid.uuid4().hex[:12]}"
    public = store.generate_key(key_id)
    cert = ca.issue_user_certificate(UserIdentity(str(user.id), user.full_name, user.email),
                                     public, now=uow.now)
    store.store_certificate(key_id, cert)
    cert_id = uow.allocate_id(SigningCertificate)
    uow.emit("signing_certificate", cert_id, "signing.certificate_issued", {
        "user_id": user.id, "key_id": key_id, "keystore": svc.settings.signing_keystore,
        "serial": f"{cert.serial_number:x}", "subject": cert.subject.rfc4514_string(),
        "fingerprint_sha256": hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }, expected_version=0)
    row = uow.session.get(SigningCertificate, cert_id)
    assert row is not None
    return row


def revoke_certificate(uow: UnitOfWork, svc: Services, access: Access, cert_id: int, *,
                       reason_code: str, reason: str | None) -> None:
    """Revoke a certificate; it signs nothing more and the published CRL lists it."""
    _require_admin(access)
    cert = uow.session.get(SigningCertificate, cert_id)
    if cert is None:
        raise NotFound("There is no such certificate.")
    if cert.revoked_at is not None:
        raise InvalidTransition("This certificate is already revoked.")
    if reason_code not in REVOCATION_REASONS:
        raise ValidationError(f"{reason_code!r} is not a revocation reason; use one of: "
                              f"{', '.join(REVOCATION_REASONS)}.")
    uow.emit("signing_certificate", cert_id, "signing.certificate_revoked",
             {"user_id": cert.user_id, "serial": cert.serial, "reason_code": reason_code},
             expected_version=cert.version, reason=reason, reason_required=True)
    # Revoked in the CA before the commit: if the commit then fails the certificate is
    # revoked without a record, which refuses signatures (safe), never the reverse.
    pki.authority(svc).revoke(int(cert.serial, 16), reason_code, uow.now)
    svc.extras.get("signing", {}).get("signers", {}).pop(cert.key_id, None)


def require_enrolled(session: Session, svc: Services, user: User, now: datetime
                     ) -> SigningCertificate:
    """The user's usable certificate, or a refusal that says what is missing (SIG-8)."""
    current = profile(session, user.id)
    if current is None or current.identity_verified_at is None:
        raise NotEnrolled("You cannot sign yet: an administrator must first record that "
                          "your identity was verified.")
    if current.accepted_at is None:
        raise NotEnrolled("You cannot sign yet: accept the electronic signature statement "
                          "on your signing profile page first.")
    cert = active_certificate(session, user.id)
    if cert is None:
        raise NotEnrolled("You have no valid signing certificate (it was revoked); ask an "
                          "administrator to issue a new one.")
    if not cert.not_before <= now <= cert.not_after:
        raise NotEnrolled("Your signing certificate has expired; ask an administrator for "
                          "a new one.")
    return cert


def verify_signer(user: User, password: str | None, totp: str | None) -> str:
    """Check the password (and the authenticator code where enrolled) given with THIS
    signature, against the user record. Returns the authentication method for /Prop_AuthType;
    raises ReauthenticationFailed. A signed-in session alone is never enough (SIG-4)."""
    from flask import current_app
    from flask_security.utils import verify_password

    if not password:
        raise ValidationError("Enter your password to sign: every signature needs it, "
                              "even when you are signed in.")
    ok = bool(user.password) and verify_password(password, user.password)
    method = "password"
    if user.tf_primary_method == "authenticator" and user.tf_totp_secret:
        method = "password+totp"
        code = (totp or "").replace(" ", "")
        if not code:
            raise ValidationError("Enter the code from your authenticator app as well.")
        factory = current_app.extensions["security"].totp_factory
        ok = factory.verify_totp(code, user.tf_totp_secret, user, window=30) and ok
    if not ok:
        raise ReauthenticationFailed(
            "The password or authenticator code is not correct (each code works once: "
            "wait for the next one if you just used it). Nothing was signed. "
            "Repeated failures lock your account.")
    return method


# ---- validation --------------------------------------------------------------------------

_WORST = ("INVALID", "REVOKED", "UNTRUSTED", "VALID")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def report_payload(report: SignatureReport) -> dict[str, Any]:
    return {
        "field_name": report.field_name, "signer_name": report.signer_name,
        "signing_time": _iso(report.signing_time),
        "timestamp_time": _iso(report.timestamp_time), "meaning": report.meaning,
        "auth_type": report.auth_type, "auth_seconds": report.auth_seconds,
        "certificate_serial": f"{report.certificate_serial:x}", "intact": report.intact,
        "valid": report.valid, "trusted": report.trusted, "revoked": report.revoked,
        "coverage": report.coverage, "modification_level": report.modification_level,
        "level": report.level, "status": report.status, "summary": report.summary,
    }


def overall_status(reports: list[dict[str, Any]]) -> str:
    if not reports:
        return "UNSIGNED"
    return min((r["status"] for r in reports), key=_WORST.index)


def validate_version(uow: UnitOfWork, svc: Services, version: DocumentVersion
                     ) -> SignatureValidation:
    """Validate every signature in the version's exact bytes and store the result."""
    if version.mime != "application/pdf":
        raise ValidationError("Only PDF versions carry electronic signatures.")
    with svc.blobs.open(version.sha256) as fh:
        data = fh.read()
    roots, crls = pki.trust_roots(svc), pki.current_crls(svc)
    reports = [report_payload(r) for r in pki.off_event_loop(
        lambda: validate_pdf(data, roots, crls=crls, now=uow.now))]
    validation_id = uow.allocate_id(SignatureValidation)
    uow.emit("signature_validation", validation_id, "signature.validated", {
        "document_id": version.document_id, "version_id": version.id,
        "sha256": version.sha256, "overall": overall_status(reports), "signatures": reports,
    }, expected_version=0, study_id=version.document.study_id)
    row = uow.session.get(SignatureValidation, validation_id)
    assert row is not None
    return row


def latest_validation(session: Session, version_id: int) -> SignatureValidation | None:
    return session.scalar(select(SignatureValidation).where(
        SignatureValidation.version_id == version_id)
        .order_by(SignatureValidation.id.desc()).limit(1))


@dataclass(frozen=True)
class StoredValidation:
    checked_at: datetime
    checked_by: str
    overall: str
    signatures: list[dict[str, Any]]


def stored(validation: SignatureValidation) -> StoredValidation:
    return StoredValidation(validation.checked_at, validation.checked_by_name,
                            validation.overall, json.loads(validation.report))


def certificate_pem(svc: Services, cert: SigningCertificate) -> str:
    loaded: x509.Certificate = pki.authority(svc).issued_certificate(int(cert.serial, 16))
    return loaded.public_bytes(serialization.Encoding.PEM).decode("ascii")
