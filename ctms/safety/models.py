"""Serious adverse events with their expedited reporting clock, and the clocks per study."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base


class SaeClock(Base):
    """Calendar days to report: fatal or life-threatening unexpected, other serious unexpected."""

    __tablename__ = "ctms_sae_clocks"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    fatal_days: Mapped[int] = mapped_column(Integer)
    other_days: Mapped[int] = mapped_column(Integer)


class SeriousAdverseEvent(Base):
    __tablename__ = "ctms_saes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("ctms_subjects.id"))
    term: Mapped[str] = mapped_column(String(300))
    seriousness: Mapped[str] = mapped_column(String(200))
    fatal: Mapped[bool] = mapped_column(Boolean)
    life_threatening: Mapped[bool] = mapped_column(Boolean)
    expected: Mapped[bool] = mapped_column(Boolean)
    awareness_on: Mapped[date] = mapped_column(Date)
    clock_days: Mapped[int | None] = mapped_column(Integer)
    due_on: Mapped[date | None] = mapped_column(Date)
    submitted_on: Mapped[date | None] = mapped_column(Date)
    report_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    narrative: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
