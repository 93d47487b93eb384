"""The event store: every state change is a command that appends events in one transaction.

A service opens a :class:`UnitOfWork`, calls :meth:`UnitOfWork.emit` for each change, and
commits once. ``emit`` applies the event to the read tables at once through its registered
projection (so the read tables are only ever changed by applying events, and replaying the
log rebuilds them exactly); ``commit`` chains the pending events onto the log and commits
everything together. Anything that fails rolls back everything, events included.

Canonical encoding of an event (version 1), the input of its SHA-256 ``hash``::

    JSON object with exactly these keys, sorted, no insignificant whitespace, UTF-8,
    non-ASCII characters written as themselves (ensure_ascii=False):
      v=1, seq, stream_type, stream_id, stream_version, type,
      payload (the stored payload TEXT as a JSON string, not re-parsed),
      study_id, actor_id, actor_name, reason, occurred_at ("YYYY-MM-DDTHH:MM:SS.ffffffZ"),
      request_id, client_addr, prev_hash

Integers are JSON integers, absent values ``null``. Python's ``json`` module produces
this byte-for-byte on every version we support, and both databases return the stored
strings unchanged, so the hash is stable across Python versions and databases. The first
event's ``prev_hash`` is 64 zeros. Payloads themselves are canonical JSON too, and may hold
only strings, integers, booleans, null, lists and objects: floats are refused because
their text form is not stable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.clock import Clock
from etmf.db import Base, Database
from etmf.errors import Conflict, ReasonRequired

GENESIS_HASH = "0" * 64
CANONICAL_VERSION = 1

JSONValue = Any


@dataclass(frozen=True)
class Actor:
    """Who did it: taken from the authenticated session, never from the request body."""

    id: int | None
    name: str

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(id=None, name=what)


@dataclass(frozen=True)
class Context:
    """Where it came from."""

    request_id: str | None = None
    client_addr: str | None = None


@dataclass
class PendingEvent:
    stream_type: str
    stream_id: str
    stream_version: int
    type: str
    payload: str
    study_id: int | None
    actor: Actor
    reason: str | None
    occurred_at: datetime
    context: Context
    data: dict[str, JSONValue] = field(repr=False, default_factory=dict)


def canonical_json(value: JSONValue) -> str:
    """The one JSON form we hash and store."""
    _refuse_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _refuse_floats(value: JSONValue) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audit payloads; store a string or integer")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("audit payload keys must be strings")
            _refuse_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item)


# Keys in sorted order, so the C encoder writes the same bytes as sort_keys=True would,
# without sorting per event (verification is the hot loop over millions of events).
CANONICAL_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_canonical(
    *,
    seq: int,
    stream_type: str,
    stream_id: str,
    stream_version: int,
    type: str,
    payload: str,
    study_id: int | None,
    actor_id: int | None,
    actor_name: str,
    reason: str | None,
    occurred_at: datetime,
    request_id: str | None,
    client_addr: str | None,
    prev_hash: str,
) -> str:
    return CANONICAL_ENCODER.encode({
        "actor_id": actor_id,
        "actor_name": actor_name,
        "client_addr": client_addr,
        "occurred_at": utc_text(occurred_at),
        "payload": payload,
        "prev_hash": prev_hash,
        "reason": reason,
        "request_id": request_id,
        "seq": seq,
        "stream_id": stream_id,
        "stream_type": stream_type,
        "stream_version": stream_version,
        "study_id": study_id,
        "type": type,
        "v": CANONICAL_VERSION,
    })


def canonical_of(row: Event) -> str:
    return event_canonical(
        seq=row.seq,
        stream_type=row.stream_type,
        stream_id=row.stream_id,
        stream_version=row.stream_version,
        type=row.type,
        payload=row.payload,
        study_id=row.study_id,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        reason=row.reason,
        occurred_at=row.occurred_at,
        request_id=row.request_id,
        client_addr=row.client_addr,
        prev_hash=row.prev_hash,
    )


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- projections -----------------------------------------------------------------------

Projection = Callable[[Session, "PendingEvent"], None]
_PROJECTIONS: dict[str, Projection] = {}
F = TypeVar("F", bound=Projection)


def projection(*event_types: str) -> Callable[[F], F]:
    """Register the function that applies events of these types to the read tables."""

    def register(fn: F) -> F:
        for event_type in event_types:
            if event_type in _PROJECTIONS:
                raise RuntimeError(f"two projections for event type {event_type!r}")
            _PROJECTIONS[event_type] = fn
        return fn

    return register


#: Called before an event's projection; may return what to call right after it.
Follower = Callable[[Session, "PendingEvent"], Callable[[], None] | None]
_FOLLOWERS: dict[str, list[Follower]] = {}


def follower(*event_types: str) -> Callable[[Follower], Follower]:
    """Register a function that keeps a derived table of another area (a cache such as the
    tracking dashboard's counts) in step with events it does not own, in the same
    transaction: it sees the read tables before the projection and may return a function
    that sees them after."""

    def register(fn: Follower) -> Follower:
        for event_type in event_types:
            _FOLLOWERS.setdefault(event_type, []).append(fn)
        return fn

    return register


def apply_event(session: Session, event: PendingEvent) -> None:
    handler = _PROJECTIONS.get(event.type)
    if handler is None:
        raise RuntimeError(f"no projection registered for event type {event.type!r}")
    after = [f(session, event) for f in _FOLLOWERS.get(event.type, ())]
    handler(session, event)
    for finish in after:
        if finish is not None:
            finish()


def registered_event_types() -> frozenset[str]:
    return frozenset(_PROJECTIONS)


# ---- unit of work ----------------------------------------------------------------------


class UnitOfWork:
    """One command, one transaction: collect events, project them, chain and commit once."""

    def __init__(self, session: Session, clock: Clock, actor: Actor, context: Context) -> None:
        self.session = session
        self.clock = clock
        self.actor = actor
        self.context = context
        self.now = clock.now()
        self.pending: list[PendingEvent] = []
        self._id_cursor: dict[type[Base], int] = {}
        self.after_commit: list[Callable[[], None]] = []

    def emit(
        self,
        stream_type: str,
        stream_id: int | str,
        type: str,
        data: Mapping[str, JSONValue],
        *,
        expected_version: int | None = None,
        study_id: int | None = None,
        reason: str | None = None,
        reason_required: bool = False,
    ) -> PendingEvent:
        """Record one event on a stream and apply it to the read tables now.

        ``expected_version`` is the stream version the caller's decision was based on
        (``0`` for a new stream); if someone else appended meanwhile, :class:`Conflict`.
        """
        if reason_required and not (reason and reason.strip()):
            raise ReasonRequired("A reason is required for this change.")
        stream_id = str(stream_id)
        current = self._stream_version(stream_type, stream_id)
        if expected_version is not None and expected_version != current:
            raise Conflict(
                "This record was changed by someone else since you opened it "
                f"(you saw version {expected_version}, it is now at version {current}). "
                "Reload the page to see the latest version, then make your change again."
            )
        event = PendingEvent(
            stream_type=stream_type,
            stream_id=stream_id,
            stream_version=current + 1,
            type=type,
            payload=canonical_json(dict(data)),
            study_id=study_id,
            actor=self.actor,
            reason=reason.strip() if reason else None,
            occurred_at=self.now,
            context=self.context,
            data=dict(data),
        )
        self.pending.append(event)
        apply_event(self.session, event)
        return event

    def _stream_version(self, stream_type: str, stream_id: str) -> int:
        for event in reversed(self.pending):
            if event.stream_type == stream_type and event.stream_id == stream_id:
                return event.stream_version
        stored = self.session.scalar(
            select(func.max(Event.stream_version)).where(
                Event.stream_type == stream_type, Event.stream_id == stream_id
            )
        )
        return int(stored or 0)

    def allocate_id(self, model: type[Base]) -> int:
        """The next integer id for a new row of ``model``.

        Safe because write transactions are serialised (see etmf.db); the id goes into the
        event payload so a replay creates the same row.
        """
        if model not in self._id_cursor:
            pk = model.__mapper__.primary_key[0]
            self._id_cursor[model] = int(self.session.scalar(select(func.max(pk))) or 0)
        self._id_cursor[model] += 1
        return self._id_cursor[model]

    def commit(self) -> list[dict[str, Any]]:
        """Chain the pending events onto the log and commit the whole transaction."""
        rows = append_events(self.session, self.pending)
        try:
            self.session.commit()
        except IntegrityError as exc:
            self.session.rollback()
            if "uq_audit_stream" in str(exc.orig) or "audit_events" in str(exc.orig):
                raise Conflict(
                    "Someone else changed this record at the same moment. "
                    "Reload the page and try again."
                ) from None
            raise
        self.pending = []
        for callback in self.after_commit:
            callback()
        return rows


def append_events(session: Session, pending: list[PendingEvent]) -> list[dict[str, Any]]:
    """Append events to the chain. The caller holds the write lock (a write session).

    Rows go in with one multi-row INSERT (Core, not ORM objects): a command that makes
    thousands of events should not pay per-object ORM costs. Returns the inserted rows.
    """
    if not pending:
        return []
    head = session.execute(
        select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
    rows: list[dict[str, Any]] = []
    for event in pending:
        seq += 1
        row = {
            "seq": seq,
            "stream_type": event.stream_type,
            "stream_id": event.stream_id,
            "stream_version": event.stream_version,
            "type": event.type,
            "payload": event.payload,
            "study_id": event.study_id,
            "actor_id": event.actor.id,
            "actor_name": event.actor.name,
            "reason": event.reason,
            "occurred_at": event.occurred_at,
            "request_id": event.context.request_id,
            "client_addr": event.context.client_addr,
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = hash_text(event_canonical(**row))
        rows.append(row)
    session.execute(insert(Event.__table__), rows)
    return rows


@contextmanager
def unit_of_work(
    db: Database, clock: Clock, actor: Actor, context: Context | None = None
) -> Iterator[UnitOfWork]:
    """Open a write transaction for one command. The caller must call ``uow.commit()``."""
    with db.write_session() as session:
        yield UnitOfWork(session, clock, actor, context or Context())
