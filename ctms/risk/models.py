"""Key-risk-indicator thresholds per study (an indicator without a row uses the default)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base


class KriThreshold(Base):
    __tablename__ = "ctms_kri_thresholds"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: Decimals as text (event data holds no floats).
    amber: Mapped[str] = mapped_column(String(20))
    red: Mapped[str] = mapped_column(String(20))
