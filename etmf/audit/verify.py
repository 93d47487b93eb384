"""Verification of the audit chain: recompute every hash and link, name the first break."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.audit.store import GENESIS_HASH, canonical_of, hash_text


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


def verify_chain(
    session: Session, progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Check sequence continuity, each event's own hash and its link to its predecessor."""
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    for event in iter_event_rows(session):
        if event.seq != expected_seq:
            return ChainReport(checked, expected_seq - 1, prev, event.seq,
                               f"event {expected_seq} is missing (next found is {event.seq})")
        if event.prev_hash != prev:
            return ChainReport(checked, event.seq - 1, prev, event.seq,
                               f"event {event.seq} does not link to event {event.seq - 1} "
                               "(its previous-hash differs): events were removed, "
                               "reordered or altered")
        own = hash_text(canonical_of(event))
        if own != event.hash:
            return ChainReport(checked, event.seq - 1, prev, event.seq,
                               f"event {event.seq} was altered after it was written "
                               "(its content no longer matches its hash)")
        prev = event.hash
        expected_seq += 1
        checked += 1
        if progress is not None:
            progress(1)
    return ChainReport(checked, expected_seq - 1, prev)
