"""Protocol deviations logged per site (and subject), reviewed and closed."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base


class Deviation(Base):
    __tablename__ = "ctms_deviations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("ctms_subjects.id"))
    category: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    occurred_on: Mapped[date] = mapped_column(Date)
    identified_on: Mapped[date] = mapped_column(Date)
    important: Mapped[bool] = mapped_column(Boolean)
    capa: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # open | reviewed | closed
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    closed_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=0)
