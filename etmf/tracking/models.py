"""Read tables of tracking: the expected document list, milestone dates, study targets,
expiry rules and people with the sites they work at and the documents that are theirs."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base


class EdlEntry(Base):
    """One expected artifact at one place of a study: the trial, a country or a site."""

    __tablename__ = "edl_entries"
    __table_args__ = (Index("ix_edl_entries_study", "study_id", "level"),
                      Index("ix_edl_entries_site", "site_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    level: Mapped[str] = mapped_column(String(10))  # trial | country | site
    country_id: Mapped[int | None] = mapped_column(ForeignKey("countries.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    artifact_id: Mapped[str] = mapped_column(String(10))
    zone: Mapped[str] = mapped_column(String(2))
    required_count: Mapped[int] = mapped_column(Integer, default=1)
    #: The Reference Model milestone code by which the document is due (None: no due date).
    milestone: Mapped[str | None] = mapped_column(String(2))
    #: The placeholder document created for this entry, if any.
    placeholder_id: Mapped[int | None] = mapped_column(Integer)


class MilestoneDate(Base):
    """Planned and actual date of one Reference Model milestone for a study, country or site."""

    __tablename__ = "milestone_dates"
    __table_args__ = (Index("ix_milestone_dates_study", "study_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    country_id: Mapped[int | None] = mapped_column(ForeignKey("countries.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    code: Mapped[str] = mapped_column(String(2))
    planned: Mapped[date | None] = mapped_column(Date)
    actual: Mapped[date | None] = mapped_column(Date)


class TrackingTargets(Base):
    """Per-study targets (days) and reminder thresholds (days before, comma separated)."""

    __tablename__ = "tracking_targets"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    filing_days: Mapped[int] = mapped_column(Integer)
    approval_days: Mapped[int] = mapped_column(Integer)
    expiry_reminders: Mapped[str] = mapped_column(String(100))
    milestone_reminders: Mapped[str] = mapped_column(String(100))


class ExpiryRule(Base):
    """A configured validity period of an artifact (overrides the shipped default)."""

    __tablename__ = "expiry_rules"

    artifact_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: Days a document of this artifact stays valid after its document date; 0: never expires.
    validity_days: Mapped[int] = mapped_column(Integer)


class Person(Base):
    """Someone whose CV, licence and training records are theirs, reused at every site."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))


class PersonSite(Base):
    __tablename__ = "person_sites"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(60), primary_key=True)


class PersonDocument(Base):
    __tablename__ = "person_documents"
    __table_args__ = (Index("ix_person_documents_document", "document_id"),)

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
