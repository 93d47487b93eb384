"""Audit chain verification speed at a million events, beside its floors, in one run.

    .venv/bin/python benchmarks/verify_speed.py [--events 1000000] [--runs 3] \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Without --database-url a temporary SQLite file is used; with a PostgreSQL URL a scratch
database is created next to the one named and dropped afterwards.

The log is generated fast but genuinely: every row is chained and hashed with the real
canonical encoding (``etmf.audit.store.event_canonical`` / ``hash_text``) and bulk-inserted
(executemany on SQLite, COPY on PostgreSQL) into the migrated ``audit_events`` table, triggers
and indexes included. Payloads vary in size and shape (site, document and signature events;
some with reasons, some by the system actor, some non-ASCII names).

Printed, each as the median of ``--runs`` runs measured in the same process, with 1 and with
2 processes:

- verify:      ``etmf.audit.verify.verify_chain(session, workers=N)`` over the whole log
               (what ``etmf audit verify`` does for the chain check; N=2 starts one helper
               process, its start-up included);
- floor read:  the bare fetch of the same columns by the same read path (the keyset page
               query of ``etmf.audit.chainscan.pages``), nothing done with the rows; with 2
               processes, each fetches half of the log through its own connection;
- floor hash:  bare ``hashlib.sha256(...).hexdigest()`` over the same canonical bytes,
               already in memory (the least any verification must do; one process);

the ratio verify / (read + hash) (1.0 would mean verification adds nothing over the two
things it cannot avoid), and the CPU seconds verify used (this process and its helpers:
on a shared machine the wall time says how much CPU the scheduler gave us, the CPU time
what the work costs).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from etmf import migrate  # noqa: E402
from etmf.audit.chainscan import pages  # noqa: E402
from etmf.audit.store import GENESIS_HASH, canonical_json, event_canonical  # noqa: E402
from etmf.audit.verify import verify_chain  # noqa: E402
from etmf.db import Database  # noqa: E402
from etmf.settings import load_settings  # noqa: E402

COLUMNS = ("seq", "stream_type", "stream_id", "stream_version", "type", "payload",
           "study_id", "actor_id", "actor_name", "reason", "occurred_at", "request_id",
           "client_addr", "prev_hash", "hash")
NAMES = ["Dr Anna Schmidt", "Bruno Keller", "Dr Zoë Ünal", "Chloé Martin", "Ines García"]
BATCH = 20_000


def synthetic_events(count: int) -> Iterator[tuple[dict[str, object], bytes]]:
    """Yields (row, canonical bytes) for ``count`` correctly chained events."""
    start = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    prev = GENESIS_HASH
    versions: dict[tuple[str, str], int] = {}
    for seq in range(1, count + 1):
        kind = seq % 10
        if kind < 5:
            stream_type, stream_id = "document", str(seq // 7)
            data: dict[str, object] = {
                "document_id": seq // 7, "changes": {"title": [f"Protocol v{seq % 9}",
                                                               f"Protocol v{seq % 9 + 1}"]},
                "status": "approved"}
            event_type = "document.metadata_changed"
        elif kind < 8:
            stream_type, stream_id = "site", str(seq % 500)
            data = {"study_id": 1 + seq % 3, "number": f"{seq % 500:03d}",
                    "institution": f"Universitätsklinikum {seq % 500}", "status": "active"}
            event_type = "site.updated"
        else:
            stream_type, stream_id = "signature_request", str(seq // 3)
            data = {"request_id": seq // 3, "signer_id": seq % 40, "meaning": "approval",
                    "document_sha256": hashlib.sha256(str(seq).encode()).hexdigest()}
            event_type = "signature.signed"
        key = (stream_type, stream_id)
        versions[key] = versions.get(key, 0) + 1
        system = seq % 97 == 0
        row: dict[str, object] = {
            "seq": seq, "stream_type": stream_type, "stream_id": stream_id,
            "stream_version": versions[key], "type": event_type,
            "payload": canonical_json(data), "study_id": 1 + seq % 3,
            "actor_id": None if system else 1 + seq % 40,
            "actor_name": "system" if system else NAMES[seq % len(NAMES)],
            "reason": "corrected a typo" if seq % 11 == 0 else None,
            "occurred_at": start + timedelta(seconds=seq * 7, microseconds=seq % 1_000_000),
            "request_id": None if system else f"req-{seq:09d}",
            "client_addr": None if system else f"10.0.{seq % 250}.{seq % 200}",
            "prev_hash": prev,
        }
        canonical = event_canonical(**row).encode("utf-8")  # type: ignore[arg-type]
        row["hash"] = prev = hashlib.sha256(canonical).hexdigest()
        yield row, canonical


def load_sqlite(path: str, count: int) -> list[bytes]:
    import sqlite3

    canonicals: list[bytes] = []
    conn = sqlite3.connect(path)
    sql = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 15)})"
    batch: list[tuple[object, ...]] = []
    for row, canonical in synthetic_events(count):
        canonicals.append(canonical)
        # SQLAlchemy's SQLite DateTime storage format (naive UTC text).
        row["occurred_at"] = row["occurred_at"].astimezone(UTC).strftime(  # type: ignore[union-attr]
            "%Y-%m-%d %H:%M:%S.%f")
        batch.append(tuple(row[c] for c in COLUMNS))
        if len(batch) == BATCH:
            conn.executemany(sql, batch)
            batch = []
    if batch:
        conn.executemany(sql, batch)
    conn.commit()
    conn.close()
    return canonicals


def load_postgres(engine: object, count: int) -> list[bytes]:
    canonicals: list[bytes] = []
    raw = engine.raw_connection()  # type: ignore[attr-defined]
    try:
        cur = raw.driver_connection.cursor()
        with cur.copy(f"COPY audit_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row, canonical in synthetic_events(count):
                canonicals.append(canonical)
                copy.write_row(tuple(row[c] for c in COLUMNS))
        raw.driver_connection.commit()
        cur.execute("ANALYZE audit_events")
        raw.driver_connection.commit()
    finally:
        raw.close()
    return canonicals


def _connect(url: str) -> tuple[object, str]:
    """A plain driver connection, as a verify helper process opens one."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        return sqlite3.connect(parsed.database), "sqlite"
    import psycopg

    return psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                           password=parsed.password, dbname=parsed.database,
                           autocommit=True), "postgresql"


def read_range(url: str, lo: int, hi: int | None) -> int:
    """The floor for reading: verify's page query over ``lo < seq <= hi``, rows untouched."""
    conn, dialect = _connect(url)
    try:
        cur = conn.cursor()  # type: ignore[attr-defined]
        n = sum(len(rows) for rows in pages(cur, dialect, lo, hi))
        cur.close()
    finally:
        conn.close()  # type: ignore[attr-defined]
    return n


def bare_read(url: str, count: int, pool: object | None) -> int:
    """One process reads everything, or two processes read one half each."""
    if pool is None:
        return read_range(url, 0, None)
    half = count // 2
    return sum(pool.starmap(read_range, [(url, 0, half), (url, half, None)]))  # type: ignore[attr-defined]


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (the verify helpers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare_hash(canonicals: list[bytes]) -> int:
    sha256 = hashlib.sha256
    for canonical in canonicals:
        sha256(canonical).hexdigest()
    return len(canonicals)


def median_seconds(work: Callable[[], object], runs: int) -> tuple[float, object]:
    samples = []
    result: object = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = work()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), result


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="etmf-verify-bench-")
    scratch_db = None
    admin = None
    if args.database_url:
        base = make_url(args.database_url)
        scratch_db = f"etmf_verify_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch_db}"'))
        url = base.set(database=scratch_db).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp.name}/bench.db"
    try:
        settings = load_settings(overrides={"database_url": url, "instance_path": tmp.name},
                                 environ={})
        db = Database(settings)
        migrate.upgrade(db.engine)
        t0 = time.perf_counter()
        if db.dialect == "sqlite":
            canonicals = load_sqlite(f"{tmp.name}/bench.db", args.events)
        else:
            canonicals = load_postgres(db.engine, args.events)
        load_s = time.perf_counter() - t0
        load = os.getloadavg()
        print(f"database {db.dialect}; {args.events:,} events generated and loaded in "
              f"{load_s:.0f} s; load average {load[0]:.2f} {load[1]:.2f}", flush=True)

        print(f"before measuring: {_uptime()}", flush=True)
        hash_s, _ = median_seconds(lambda: bare_hash(canonicals), args.runs)
        canonicals.clear()  # half a gigabyte at a million events
        ctx = multiprocessing.get_context("spawn")
        samples: dict[str, list[float]] = {k: [] for k in ("v1", "v2", "r1", "r2", "c1", "c2")}
        with ctx.Pool(2) as pool:
            bare_read(url, args.events, pool)  # untimed: start both readers, warm the cache
            # Round-robin, so a change of the machine's load hits every measure alike.
            for _ in range(args.runs):
                for workers in (1, 2):
                    c0, t0 = cpu_seconds(), time.perf_counter()
                    with Session(db.engine) as session:
                        # min_parallel=1: the helper joins in at any --events
                        report = verify_chain(session, workers=workers, min_parallel=1)
                    samples[f"v{workers}"].append(time.perf_counter() - t0)
                    samples[f"c{workers}"].append(cpu_seconds() - c0)
                    assert report.ok and report.checked == args.events, report
                    t0 = time.perf_counter()
                    n = bare_read(url, args.events, pool if workers == 2 else None)
                    samples[f"r{workers}"].append(time.perf_counter() - t0)
                    assert n == args.events
                print(f"  run measured: {_uptime()}", flush=True)
        med = {k: statistics.median(v) for k, v in samples.items()}
        print(f"{'measure':<40} {'events/s':>12} {'seconds':>8} {'CPU s':>7}")
        print(f"{'floor: bare SHA-256 of canonical':<40} {args.events / hash_s:>12,.0f} "
              f"{hash_s:>8.2f}")
        for workers in (1, 2):
            label = "1 process" if workers == 1 else f"{workers} processes"
            verify_s, read_s = med[f"v{workers}"], med[f"r{workers}"]
            floor_s = read_s + hash_s / workers
            print(f"{'verify_chain, ' + label:<40} {args.events / verify_s:>12,.0f} "
                  f"{verify_s:>8.2f} {med[f'c{workers}']:>7.2f}")
            print(f"{'floor: bare page fetch, ' + label:<40} {args.events / read_s:>12,.0f} "
                  f"{read_s:>8.2f}")
            print(f"{'floor: fetch + SHA-256, ' + label:<40} {args.events / floor_s:>12,.0f} "
                  f"{floor_s:>8.2f}")
            print(f"{'  ratio verify / (fetch + SHA-256)':<40} {verify_s / floor_s:>12.2f}")
        print(f"2 processes vs 1: verify {med['v1'] / med['v2']:.2f}x, "
              f"floor fetch {med['r1'] / med['r2']:.2f}x; CPU for verify "
              f"{med['c2'] / med['c1']:.2f}x (medians of {args.runs} runs; "
              f"after: {_uptime()})")
        db.dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch_db}" WITH (FORCE)'))
            admin.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    main()
