"""The log of EDC imports (each import is one event; the changes are on subject streams)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class EdcImport(Base):
    __tablename__ = "ctms_edc_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    changes: Mapped[int] = mapped_column(Integer)
    problems: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by_name: Mapped[str] = mapped_column(String(200))
