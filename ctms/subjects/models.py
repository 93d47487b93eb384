"""Subjects, their consents, their status history and their visits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class Subject(Base):
    __tablename__ = "ctms_subjects"
    __table_args__ = (UniqueConstraint("study_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    screened_on: Mapped[date] = mapped_column(Date)
    enrolled_on: Mapped[date | None] = mapped_column(Date)
    randomized_on: Mapped[date | None] = mapped_column(Date)
    stratum: Mapped[str | None] = mapped_column(String(100))
    arm: Mapped[str | None] = mapped_column(String(60))
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)


class SubjectStatusChange(Base):
    """Every status step of a subject, with its effective date (EDC import adds to these)."""

    __tablename__ = "ctms_subject_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("ctms_subjects.id"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    effective_on: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40), default="manual")


class Consent(Base):
    __tablename__ = "ctms_consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("ctms_subjects.id"))
    icf_version_id: Mapped[int] = mapped_column(ForeignKey("ctms_document_versions.id"))
    consented_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by_name: Mapped[str] = mapped_column(String(200))


class VisitDefinition(Base):
    """One visit of the protocol's schedule: day offset from enrollment and its window."""

    __tablename__ = "ctms_visit_definitions"
    __table_args__ = (UniqueConstraint("study_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    day: Mapped[int] = mapped_column(Integer)
    window_before: Mapped[int] = mapped_column(Integer)
    window_after: Mapped[int] = mapped_column(Integer)


class Visit(Base):
    """A subject's visit, planned from the schedule at enrollment."""

    __tablename__ = "ctms_visits"
    __table_args__ = (UniqueConstraint("subject_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("ctms_subjects.id"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    due_on: Mapped[date] = mapped_column(Date)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # planned | completed | missed
    completed_on: Mapped[date | None] = mapped_column(Date)
    out_of_window: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(40))
