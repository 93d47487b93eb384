"""The append-only audit event table and the stored checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime

#: The condition of the partial index of EDC visit completions (migration 0026), written out:
#: a database uses a partial index only for a query that states its condition.
VISIT_COMPLETED_PREDICATE = "type = 'visit.completed'"


class Event(Base):
    """One audit event. Rows are only ever inserted (triggers refuse UPDATE/DELETE)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("stream_type", "stream_id", "stream_version", name="uq_audit_stream"),
        Index("ix_audit_events_stream", "stream_type", "stream_id"),
        Index("ix_audit_events_actor", "actor_id"),
        Index("ix_audit_events_study", "study_id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_visit_completed", "study_id", "seq",
              postgresql_where=text(VISIT_COMPLETED_PREDICATE),
              sqlite_where=text(VISIT_COMPLETED_PREDICATE)),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    stream_type: Mapped[str] = mapped_column(String(40))
    stream_id: Mapped[str] = mapped_column(String(64))
    stream_version: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(80))
    #: Canonical JSON text of the payload; hashed exactly as stored.
    payload: Mapped[str] = mapped_column(Text)
    #: The study the event belongs to, if any: lets study timelines and inspectors filter.
    study_id: Mapped[int | None] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Checkpoint(Base):
    """A signed Merkle tree head over the first ``tree_size`` events (RFC 9162 style)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    root_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The signed tree head as canonical JSON, exactly as written outside the database.
    signed_json: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(String(500))
