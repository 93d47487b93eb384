"""Read tables of signing: who may sign (identity check, acceptance, certificates) and the
stored validation results of signed versions. All are projections of events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class SigningProfile(Base):
    """One per user who was ever enrolled for signing (SIG-8)."""

    __tablename__ = "signing_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    identity_method: Mapped[str | None] = mapped_column(String(80))
    identity_document: Mapped[str | None] = mapped_column(String(200))
    identity_notes: Mapped[str | None] = mapped_column(Text)
    identity_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    identity_verified_by_id: Mapped[int | None] = mapped_column(Integer)
    identity_verified_by_name: Mapped[str | None] = mapped_column(String(200))
    #: The exact statement the user accepted, and when.
    accepted_statement: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)


class SigningCertificate(Base):
    """A certificate the system CA issued to a user; the key stays in the key store."""

    __tablename__ = "signing_certificates"
    __table_args__ = (Index("ix_signing_certificates_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key_id: Mapped[str] = mapped_column(String(64))
    keystore: Mapped[str] = mapped_column(String(20))
    #: Serial number in lower-case hex (159-bit random numbers do not fit a BIGINT).
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by_name: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by_name: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=0)


class SignatureValidation(Base):
    """A validation of every signature in one version's exact bytes (SIG-9: stored with the
    record). The newest row of a version is its current result; older rows stay."""

    __tablename__ = "signature_validations"
    __table_args__ = (Index("ix_signature_validations_version", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_by_name: Mapped[str] = mapped_column(String(200))
    #: VALID when every signature is valid, else the worst status word.
    overall: Mapped[str] = mapped_column(String(20))
    #: JSON list of the per-signature reports (see etmf.signing.service.report_payload).
    report: Mapped[str] = mapped_column(Text)
