"""A randomization list and its slots. Only the randomization role sees unused slots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class RandomizationList(Base):
    __tablename__ = "ctms_randomization_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    arms: Mapped[str] = mapped_column(Text)  # JSON list
    strata: Mapped[str] = mapped_column(Text)  # JSON list
    block_size: Mapped[int] = mapped_column(Integer)
    blocks_per_stratum: Mapped[int] = mapped_column(Integer)
    #: The sealed seed (a Fernet token), or the seed itself for lists made before sealing.
    seed: Mapped[str] = mapped_column(Text)
    seed_sealed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_name: Mapped[str] = mapped_column(String(200))


class RandomizationSlot(Base):
    __tablename__ = "ctms_randomization_slots"
    __table_args__ = (UniqueConstraint("list_id", "stratum", "sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("ctms_randomization_lists.id"))
    stratum: Mapped[str] = mapped_column(String(100))
    sequence: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("ctms_subjects.id"))
