"""Read tables of tracking: the expected document list, milestone dates, study targets,
expiry rules and people with the sites they work at and the documents that are theirs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


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
    __table_args__ = (Index("ix_milestone_dates_study", "study_id"),
                      Index("ix_milestone_dates_code", "study_id", "code", "site_id",
                            "country_id"))

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
    #: Who is mailed (role codes, comma separated): members with one of these roles for the
    #: whole study, and those limited to the site of the document or milestone.
    expiry_roles: Mapped[str] = mapped_column(
        String(200), default="study_manager,tmf_specialist,site_staff")
    milestone_roles: Mapped[str] = mapped_column(
        String(200), default="study_manager,tmf_specialist,site_staff")


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


# ---- caches of the dashboard (derived from ``documents``; not projected) ------------------------


class DocCount(Base):
    """Documents of one study at one (artifact, level, place), counted as the EDL needs them.

    A cache of ``documents`` for the dashboard (see etmf.tracking.summary), kept exact by
    every event once built (etmf.tracking.upkeep); ``etmf audit verify`` skips it, and
    dropping it with its :class:`CacheStamp` only makes the next dashboard rebuild it.
    ``place`` is the site id (site level), the country id (country level) or 0 (trial).
    """

    __tablename__ = "tracking_doc_counts"
    __table_args__ = {"info": {"not_projected": True}}

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    level: Mapped[str] = mapped_column(String(10), primary_key=True)
    place: Mapped[int] = mapped_column(Integer, primary_key=True)
    filed: Mapped[int] = mapped_column(Integer)  # with a file, not withdrawn
    approved: Mapped[int] = mapped_column(Integer)  # approved and not withdrawn, or signposts
    in_qc: Mapped[int] = mapped_column(Integer)
    approved_ever: Mapped[int] = mapped_column(Integer)  # approved at least once (quality)
    #: When the longest-valid approved document runs out (own expiry date, else document
    #: date + the artifact's validity); None: nothing there expires.
    expires_on: Mapped[date | None] = mapped_column(Date)


class DocDays(Base):
    """How many documents of an artifact have each filing lag, approval lag (days) and
    approval day (``kind`` "filing", "approval", "approved"; the day as a proleptic ordinal):
    timeliness and the approvals trend without reading every document. Cache, like
    :class:`DocCount`."""

    __tablename__ = "tracking_doc_days"
    __table_args__ = (Index("ix_tracking_doc_days_kind", "study_id", "kind", "value"),
                      {"info": {"not_projected": True}})

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class EdlGroup(Base):
    """The study's expected documents summed by zone, site, country and milestone (with the
    milestone's due date there): what the dashboard groups further. Cache, like
    :class:`DocCount`; ``incomplete`` entries are overdue once ``due`` has passed."""

    __tablename__ = "tracking_edl_groups"
    __table_args__ = (Index("ix_tracking_edl_groups_place", "study_id", "site_id", "country_id"),
                      {"info": {"not_projected": True}})

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str] = mapped_column(String(2))
    site_id: Mapped[int | None] = mapped_column(Integer)
    country_id: Mapped[int | None] = mapped_column(Integer)
    milestone: Mapped[str | None] = mapped_column(String(2))
    due: Mapped[date | None] = mapped_column(Date)
    entries: Mapped[int] = mapped_column(Integer)
    expected: Mapped[int] = mapped_column(Integer)
    approved: Mapped[int] = mapped_column(Integer)  # up to the required count
    missing: Mapped[int] = mapped_column(Integer)
    not_approved: Mapped[int] = mapped_column(Integer)
    incomplete: Mapped[int] = mapped_column(Integer)


class EdlGroupExpiry(Base):
    """Complete entries of a group whose documents run out on ``expires_on`` (how many):
    expired once the day has passed. Cache, like :class:`DocCount`."""

    __tablename__ = "tracking_edl_group_expiry"
    __table_args__ = (Index("ix_tracking_edl_group_expiry_place", "study_id", "site_id",
                            "country_id"),
                      {"info": {"not_projected": True}})

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str] = mapped_column(String(2))
    site_id: Mapped[int | None] = mapped_column(Integer)
    country_id: Mapped[int | None] = mapped_column(Integer)
    milestone: Mapped[str | None] = mapped_column(String(2))
    expires_on: Mapped[date] = mapped_column(Date)
    n: Mapped[int] = mapped_column(Integer)


class QcWait(Base):
    """A document of the study waiting in QC and since when (its last transition): the QC
    queue's ageing without reading every event. Cache, like :class:`DocCount`."""

    __tablename__ = "tracking_qc_queue"
    __table_args__ = (Index("ix_tracking_qc_queue_since", "study_id", "since"),
                      {"info": {"not_projected": True}})

    document_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CacheStamp(Base):
    """A study whose dashboard caches exist (and so are kept up to date by every event);
    ``seq``: the last audit event when they were built from scratch."""

    __tablename__ = "tracking_cache_stamps"
    __table_args__ = {"info": {"not_projected": True}}

    study_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
