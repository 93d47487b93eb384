"""Ingest through the HTTP API: documents/s sustained and the lag until each is searchable.

    .venv/bin/python benchmarks/ingest_api.py [--docs 10000] [--clients 4] [--workers 2]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/etmf_ingest_bench]

Builds a fresh embedded instance (SQLite + Whoosh, the defaults; with ``--database-url``
PostgreSQL and its full-text search, in that scratch database, dropped and made again), a
study, a TMF specialist
and an API token through the services; starts `etmf serve` (gunicorn, gthread) on a free
loopback port; then ``--clients`` threads POST ``/api/v1/studies/<id>/documents`` (one small
text file each, multipart, Bearer token) until ``--docs`` are filed.

Every file holds the word ``ingestbench`` and one word of its own. While filing runs, a
poller asks ``GET /api/v1/search?q=ingestbench`` how many documents are searchable, every
``--poll`` seconds, until all are. The lag of the k-th acknowledged document is the first
poll that saw at least k searchable minus the moment k were acknowledged (indexing is
batched and in order of commit, so the count is a fair clock). Additionally every 100th
document's own word is searched until found: its exact lag.

Printed: documents/s over the whole run and over its middle 80 % (sustained), the median
and p95 of the POST latency, the lag p50/p95/max, and the floor: the same number of bare
``requests`` POSTs of the same body to a tiny gunicorn app that only reads the upload.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
READY_TIMEOUT_S = 90.0
EXACT_EVERY = 100
FLOOR_APP = """
def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("201 Created", [("Content-Type", "application/json")])
    return [b'{"id": 1}']
"""


def _chaos():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kill_uploads",
                                                  HERE.parent / "chaos" / "kill_uploads.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_uploads"] = module
    spec.loader.exec_module(module)
    return module


def word_of(n: int) -> str:
    """A unique, stemming-proof letters-only word per document (q + base-26 digits)."""
    letters = ""
    while True:
        n, r = divmod(n, 26)
        letters = chr(ord("a") + r) + letters
        if n == 0:
            break
    return "qzx" + letters.rjust(4, "a")


def body_of(n: int) -> bytes:
    return (f"Monitoring visit report {n}. ingestbench {word_of(n)}. The site staff "
            "reviewed consent forms and source data; no deviations were found.\n").encode()


def use_postgres(instance: Path, database_url: str) -> None:
    """Point the instance at a fresh PostgreSQL database (as generate.py does)."""
    from generate import prepare_database

    prepare_database(database_url, replace=True)
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "settings.toml").write_text(
        f'search_backend = "postgres"\ndatabase_url = {json.dumps(database_url)}\n',
        encoding="utf-8")


def build_instance(instance: Path) -> tuple[int, str]:
    from etmf import create_app
    from etmf.accounts.services import NewUser, create_api_token, create_user, grant_membership
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.keys import ensure_system_keys
    from etmf.migrate import upgrade
    from etmf.settings import load_settings
    from etmf.studies.services import NewStudy, create_study

    app = create_app(load_settings(overrides={"instance_path": str(instance),
                                              "log_level": "WARNING"}, environ={}))
    svc = services(app)
    try:
        upgrade(svc.db.engine)
        ensure_system_keys(svc.settings)
        with app.app_context(), unit_of_work(svc.db, svc.clock, Actor.system("bench")) as uow:
            study_id = create_study(uow, NewStudy(protocol_number="INGEST-1",
                                                  title="Ingest benchmark", phase="III",
                                                  sponsor="Bench"))
            user = create_user(uow, NewUser(email="ingest@example.org", full_name="Ingrid Est",
                                            password="Ingest-Benchmark-2026-pw"))
            grant_membership(uow, user_id=user.id, study_id=study_id, role="tmf_specialist")
            uow.commit()
        with app.app_context(), unit_of_work(svc.db, svc.clock, Actor(user.id, "Ingrid")) as uow:
            token = create_api_token(uow, user.id, "ingest benchmark", 30)
            uow.commit()
        return study_id, token
    finally:
        svc.db.dispose()


@dataclass
class Run:
    acked: list[float] = field(default_factory=list)   # acknowledgement times, in order
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    polls: list[tuple[float, int]] = field(default_factory=list)  # (time, searchable)
    exact: dict[int, float] = field(default_factory=dict)  # n -> lag
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(base: str, token: str, study_id: int, numbers: list[int], run: Run) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for n in numbers:
        t0 = time.monotonic()
        response = session.post(
            f"{base}/api/v1/studies/{study_id}/documents",
            data={"artifact": "01.01.02", "title": f"Monitoring visit report {n}",
                  "level": "trial", "document_date": "2026-01-15"},
            files={"file": (f"report-{n}.txt", body_of(n), "text/plain")}, timeout=120)
        t1 = time.monotonic()
        with run.lock:
            if response.status_code == 201:
                run.acked.append(t1)
                run.latencies.append(t1 - t0)
            else:
                run.errors.append(f"{response.status_code} {response.text[:200]}")
        if n % EXACT_EVERY == 0 and response.status_code == 201:
            threading.Thread(target=exact_lag, args=(base, token, n, t1, run),
                             daemon=True).start()


SEARCH_ERRORS: list[str] = []


def search_total(session: requests.Session, base: str, q: str) -> int:
    """Searchable documents matching ``q``; -1 (and the error noted) when the call fails."""
    response = session.get(f"{base}/api/v1/search", params={"q": q, "limit": 1}, timeout=60)
    if response.status_code != 200:
        SEARCH_ERRORS.append(f"{response.status_code} {response.text[:200]}")
        return -1
    return int(response.json()["total"])


def exact_lag(base: str, token: str, n: int, acked_at: float, run: Run) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    deadline = acked_at + 600
    while time.monotonic() < deadline:
        if search_total(session, base, word_of(n)) >= 1:
            with run.lock:
                run.exact[n] = time.monotonic() - acked_at
            return
        time.sleep(0.5)


def poller(base: str, token: str, total: int, every: float, run: Run,
           done: threading.Event) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    deadline = None
    while True:
        found = search_total(session, base, "ingestbench")
        now = time.monotonic()
        run.polls.append((now, found))
        if found >= total:
            return
        if done.is_set():
            deadline = deadline or now + 600
            if now > deadline:
                return
        time.sleep(every)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)] if ordered else float("nan")


def floor_rate(docs: int, clients: int, workers: int) -> float:
    """Bare requests POSTing the same bodies to a do-nothing gunicorn app: the floor."""
    chaos = _chaos()
    port = chaos._free_port()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "floorapp.py").write_text(FLOOR_APP)
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread",
             "--threads", "2", "-b", f"127.0.0.1:{port}", "floorapp:app"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)

            def bare(numbers: list[int]) -> None:
                session = requests.Session()
                for n in numbers:
                    session.post(f"http://127.0.0.1:{port}/", data={"title": str(n)},
                                 files={"file": (f"r{n}.txt", body_of(n), "text/plain")},
                                 timeout=60).raise_for_status()

            t0 = time.monotonic()
            threads = [threading.Thread(target=bare, args=(list(range(c, docs, clients)),))
                       for c in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return docs / (time.monotonic() - t0)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--database-url", default="",
                        help="a scratch PostgreSQL database (dropped and made again): "
                             "PostgreSQL and its search instead of SQLite and Whoosh")
    parser.add_argument("--instance", default=None,
                        help="build the instance here and keep it (serve.log included)")
    args = parser.parse_args()
    chaos = _chaos()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="etmf-ingest-") as folder:
        instance = Path(args.instance or folder) / "instance"
        if args.database_url:
            use_postgres(instance, args.database_url)
        study_id, token = build_instance(instance)
        port = chaos._free_port()
        log = instance / "serve.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                chaos._etmf("serve", "--instance", str(instance), "--bind",
                            f"127.0.0.1:{port}", "--workers", str(args.workers),
                            "--threads", str(args.threads)),
                env=chaos._clean_env(instance), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            else:
                raise RuntimeError(f"etmf serve did not start; see {log}")
            run = Run()
            done = threading.Event()
            watcher = threading.Thread(target=poller,
                                       args=(base, token, args.docs, args.poll, run, done))
            t0 = time.monotonic()
            watcher.start()
            clients = [threading.Thread(target=client, args=(
                base, token, study_id, list(range(c + 1, args.docs + 1, args.clients)), run))
                for c in range(args.clients)]
            for t in clients:
                t.start()
            for t in clients:
                t.join()
            done.set()
            filed_s = time.monotonic() - t0
            watcher.join()
            time.sleep(0)  # let exact-lag threads finish their last poll
            for _ in range(600):
                if len(run.exact) >= len(run.acked) // EXACT_EVERY:
                    break
                time.sleep(0.5)
        finally:
            process.terminate()  # our own gunicorn master (its workers follow it)
            process.wait(timeout=60)

    acked = sorted(run.acked)
    n = len(acked)
    lo, hi = acked[n // 10], acked[n * 9 // 10 - 1]
    sustained = (n * 8 // 10 - 1) / (hi - lo) if hi > lo else float("nan")
    lags = []
    for k, at in enumerate(acked, start=1):
        seen = next((t for t, found in run.polls if found >= k), None)
        if seen is not None:
            lags.append(max(seen - at, 0.0))
    floor = floor_rate(args.docs, args.clients, args.workers)
    load = os.getloadavg()
    print(f"ingest via HTTP API: {n:,} documents filed ({len(run.errors)} errors), "
          f"{args.clients} clients, gunicorn {args.workers} workers x {args.threads} threads; "
          f"load average {load_before:.2f} at the start, {load[0]:.2f} at the end")
    print(f"  documents/s overall     {n / filed_s:8.1f}")
    print(f"  documents/s sustained   {sustained:8.1f}   (middle 80 % of acknowledgements)")
    print(f"  floor: bare POST/s      {floor:8.1f}   (same bodies, do-nothing gunicorn app)")
    print(f"  POST latency p50 / p95  {statistics.median(run.latencies) * 1000:8.0f} / "
          f"{pct(run.latencies, 0.95) * 1000:.0f} ms")
    print(f"  searchable lag (count)  p50 {statistics.median(lags):.1f} s, "
          f"p95 {pct(lags, 0.95):.1f} s, max {max(lags):.1f} s, "
          f"{len(lags):,} of {n:,} seen")
    exact = list(run.exact.values())
    if exact:
        print(f"  searchable lag (exact)  p50 {statistics.median(exact):.1f} s, "
              f"p95 {pct(exact, 0.95):.1f} s, max {max(exact):.1f} s "
              f"({len(exact)} sampled documents)")
    if run.errors:
        print("  first errors:", *run.errors[:3], sep="\n    ")
    if SEARCH_ERRORS:
        print(f"  search API errors while polling: {len(SEARCH_ERRORS)}; first:",
              *SEARCH_ERRORS[:3], sep="\n    ")


if __name__ == "__main__":
    main()
