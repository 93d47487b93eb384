"""Audit trail speed: append, verify and replay, each beside its floor, in one run.

    python benchmarks/audit_speed.py [--events 1000000] [--database-url URL]

Without --database-url a temporary SQLite file is used; with a PostgreSQL URL a scratch
database is created next to the one named and dropped afterwards. Prints medians.

Floors (the bare dependency doing the same work):
- append, one command per transaction: a plain INSERT + COMMIT into an identical table
  with no hashing, no triggers, no lock;
- append, batched: executemany of the same rows into that table;
- verify: reading every row of the log without hashing;
- replay: is compared with verify (the same rows, plus applying projections).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import etmf.projections  # noqa: E402,F401
from etmf import migrate  # noqa: E402
from etmf.audit.models import Event  # noqa: E402
from etmf.audit.store import (  # noqa: E402
    Actor,
    Context,
    PendingEvent,
    append_events,
    apply_event,
    canonical_json,
    unit_of_work,
)
from etmf.audit.verify import iter_event_rows, verify_chain  # noqa: E402
from etmf.clock import SystemClock  # noqa: E402
from etmf.db import Database  # noqa: E402
from etmf.settings import load_settings  # noqa: E402

FLOOR_DDL = """CREATE TABLE audit_floor (
  seq BIGINT PRIMARY KEY, stream_type VARCHAR(40), stream_id VARCHAR(64),
  stream_version INTEGER, type VARCHAR(80), payload TEXT, study_id INTEGER,
  actor_id INTEGER, actor_name VARCHAR(200), reason TEXT, occurred_at VARCHAR(40),
  request_id VARCHAR(64), client_addr VARCHAR(64), prev_hash VARCHAR(64), hash VARCHAR(64))"""


def pending(i: int, now: datetime) -> PendingEvent:
    data = {"study_id": 1, "country_id": 1, "number": f"{i:07d}",
            "institution": f"Hospital {i}", "principal_investigator": None,
            "status": "selection"}
    return PendingEvent(stream_type="site", stream_id=str(i), stream_version=1,
                        type="site.added", payload=canonical_json(data), study_id=1,
                        actor=Actor(1, "Benchmark"), reason=None, occurred_at=now,
                        context=Context("bench", "127.0.0.1"), data=data)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2000,
                        help="events appended one command per transaction")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    scratch_db = None
    tmp = tempfile.TemporaryDirectory(prefix="etmf-bench-")
    if args.database_url:
        base = make_url(args.database_url)
        scratch_db = f"etmf_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch_db}"'))
        url = base.set(database=scratch_db).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp.name}/bench.db"
    settings = load_settings(overrides={"database_url": url, "instance_path": tmp.name},
                             environ={})
    db = Database(settings)
    migrate.upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(FLOOR_DDL)
    clock = SystemClock()
    now = clock.now()
    results: list[tuple[str, str, str, str]] = []
    print(f"database: {db.dialect}; events: {args.events:,}", file=sys.stderr)

    # 1. one command per transaction
    times = []
    for i in range(1, args.single + 1):
        t0 = time.perf_counter()
        with unit_of_work(db, clock, Actor(1, "Benchmark")) as uow:
            uow.pending.append(pending(i, now))
            uow.commit()
        times.append(time.perf_counter() - t0)
    floor_times = []
    with db.engine.connect() as conn:
        for i in range(1, args.single + 1):
            t0 = time.perf_counter()
            conn.execute(text("INSERT INTO audit_floor (seq, payload, hash) "
                              "VALUES (:s, :p, :h)"), {"s": i, "p": "{}", "h": str(i)})
            conn.commit()
            floor_times.append(time.perf_counter() - t0)
    ours_ms, floor_ms = statistics.median(times) * 1000, statistics.median(floor_times) * 1000
    results.append(("append, 1 event per transaction (median)", f"{ours_ms:.2f} ms",
                    f"{floor_ms:.2f} ms", f"{ours_ms / floor_ms:.1f}x"))

    # 2. batched append up to --events (the real chaining code path)
    batch = 10_000
    done = args.single
    t0 = time.perf_counter()
    while done < args.events:
        n = min(batch, args.events - done)
        with db.write_session() as session:
            append_events(session, [pending(done + k + 1, now) for k in range(n)])
            session.commit()
        done += n
    ours_s = time.perf_counter() - t0
    appended = args.events - args.single
    rows = [{"seq": args.single + k + 1, "stream_type": "site", "stream_id": str(k),
             "stream_version": 1, "type": "site.added", "payload": "{}", "study_id": 1,
             "actor_id": 1, "actor_name": "Benchmark", "reason": None,
             "occurred_at": now.isoformat(), "request_id": "bench",
             "client_addr": "127.0.0.1", "prev_hash": "0" * 64, "hash": f"{k:064d}"}
            for k in range(appended)]
    t0 = time.perf_counter()
    insert = text("INSERT INTO audit_floor VALUES (:seq, :stream_type, :stream_id, "
                  ":stream_version, :type, :payload, :study_id, :actor_id, :actor_name, "
                  ":reason, :occurred_at, :request_id, :client_addr, :prev_hash, :hash)")
    with db.engine.connect() as conn:
        for start in range(0, len(rows), batch):
            conn.execute(insert, rows[start:start + batch])
            conn.commit()
    floor_s = time.perf_counter() - t0
    del rows
    results.append((f"append, batched ({batch:,} per transaction)",
                    rate(appended, ours_s), rate(appended, floor_s),
                    f"{ours_s / floor_s:.1f}x time"))

    # 3. verify the chain
    with Session(db.engine) as session:
        t0 = time.perf_counter()
        report = verify_chain(session)
        verify_s = time.perf_counter() - t0
        assert report.ok, report.problem
        t0 = time.perf_counter()
        n = sum(1 for _ in iter_event_rows(session))
        read_s = time.perf_counter() - t0
    results.append(("verify chain", rate(report.checked, verify_s), rate(n, read_s),
                    f"{verify_s / read_s:.1f}x time"))

    # 4. replay: rebuild projections from the log into a scratch SQLite database
    replay_engine = create_engine(f"sqlite:///{tmp.name}/replay.db")
    migrate.upgrade(replay_engine)
    with Session(db.engine) as live, Session(replay_engine) as scratch:
        t0 = time.perf_counter()
        for row in live.scalars(select(Event).order_by(Event.seq)
                                .execution_options(yield_per=10_000)):
            apply_event(scratch, PendingEvent(
                stream_type=row.stream_type, stream_id=row.stream_id,
                stream_version=row.stream_version, type=row.type, payload=row.payload,
                study_id=row.study_id, actor=Actor(row.actor_id, row.actor_name),
                reason=row.reason, occurred_at=row.occurred_at,
                context=Context(row.request_id, row.client_addr),
                data=json.loads(row.payload)))
        scratch.commit()
        replay_s = time.perf_counter() - t0
    results.append(("replay projections (1 row per event)", rate(args.events, replay_s),
                    rate(n, read_s), f"{replay_s / read_s:.1f}x time"))
    replay_engine.dispose()
    db.dispose()
    if scratch_db:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{scratch_db}" WITH (FORCE)'))
        admin.dispose()
    tmp.cleanup()

    width = max(len(r[0]) for r in results)
    print(f"{'measure':<{width}}  {'ours':>14}  {'floor':>14}  ratio")
    for name, ours, floor, ratio in results:
        print(f"{name:<{width}}  {ours:>14}  {floor:>14}  {ratio}")
    print(f"(started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.events:,} events, "
          f"{db.dialect})")


if __name__ == "__main__":
    main()
