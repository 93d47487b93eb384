"""Requests an inspector raises (a document, or an explanation) and the study team's answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class InspectionRequest(Base):
    __tablename__ = "inspection_requests"
    __table_args__ = (Index("ix_inspection_requests_study", "study_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    kind: Mapped[str] = mapped_column(String(20))  # "document" | "explanation"
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # "open" | "answered"
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_by_id: Mapped[int | None] = mapped_column(Integer)
    raised_by_name: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str | None] = mapped_column(Text)
    answer_document_id: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by_id: Mapped[int | None] = mapped_column(Integer)
    answered_by_name: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=0)
