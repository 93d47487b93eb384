"""Verification of the audit chain: recompute every hash and link, name the first break."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
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
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM audit_events"
# PostgreSQL writes the canonical time text itself (microseconds, UTC, exactly as
# ``utc_text``): formatting a million aware datetimes in Python costs more than hashing them.
_SELECT_PG = _SELECT.replace(
    "occurred_at,",
    """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),""", 1)
_RAW = text(f"{_SELECT} WHERE seq > :last ORDER BY seq LIMIT :batch")
_BATCH = 20_000


def _raw_rows(session: Session, batch: int = _BATCH) -> Iterator[tuple[Any, ...]]:
    """Driver tuples straight from the DB-API cursor, in pages of ``batch`` by seq.

    No SQLAlchemy rows and no type processing: the fastest read both databases offer.
    Keyset pages keep memory bounded on PostgreSQL, whose client cursors fetch everything.
    """
    dbapi = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "sqlite":
        mark, select_ = "?", _SELECT
    else:
        mark, select_ = "%s", _SELECT_PG
    sql = f"{select_} WHERE seq > {mark} ORDER BY seq LIMIT {mark}"
    cursor = dbapi.cursor()
    try:
        last = 0
        while True:
            cursor.execute(sql, (last, batch))
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]
    finally:
        cursor.close()


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


def _canonical_generic(row: tuple[Any, ...]) -> str | None:
    """The canonical form through the JSON encoder, as ``event_canonical`` writes it.

    The reference the fast path falls back to; None when a stored value cannot be encoded
    at all (a column altered to hold something no event ever holds).
    """
    (seq, stream_type, stream_id, stream_version, type_, payload, study_id, actor_id,
     actor_name, reason, occurred_at, request_id, client_addr, prev_hash, _digest) = row
    try:
        return CANONICAL_ENCODER.encode({
            "actor_id": actor_id, "actor_name": actor_name, "client_addr": client_addr,
            "occurred_at": _time_text(occurred_at), "payload": payload,
            "prev_hash": prev_hash, "reason": reason, "request_id": request_id, "seq": seq,
            "stream_id": stream_id, "stream_type": stream_type,
            "stream_version": stream_version, "study_id": study_id, "type": type_,
            "v": CANONICAL_VERSION,
        })
    except (TypeError, ValueError):
        return None


def verify_chain(
    session: Session, progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Check sequence continuity, each event's own hash and its link to its predecessor.

    Recomputes the canonical form from raw driver values (same bytes as
    ``etmf.audit.store.event_canonical``; a test keeps the two in step).

    The hot loop writes the canonical JSON with a fixed template (keys are fixed and
    sorted) and the JSON module's own C string escaper, instead of building a dict per
    event for ``json.JSONEncoder``. For values of the types events hold (int, str, None;
    ``repr`` of an int is its JSON form) the bytes are identical; anything else either
    raises or yields different bytes, and every row whose fast hash does not match is
    re-encoded by :func:`_canonical_generic` before it is judged. So the verdict is exactly
    the encoder's, and a fast match is a SHA-256 match of the documented canonical bytes.
    """
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    string = encode_basestring
    sha256 = hashlib.sha256
    version = CANONICAL_VERSION
    for row in _raw_rows(session):
        (seq, stream_type, stream_id, stream_version, type_, payload, study_id, actor_id,
         actor_name, reason, occurred_at, request_id, client_addr, prev_hash,
         digest) = row
        if seq != expected_seq:
            return ChainReport(checked, expected_seq - 1, prev, seq,
                               f"event {expected_seq} is missing (next found is {seq})")
        if prev_hash != prev:
            return ChainReport(checked, seq - 1, prev, seq,
                               f"event {seq} does not link to event {seq - 1} "
                               "(its previous-hash differs): events were removed, "
                               "reordered or altered")
        try:
            if occurred_at.__class__ is not str:
                when = _time_text(occurred_at)
            elif len(occurred_at) == 26 and occurred_at[10] == " ":  # SQLite's text
                when = f"{occurred_at[:10]}T{occurred_at[11:]}Z"
            elif len(occurred_at) == 27 and occurred_at[10] == "T" and \
                    occurred_at[26] == "Z":  # PostgreSQL's to_char, already canonical
                when = occurred_at
            else:
                when = _time_text(occurred_at)
            # prev_hash equals ``prev``: a hex digest (or the genesis zeros), no escaping.
            canonical = (
                f'{{"actor_id":{"null" if actor_id is None else repr(actor_id)},'
                f'"actor_name":{string(actor_name)},'
                f'"client_addr":{"null" if client_addr is None else string(client_addr)},'
                f'"occurred_at":"{when}","payload":{string(payload)},'
                f'"prev_hash":"{prev_hash}",'
                f'"reason":{"null" if reason is None else string(reason)},'
                f'"request_id":{"null" if request_id is None else string(request_id)},'
                f'"seq":{seq!r},"stream_id":{string(stream_id)},'
                f'"stream_type":{string(stream_type)},"stream_version":{stream_version!r},'
                f'"study_id":{"null" if study_id is None else repr(study_id)},'
                f'"type":{string(type_)},"v":{version}}}'
            )
        except (TypeError, ValueError):
            canonical = None
        if canonical is None or sha256(canonical.encode("utf-8")).hexdigest() != digest:
            canonical = _canonical_generic(row)
            if canonical is None or sha256(canonical.encode("utf-8")).hexdigest() != digest:
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
