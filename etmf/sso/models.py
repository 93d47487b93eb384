"""External identities: which provider subject is which account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class SsoIdentity(Base):
    """A (provider, subject) pair linked to one account; never re-linked to another."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_sso_identities_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())
