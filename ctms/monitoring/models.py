"""Monitoring visits of a site, their findings and action items, and the study's visit rule."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base


class MonitoringRule(Base):
    """When each site is visited: N weeks after the last visit and/or once N new subjects
    were screened since it (whichever comes first), and how many days the CRA has to file
    the visit report."""

    __tablename__ = "ctms_monitoring_rules"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    interval_weeks: Mapped[int | None] = mapped_column(Integer)
    every_subjects: Mapped[int | None] = mapped_column(Integer)
    #: Days after the visit by which its report is due in the TMF (None: the default).
    report_days: Mapped[int | None] = mapped_column(Integer)


class MonitoringVisit(Base):
    __tablename__ = "ctms_monitoring_visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(20))  # qualification | initiation | routine | close_out
    mode: Mapped[str] = mapped_column(String(20))  # on_site | remote | centralised
    planned_on: Mapped[date] = mapped_column(Date)
    cra_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    cra_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # planned | recorded | reported
    visited_on: Mapped[date | None] = mapped_column(Date)
    attendees: Mapped[str | None] = mapped_column(Text)
    subjects_reviewed: Mapped[str | None] = mapped_column(Text)
    documents_reviewed: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    report_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    signature_request_id: Mapped[int | None] = mapped_column(Integer)
    letter_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    letter_request_id: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Finding(Base):
    __tablename__ = "ctms_monitoring_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("ctms_monitoring_visits.id"))
    category: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))  # minor | major | critical
    description: Mapped[str] = mapped_column(Text)


class ActionItem(Base):
    __tablename__ = "ctms_action_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("ctms_monitoring_visits.id"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # open | closed
    closed_on: Mapped[date | None] = mapped_column(Date)
