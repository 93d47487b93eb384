"""Key-risk-indicator thresholds per study (an indicator without a row uses the default)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base


class KriThreshold(Base):
    __tablename__ = "ctms_kri_thresholds"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: Decimals as text (event data holds no floats).
    amber: Mapped[str] = mapped_column(String(20))
    red: Mapped[str] = mapped_column(String(20))


class KriSnapshot(Base):
    """One site's value of one indicator on one day (the daily snapshot behind the trend)."""

    __tablename__ = "ctms_kri_snapshots"
    __table_args__ = (Index("ix_ctms_kri_snapshots_study_taken", "study_id", "taken_on"),)

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(40), primary_key=True)
    taken_on: Mapped[date] = mapped_column(Date, primary_key=True)
    #: A decimal as text, None when the indicator had no data.
    value: Mapped[str | None] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(10))
