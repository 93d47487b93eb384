"""CTMS facts about a site beside ``sites``: enrollment target and the status history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class SitePlan(Base):
    __tablename__ = "ctms_site_plans"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    enrollment_target: Mapped[int | None] = mapped_column(Integer)


class SiteStatusChange(Base):
    """One step of a site's lifecycle (the site row holds the current status)."""

    __tablename__ = "ctms_site_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    effective_on: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
