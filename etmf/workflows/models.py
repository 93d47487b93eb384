"""Signature requests: a document version, its signers in order, each with a meaning."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from etmf.db import Base, UTCDateTime


class SignatureRequest(Base):
    __tablename__ = "signature_requests"
    __table_args__ = (Index("ix_signature_requests_document", "document_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    #: The version the request was made for.
    source_version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"))
    #: The version the next signature signs: the source, then each signed result in turn.
    current_version_id: Mapped[int] = mapped_column(Integer)
    ordering: Mapped[str] = mapped_column(String(20))
    due_date: Mapped[date | None] = mapped_column(Date)
    message: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_by_name: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)

    signers: Mapped[list[RequestedSigner]] = relationship(
        order_by="RequestedSigner.position", viewonly=True, lazy="selectin")


class RequestedSigner(Base):
    __tablename__ = "signature_request_signers"
    __table_args__ = (UniqueConstraint("request_id", "position"),
                      Index("ix_signature_request_signers_user", "user_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("signature_requests.id"))
    position: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    auth_method: Mapped[str | None] = mapped_column(String(40))
    certificate_serial: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str | None] = mapped_column(String(20))
    field_name: Mapped[str | None] = mapped_column(String(80))
    signed_version_id: Mapped[int | None] = mapped_column(Integer)
    result_version_id: Mapped[int | None] = mapped_column(Integer)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decline_reason: Mapped[str | None] = mapped_column(Text)
