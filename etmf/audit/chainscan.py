"""The hot loop of audit chain verification: scan one range of ``seq``, page by page.

Standard library only at import time (the database driver is imported by a helper process
when it connects): :func:`etmf.audit.verify.verify_chain` runs this file in helper
processes by path, and importing the ``etmf`` package would pull in Flask and SQLAlchemy,
which costs a helper process a second of start-up on a busy machine.

A scan recomputes every event's hash from its stored fields with a fixed template of the
documented canonical encoding (``etmf.audit.store``): keys are fixed and sorted, strings go
through the JSON module's own C escaper, integers are written by ``repr``. For values of the
types events hold (int, str, None) the bytes are those of the reference encoder; anything
else raises or yields other bytes, and a row whose template hash does not match is handed to
a ``judge`` (the reference encoder, in the main process) or, in a helper, reported as
*suspect* so the main process judges it. So a match here is always a SHA-256 match of the
documented canonical bytes, and the verdict is exactly the reference encoder's.

Each page is checked in bulk first (sequence numbers contiguous, every ``prev_hash`` equal to
the previous ``hash``, every template hash equal to the stored hash: three list comparisons);
only a page that fails is walked row by row, in order, to name the first event that does not
verify and why, with the same messages and counts as a plain sequential walk.

A scan may start anywhere ("accept the first row"): it then records the first row's ``seq``
and ``prev_hash``, and whoever merges the ranges checks those against the previous range's
last event (:func:`etmf.audit.verify.merge_segments`).

Run as a helper (``python chainscan.py``): reads one JSON line naming the database, then one
JSON line per range ``{"chunk": i, "lo": lo, "hi": hi}`` (events ``lo < seq <= hi``) until
end of input; writes ``{"progress": n}`` lines while scanning and one
``{"chunk": i, "segment": {...}}`` (or ``{"chunk": i, "error": "..."}``) line per range.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from json.encoder import encode_basestring
from typing import Any

#: Stored columns in the order every scan reads them.
COLUMNS = ("seq", "stream_type", "stream_id", "stream_version", "type", "payload",
           "study_id", "actor_id", "actor_name", "reason", "occurred_at", "request_id",
           "client_addr", "prev_hash", "hash")
_PREV, _HASH = COLUMNS.index("prev_hash"), COLUMNS.index("hash")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM audit_events"
# PostgreSQL writes the canonical time text itself (microseconds, UTC, exactly as
# ``etmf.audit.store.utc_text``): formatting a million aware datetimes in Python costs more
# than hashing them. Only for years 1-9999 AD, where that text is one-to-one with the stored
# instant (``YYYY`` drops the era, so a year BC would print as the same year AD; Python holds
# no other years): anything else reads as NULL and fails the template.
_SELECT_PG = _SELECT.replace(
    "occurred_at,",
    "CASE WHEN occurred_at >= TIMESTAMPTZ '0001-01-01 00:00:00+00' "
    "AND occurred_at < TIMESTAMPTZ '10000-01-01 00:00:00+00' THEN "
    """pg_catalog.to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') """
    "END,", 1)

#: Rows fetched per query (keyset pages by ``seq``: bounded memory on both databases).
PAGE = 10_000

GAP = "event {expected} is missing (next found is {seq})"
LINK = ("event {seq} does not link to event {prev_seq} (its previous-hash differs): "
        "events were removed, reordered or altered")
ALTERED = ("event {seq} was altered after it was written "
           "(its content no longer matches its hash)")
#: A helper's finding that the main process must judge with the reference encoder.
SUSPECT = "suspect"


def range_sql(dialect: str) -> str:
    """The keyset page query: parameters ``(lo, hi, limit)``, events ``lo < seq <= hi``."""
    if dialect == "sqlite":
        return f"{_SELECT} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
    return f"{_SELECT_PG} WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s"


def row_sql(dialect: str) -> str:
    """One event by ``seq``, with the same columns as :func:`range_sql`."""
    mark = "?" if dialect == "sqlite" else "%s"
    return f"{_SELECT if dialect == 'sqlite' else _SELECT_PG} WHERE seq = {mark}"


def pages(cursor: Any, dialect: str, lo: int, hi: int | None,
          page: int = PAGE) -> Iterator[list[tuple[Any, ...]]]:
    """Driver tuples of events ``lo < seq <= hi`` (no upper bound when ``hi`` is None)."""
    sql = range_sql(dialect)
    top = (1 << 62) if hi is None else hi
    while True:
        cursor.execute(sql, (lo, top, page))
        rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        if len(rows) < page:
            return
        lo = rows[-1][0]


def _as_is(when: Any) -> str:
    """A time text that is already canonical (PostgreSQL's ``to_char``), else refuse."""
    if when.__class__ is str and len(when) == 27 and when[10] == "T" and when[26] == "Z":
        return when
    raise ValueError("not a canonical time text")


def template_digests(rows: Iterable[tuple[Any, ...]], version: int) -> list[str]:
    """SHA-256 hex digests of the canonical encoding of each row, by the fixed template.

    Raises (TypeError, ValueError, IndexError ...) for values no genuine event holds;
    ``prev_hash`` is written unescaped, so the caller must also check it equals the
    previous event's hash (a hex digest) before trusting a match.
    """
    sha256 = hashlib.sha256
    string = encode_basestring
    return [
        sha256((
            f'{{"actor_id":{"null" if actor_id is None else repr(actor_id)},'
            f'"actor_name":{string(actor_name)},'
            f'"client_addr":{"null" if client_addr is None else string(client_addr)},'
            '"occurred_at":"'
            + (f"{when[:10]}T{when[11:]}Z" if len(when) == 26 and when[10] == " "
               else _as_is(when))
            + f'","payload":{string(payload)},"prev_hash":"{prev_hash}",'
            f'"reason":{"null" if reason is None else string(reason)},'
            f'"request_id":{"null" if request_id is None else string(request_id)},'
            f'"seq":{seq!r},"stream_id":{string(stream_id)},'
            f'"stream_type":{string(stream_type)},"stream_version":{stream_version!r},'
            f'"study_id":{"null" if study_id is None else repr(study_id)},'
            f'"type":{string(type_)},"v":{version}}}'
        ).encode("utf-8")).hexdigest()
        for (seq, stream_type, stream_id, stream_version, type_, payload, study_id,
             actor_id, actor_name, reason, when, request_id, client_addr, prev_hash,
             _digest) in rows
    ]


@dataclass
class Problem:
    seq: int
    message: str


@dataclass
class Segment:
    """What a scan of one range found; ``last_*`` is the last event that verified."""

    first_seq: int | None = None
    first_prev: str | None = None
    last_seq: int = 0
    last_hash: str = ""
    checked: int = 0
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        problem = data.get("problem")
        return cls(**{**data, "problem": Problem(**problem) if problem else None})


Judge = Callable[[tuple[Any, ...]], bool]


def scan(batches: Iterable[list[tuple[Any, ...]]], version: int, *,
         judge: Judge | None = None,
         progress: Callable[[int], None] | None = None) -> Segment:
    """Verify consecutive pages of one range; stop at the first event that does not verify.

    The range's first row is accepted as it is (its ``seq`` and ``prev_hash`` are recorded
    for the merge). ``judge(row)`` re-encodes a row whose template hash does not match with
    the reference encoder; without one such a row ends the scan as :data:`SUSPECT`.
    """
    seg = Segment()
    expected = 0
    prev = ""
    for rows in batches:
        if seg.first_seq is None:
            seg.first_seq, seg.first_prev = rows[0][0], rows[0][_PREV]
            expected, prev = rows[0][0], rows[0][_PREV]
        n = len(rows)
        digests = [row[_HASH] for row in rows]
        ok = (rows[0][0] == expected and rows[-1][0] == expected + n - 1  # seq is unique
              and rows[0][_PREV] == prev
              and [row[_PREV] for row in rows[1:]] == digests[:-1])
        if ok:
            try:
                ok = template_digests(rows, version) == digests
            except Exception:  # an odd stored value: the row-by-row walk names it
                ok = False
        if ok:
            expected += n
            prev = digests[-1]
            seg.checked += n
            done = n
        else:
            before = seg.checked
            expected, prev = _walk(rows, expected, prev, version, judge, seg)
            done = seg.checked - before
        seg.last_seq, seg.last_hash = expected - 1, prev
        if progress is not None and done:
            progress(done)
        if seg.problem is not None:
            return seg
    return seg


def _walk(rows: list[tuple[Any, ...]], expected: int, prev: str, version: int,
          judge: Judge | None, seg: Segment) -> tuple[int, str]:
    """Row by row, in order: the first gap, broken link or altered event ends the scan."""
    for row in rows:
        seq = row[0]
        if seq != expected:
            seg.problem = Problem(seq, GAP.format(expected=expected, seq=seq))
            break
        if row[_PREV] != prev:
            seg.problem = Problem(seq, LINK.format(seq=seq, prev_seq=seq - 1))
            break
        try:
            ok = template_digests((row,), version)[0] == row[_HASH]
        except Exception:  # judged below
            ok = False
        if not ok:
            if judge is None:
                seg.problem = Problem(seq, SUSPECT)
                break
            if not judge(row):
                seg.problem = Problem(seq, ALTERED.format(seq=seq))
                break
        prev = row[_HASH]
        expected += 1
        seg.checked += 1
    return expected, prev


# ---- helper process ---------------------------------------------------------------------


def _connect(spec: dict[str, Any]) -> Any:
    if spec["dialect"] == "sqlite":
        import sqlite3
        from urllib.parse import quote

        conn = sqlite3.connect(f"file:{quote(spec['path'])}?mode=ro", uri=True,
                               timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn
    import psycopg

    return psycopg.connect(spec["conninfo"], password=spec.get("password"),
                           autocommit=True)


def _serve(lines: Iterator[str], out: Any) -> None:
    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    spec = json.loads(next(lines))
    dialect, version, page = spec["dialect"], spec["version"], spec.get("page", PAGE)
    conn = _connect(spec)
    try:
        cursor = conn.cursor()
        for line in lines:
            task = json.loads(line)
            try:
                seg = scan(pages(cursor, dialect, task["lo"], task["hi"], page), version,
                           progress=lambda n: send({"progress": n}))
            except Exception as exc:  # reported; the main process scans the range itself
                send({"chunk": task["chunk"], "error": f"{exc.__class__.__name__}: {exc}"})
                continue
            send({"chunk": task["chunk"], "segment": seg.to_json()})
        cursor.close()
    finally:
        conn.close()


if __name__ == "__main__":
    _serve(iter(sys.stdin.readline, ""), sys.stdout)
