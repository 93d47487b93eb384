"""What an EMS import leaves behind: the packages taken in, the source objects they held and
the source system's audit records, kept as imported history (labelled as such)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class ImportedPackage(Base):
    __tablename__ = "exchange_packages"
    __table_args__ = (UniqueConstraint("study_id", "package_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    package_sha256: Mapped[str] = mapped_column(String(64))
    transfer_id: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by_name: Mapped[str] = mapped_column(String(200))
    documents: Mapped[int] = mapped_column(Integer)
    versions: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)


class ImportedObject(Base):
    """A source system's object (EMS OBJECTID) and the document it became here."""

    __tablename__ = "exchange_objects"
    __table_args__ = (UniqueConstraint("study_id", "source_id", "object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    source_id: Mapped[str] = mapped_column(String(200))
    object_id: Mapped[str] = mapped_column(String(300))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    package_id: Mapped[int] = mapped_column(Integer)


class ImportedAuditRecord(Base):
    """One AUDITRECORD (or SIGNATURE) of the source system: history, not our own audit trail."""

    __tablename__ = "exchange_audit_records"
    __table_args__ = (Index("ix_exchange_audit_records_document", "document_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    version_label: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # "audit" | "signature"
    record_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[str] = mapped_column(String(40))  # as the source wrote it
    user_ref: Mapped[str] = mapped_column(String(200))
    entry_type: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
