"""Verification of the audit chain: recompute every hash and link, name the first break."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.audit.store import CANONICAL_ENCODER, CANONICAL_VERSION, GENESIS_HASH, utc_text


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def iter_events(session: Session, batch: int = 5000) -> Iterator[Event]:
    last = 0
    while True:
        rows = session.scalars(
            select(Event).where(Event.seq > last).order_by(Event.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def iter_event_rows(session: Session, batch: int = 20_000) -> Iterator[Any]:
    """Plain rows (no ORM objects): verification is the hot loop over millions of events."""
    table = Event.__table__
    last = 0
    while True:
        rows = session.execute(
            select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


_COLUMNS = ("seq", "stream_type", "stream_id", "stream_version", "type", "payload",
            "study_id", "actor_id", "actor_name", "reason", "occurred_at", "request_id",
            "client_addr", "prev_hash", "hash")
_RAW = text(f"SELECT {', '.join(_COLUMNS)} FROM audit_events WHERE seq > :last "
            "ORDER BY seq LIMIT :batch")


def _raw_rows(session: Session, batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Driver tuples without type processing: the fastest read both databases offer."""
    last = 0
    while True:
        rows = session.execute(_RAW, {"last": last, "batch": batch}).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _time_text(value: Any) -> str:
    """The canonical UTC text of a stored timestamp, straight from the driver's value.

    SQLite holds the text SQLAlchemy wrote (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC);
    PostgreSQL returns an aware datetime.
    """
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return value[:10] + "T" + value[11:] + "Z"
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return utc_text(value)
    raise TypeError(f"unexpected stored time {value!r}")


def verify_chain(
    session: Session, progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Check sequence continuity, each event's own hash and its link to its predecessor.

    Recomputes the canonical form from raw driver values (same bytes as
    ``etmf.audit.store.event_canonical``; a test keeps the two in step).
    """
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    encode = CANONICAL_ENCODER.encode
    sha256 = hashlib.sha256
    for (seq, stream_type, stream_id, stream_version, type_, payload, study_id, actor_id,
         actor_name, reason, occurred_at, request_id, client_addr, prev_hash,
         digest) in _raw_rows(session):
        if seq != expected_seq:
            return ChainReport(checked, expected_seq - 1, prev, seq,
                               f"event {expected_seq} is missing (next found is {seq})")
        if prev_hash != prev:
            return ChainReport(checked, seq - 1, prev, seq,
                               f"event {seq} does not link to event {seq - 1} "
                               "(its previous-hash differs): events were removed, "
                               "reordered or altered")
        canonical = encode({
            "actor_id": actor_id, "actor_name": actor_name, "client_addr": client_addr,
            "occurred_at": _time_text(occurred_at), "payload": payload,
            "prev_hash": prev_hash, "reason": reason, "request_id": request_id, "seq": seq,
            "stream_id": stream_id, "stream_type": stream_type,
            "stream_version": stream_version, "study_id": study_id, "type": type_,
            "v": CANONICAL_VERSION,
        })
        if sha256(canonical.encode("utf-8")).hexdigest() != digest:
            return ChainReport(checked, seq - 1, prev, seq,
                               f"event {seq} was altered after it was written "
                               "(its content no longer matches its hash)")
        prev = digest
        expected_seq += 1
        checked += 1
        if progress is not None and checked % 1000 == 0:
            progress(1000)
    if progress is not None and checked % 1000:
        progress(checked % 1000)
    return ChainReport(checked, expected_seq - 1, prev)
