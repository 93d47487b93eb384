"""Verification of the audit chain: recompute every hash and link, name the first break.

The chain is checked in ranges of ``seq``: each event's hash depends only on its own stored
fields (its ``prev_hash`` included), so ranges can be verified independently, and the links
between ranges are checked where they meet (:func:`merge_segments`). A long log is split
among the main process and helper processes (``etmf/audit/chainscan.py`` run by path, one
per extra core); the verdict, the event named and the counts are exactly those of a single
walk from the first event to the last.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.audit import chainscan
from etmf.audit.chainscan import GAP, LINK, SUSPECT, Segment, pages, scan
from etmf.audit.models import Event
from etmf.audit.store import CANONICAL_ENCODER, CANONICAL_VERSION, GENESIS_HASH, utc_text

log = logging.getLogger(__name__)

#: Logs shorter than this are verified in one walk: starting a helper process costs more.
PARALLEL_MIN_EVENTS = 200_000
#: Events per range handed out to the main process and the helpers.
CHUNK_EVENTS = 50_000
_MAX_RANGES = 1000
#: Ranges queued per helper, so it never waits for the main process to hand out the next.
_QUEUED = 2


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
    """Plain rows (no ORM objects), in pages by seq."""
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

    The reference every row whose template hash does not match is judged by; None when a
    stored value cannot be encoded at all (a column altered to hold something no event
    ever holds).
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


def _judge(row: tuple[Any, ...]) -> bool:
    """Does the reference encoder give this row's stored hash?"""
    canonical = _canonical_generic(row)
    return canonical is not None and \
        hashlib.sha256(canonical.encode("utf-8")).hexdigest() == row[-1]


def merge_segments(segments: list[Segment]) -> ChainReport:
    """Join consecutive ranges into one verdict, as a single walk would have reached it.

    Each range vouches for the events inside it; here every range must start at the event
    after the previous range's last one (or at event 1) and link to that event's hash (or
    to the genesis hash). The first thing that fails in ``seq`` order is named.
    """
    expected, prev, checked = 1, GENESIS_HASH, 0
    for seg in segments:
        if seg.first_seq is None:  # an empty range: the next one must still start here
            continue
        if seg.first_seq != expected:
            return ChainReport(checked, expected - 1, prev, seg.first_seq,
                               GAP.format(expected=expected, seq=seg.first_seq))
        if seg.first_prev != prev:
            return ChainReport(checked, expected - 1, prev, seg.first_seq,
                               LINK.format(seq=seg.first_seq, prev_seq=seg.first_seq - 1))
        if seg.problem is not None:
            return ChainReport(checked + seg.checked, seg.last_seq, seg.last_hash,
                               seg.problem.seq, seg.problem.message)
        checked += seg.checked
        expected, prev = seg.last_seq + 1, seg.last_hash
    return ChainReport(checked, expected - 1, prev)


def default_workers() -> int:
    """Processes to verify with: one per core this process may run on (at most 4)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def verify_chain(
    session: Session, progress: Callable[[int], None] | None = None, *,
    workers: int | None = None, min_parallel: int | None = None, chunk: int | None = None,
) -> ChainReport:
    """Check sequence continuity, each event's own hash and its link to its predecessor.

    Recomputes the canonical form of every event from the raw driver values with the
    template in :mod:`etmf.audit.chainscan` (same bytes as
    ``etmf.audit.store.event_canonical``; tests keep the two in step); a row whose template
    hash does not match is re-encoded by :func:`_canonical_generic` before it is judged.

    With ``workers`` > 1 (default: one per core) and at least ``min_parallel`` events
    (default :data:`PARALLEL_MIN_EVENTS`), the log is cut into ranges of ``chunk`` events
    (default :data:`CHUNK_EVENTS`) that this process and ``workers - 1`` helper
    processes verify side by side, reading through their own connections. If a helper
    cannot start or fails, this process verifies its ranges itself: the verdict never
    depends on the helpers. ``progress(n)`` is called as events are verified.
    """
    dbapi = session.connection().connection.driver_connection
    dialect = session.get_bind().dialect.name
    cursor = dbapi.cursor()
    try:
        helpers = (workers if workers is not None else default_workers()) - 1
        cursor.execute("SELECT max(seq) FROM audit_events")
        top = cursor.fetchone()[0] or 0
        if min_parallel is None:
            min_parallel = PARALLEL_MIN_EVENTS
        spec = _helper_spec(dbapi, dialect) if helpers > 0 and top >= max(min_parallel, 1) \
            else None
        if spec is None:
            return merge_segments([scan(pages(cursor, dialect, 0, None), CANONICAL_VERSION,
                                        judge=_judge, progress=progress)])
        # At most _MAX_RANGES ranges, however far a (tampered) top seq lies.
        chunk = max(chunk or CHUNK_EVENTS, -(-top // _MAX_RANGES))
        run = _ParallelRun(cursor, dialect, top, chunk, spec, helpers, progress)
        return run.report()
    finally:
        cursor.close()


def _helper_spec(dbapi: Any, dialect: str) -> dict[str, Any] | None:
    """How a helper process reaches the same database, or None if it cannot."""
    spec: dict[str, Any] = {"dialect": dialect, "version": CANONICAL_VERSION,
                            "page": chainscan.PAGE}
    if dialect == "sqlite":
        cur = dbapi.cursor()
        try:
            files = {name: path for _n, name, path in cur.execute("PRAGMA database_list")}
        finally:
            cur.close()
        if not files.get("main"):  # in memory: no one else can read it
            return None
        spec["path"] = files["main"]
        return spec
    if dialect == "postgresql":
        spec["conninfo"] = dbapi.info.dsn
        spec["password"] = dbapi.info.password
        return spec
    return None


_BOOT = "import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv[1], run_name='__main__')"


class _Helper:
    """One helper process running ``chainscan.py``; its output lines land in ``inbox``."""

    def __init__(self, spec: dict[str, Any], inbox: queue.Queue[Any]) -> None:
        self.inbox = inbox
        self.queued: list[int] = []  # ranges sent, in the order it scans them
        self.alive = True
        # Its own session: where the kernel groups CPU time by session (autogroup), a
        # helper in the verifier's session would only split the verifier's share instead
        # of using the other core. It reads ranges from the pipe and exits at its end, so
        # it ends with the verifier (an interrupt included).
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, chainscan.__file__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True,
                                       name="audit-verify-helper")
        self.reader.start()
        self.send(spec)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                message = {"text": line.rstrip()}
            self.inbox.put((self, message))
        self.inbox.put((self, None))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except OSError:  # it died; its end of output will say so
            self.alive = False

    def close(self) -> None:
        if self.queued:  # what it is still scanning is no longer needed
            self.proc.kill()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):  # it may be gone already
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _ParallelRun:
    """Ranges handed out in ``seq`` order to this process and the helpers as each is free."""

    def __init__(self, cursor: Any, dialect: str, top: int, chunk: int,
                 spec: dict[str, Any], helpers: int,
                 progress: Callable[[int], None] | None) -> None:
        self.cursor, self.dialect, self.progress = cursor, dialect, progress
        self.bounds = [(lo, min(lo + chunk, top)) for lo in range(0, top, chunk)]
        self.top = top
        self.results: list[Segment | None] = [None] * len(self.bounds)
        self.todo = list(range(len(self.bounds)))  # ascending
        self.mine: set[int] = set()  # ranges this process must scan (a helper failed)
        self.reported = [0] * len(self.bounds)  # progress already reported per range
        self.stop = len(self.bounds)  # ranges from here on are past a problem: not needed
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.spec, self.helper_count = spec, helpers
        self.helpers: list[_Helper] = []

    def report(self) -> ChainReport:
        try:
            for _ in range(self.helper_count):
                try:
                    self.helpers.append(_Helper(self.spec, self.inbox))
                except OSError as exc:
                    log.warning("audit verify: no helper process (%s); verifying alone", exc)
                    break
            self._run()
        finally:
            for helper in self.helpers:
                helper.close()
        segments = [seg for seg in self.results[:self.stop] if seg is not None]
        report = merge_segments(segments)
        if report.ok:  # events appended since the ranges were cut, as a single walk sees
            tail = scan(pages(self.cursor, self.dialect, self.top, None), CANONICAL_VERSION,
                        judge=_judge, progress=self.progress)
            report = merge_segments([*segments, tail])
        return report

    def _run(self) -> None:
        while True:
            self._drain(block=False)
            if all(self.results[i] is not None for i in range(self.stop)):
                return
            self._feed()
            index = self._take(helper=False)
            if index is not None:
                self._scan_here(index)
            elif any(h.queued for h in self.helpers):
                self._drain(block=True)
            else:  # pragma: no cover - every range is in todo, queued or done
                raise RuntimeError("audit verify: a range was lost")

    def _take(self, helper: bool) -> int | None:
        for pos, index in enumerate(self.todo):
            if index >= self.stop:
                break
            if helper and index in self.mine:
                continue
            return self.todo.pop(pos)
        return None

    def _give_back(self, index: int) -> None:
        self.mine.add(index)
        bisect.insort(self.todo, index)

    def _feed(self) -> None:
        for helper in self.helpers:
            while helper.alive and len(helper.queued) < _QUEUED:
                index = self._take(helper=True)
                if index is None:
                    return
                lo, hi = self.bounds[index]
                helper.queued.append(index)
                helper.send({"chunk": index, "lo": lo, "hi": hi})

    def _drain(self, block: bool) -> None:
        while True:
            try:
                helper, message = self.inbox.get(block=block, timeout=1 if block else None)
            except queue.Empty:
                return
            block = False
            self._handle(helper, message)

    def _handle(self, helper: _Helper, message: dict[str, Any] | None) -> None:
        if message is None:  # the helper is gone: its ranges come back here
            helper.alive = False
            for index in helper.queued:
                self._give_back(index)
            helper.queued = []
            return
        if "progress" in message:
            if helper.queued:
                self.reported[helper.queued[0]] += message["progress"]
            if self.progress is not None:
                self.progress(message["progress"])
            return
        if "chunk" not in message:
            log.warning("audit verify helper: %s", message.get("text", message))
            return
        index = message["chunk"]
        if index in helper.queued:
            helper.queued.remove(index)
        if "error" in message:
            log.warning("audit verify helper failed on events %d-%d: %s",
                        self.bounds[index][0] + 1, self.bounds[index][1], message["error"])
            self._give_back(index)
            return
        seg = Segment.from_json(message["segment"])
        if seg.problem is not None and seg.problem.message == SUSPECT:
            self._give_back(index)  # judged here, with the reference encoder
            return
        self._record(index, seg)

    def _record(self, index: int, seg: Segment) -> None:
        self.results[index] = seg
        if seg.problem is not None:
            self.stop = min(self.stop, index + 1)

    def _scan_here(self, index: int) -> None:
        lo, hi = self.bounds[index]
        already = self.reported[index]
        seen = 0

        def report(n: int) -> None:
            nonlocal seen
            fresh = max(0, seen + n - already) - max(0, seen - already)
            seen += n
            if fresh and self.progress is not None:
                self.progress(fresh)

        def batches() -> Iterator[list[tuple[Any, ...]]]:
            for rows in pages(self.cursor, self.dialect, lo, hi):
                yield rows
                self._drain(block=False)  # keep the helpers busy and the progress moving
                self._feed()

        self._record(index, scan(batches(), CANONICAL_VERSION, judge=_judge,
                                 progress=report))
