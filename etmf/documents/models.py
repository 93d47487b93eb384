"""Documents and their versions. A document is a chain of versions; nothing is overwritten."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from etmf.db import Base, UTCDateTime


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_study_artifact", "study_id", "artifact_id"),
        Index("ix_documents_study_site", "study_id", "site_id"),
        Index("ix_documents_study_status", "study_id", "status"),
        # Read in date order and counted without the table for a date range (migration
        # 0020; with NULLS LAST it also reads the list newest or oldest first).
        Index("ix_documents_study_date_place", "study_id", "document_date", "status",
              "country_id", "site_id", "zone", "artifact_id"),
        # One document event recounts its (artifact, level, place) dashboard cell
        # (etmf.tracking.upkeep; migration 0018).
        Index("ix_documents_study_artifact_place", "study_id", "artifact_id", "level",
              "site_id", "country_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    #: The Reference Model's unique id (the key); zone/section/number are labels.
    artifact_id: Mapped[str] = mapped_column(String(10))
    artifact_number: Mapped[str] = mapped_column(String(10))
    zone: Mapped[str] = mapped_column(String(2))
    section: Mapped[str] = mapped_column(String(5))
    sub_artifact: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(10))
    country_id: Mapped[int | None] = mapped_column(ForeignKey("countries.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    title: Mapped[str] = mapped_column(String(500))
    person: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(20))
    document_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)
    #: For a signpost (status "signpost"): the system holding the record, and where in it.
    signpost_system: Mapped[str | None] = mapped_column(String(200))
    signpost_location: Mapped[str | None] = mapped_column(String(500))

    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document", order_by="DocumentVersion.number", viewonly=True
    )


class DocumentVersion(Base):
    __tablename__ = "document_versions"
    __table_args__ = (
        UniqueConstraint("document_id", "number"),
        Index("ix_document_versions_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    mime: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    page_count: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_by_name: Mapped[str] = mapped_column(String(200))
    #: For a signed rendition: the version whose exact bytes were signed.
    signed_from_version_id: Mapped[int | None] = mapped_column(Integer)

    document: Mapped[Document] = relationship(back_populates="versions", viewonly=True)


class QcIssue(Base):
    """A finding of QC on one version, raised when it is rejected; answered by the filer.

    A document cannot go back to QC while one of its issues is unanswered.
    """

    __tablename__ = "qc_issues"
    __table_args__ = (Index("ix_qc_issues_study", "study_id"),
                      Index("ix_qc_issues_document", "document_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    version_id: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(40))
    comment: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_by_id: Mapped[int | None] = mapped_column(Integer)
    raised_by_name: Mapped[str] = mapped_column(String(200))
    response: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by_id: Mapped[int | None] = mapped_column(Integer)
    answered_by_name: Mapped[str | None] = mapped_column(String(200))


class DocumentText(Base):
    """Extracted text of a file, keyed by its SHA-256: a cache, NOT a projection.

    Text is a pure function of the bytes (and the extractor), so it is kept out of the
    audit log; ``etmf audit verify`` skips this table (``info["not_projected"]``). Losing
    it costs a re-extraction at the next reindex, nothing else. A failed extraction is
    recorded here (``status="failed"`` with ``error`` in words) and shown on the document
    page; it never stops filing.
    """

    __tablename__ = "document_texts"
    __table_args__ = {"info": {"not_projected": True}}

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # "ok" | "failed" | "none"
    error: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int | None] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text, default="")
    extracted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SearchOutbox(Base):
    """Documents whose search entry is out of date: written in the transaction that changed
    them, removed once a worker has indexed them (deployments with `etmf worker`).

    A crash between the commit and the indexing loses nothing: the row waits for the next
    worker. Operational state, not a projection of events.
    """

    __tablename__ = "search_outbox"
    __table_args__ = {"info": {"not_projected": True}}

    document_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DocumentCount(Base):
    """How many documents a study has per place, artifact and status: the TMF tree's counts.

    A cache kept by :mod:`etmf.documents.counts` in the transaction that changes documents
    (not a projection: replay rebuilds it the same way, and it is not compared). One row per
    (country, site, artifact, status) where documents are, ``country_key``/``site_key`` 0
    for none; rows with both keys -1 hold the study's totals, so that the whole-study tree
    reads a few hundred rows whatever the number of documents.
    """

    __tablename__ = "document_counts"
    # Key order: the whole study (site_key -1) and a site-limited user (site_key 0 and
    # theirs) each read one range of the key; a country filter reads the second index.
    __table_args__ = (Index("ix_document_counts_country", "study_id", "country_key"),
                      {"info": {"not_projected": True}})

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    site_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    country_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    artifact_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    zone: Mapped[str] = mapped_column(String(2))
    section: Mapped[str] = mapped_column(String(5))
    n: Mapped[int] = mapped_column(Integer)
