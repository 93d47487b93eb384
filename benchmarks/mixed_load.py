"""Mixed load: 50 concurrent clients for 60 s against `etmf serve`, beside a do-nothing app.

    .venv/bin/python benchmarks/mixed_load.py --instance /tmp/scale-25k \
        [--clients 50] [--duration 60] [--workers 2] [--threads 2] [--no-file] [--json OUT]

Needs Debian's ``wrk`` (``apt-get install -y wrk``) and an instance made by
``benchmarks/generate.py``. Starts ``etmf serve --instance DIR`` (gunicorn, gthread) on a
free loopback port, signs the study manager in through the real sign-in form (CSRF
included) and makes an API token for a TMF specialist through the services; then ``wrk``
with ``--clients`` connections and a Lua script sends, in a fixed shuffled order:

- 30 % browse the TMF tree: the study overview and the document list by zone, site and
  artifact;
- 25 % search: a term, a term with a site or status filter, a phrase of common words;
- 25 % document page of a random document;
- 15 % download of a random document's current version;
- 5 % file a document: ``POST /api/v1/studies/<id>/documents`` (a small real PDF,
  multipart, Bearer token) - this adds documents to the instance; ``--no-file`` leaves it
  out.

Printed: requests/s, latency p50/p99 (wrk's own histogram), errors (socket errors,
timeouts, and responses with a status >= 400, by status), and the peak RSS of each gunicorn
worker (``VmHWM`` in ``/proc/<pid>/status`` at the end). Floor: the same wrk script, in the
same run, against a do-nothing gunicorn app (same workers and threads) answering 200 to
everything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

READY_TIMEOUT_S = 120.0
FLOOR_APP = """
def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""
# Requests per kind in every 100 (see the module docstring).
MIX = {"tree": 30, "search": 25, "document": 25, "download": 15, "file": 5}
LUA = r"""
local requests = {}
local bodies = {}
local cookie = os.getenv("MIXED_COOKIE")
local token = os.getenv("MIXED_TOKEN")
local boundary = "mixedloadboundary7d93"
local counter = 0
statuses = {}
local thread_no = 0
local threads = {}

function setup(thread)
  thread_no = thread_no + 1
  thread:set("offset", thread_no * 7919)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("MIXED_PLAN")) do
    local method, path, body = line:match("^(%S+) (%S+) ?(%S*)$")
    table.insert(requests, {method, path, body})
  end
  counter = offset or 0
end

local function read_body(name)
  if bodies[name] == nil then
    local f = io.open(name, "rb")
    bodies[name] = f:read("*all")
    f:close()
  end
  return bodies[name]
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  if r[1] == "POST" then
    return wrk.format("POST", r[2], {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, read_body(r[3]))
  end
  return wrk.format("GET", r[2], {["Cookie"] = cookie})
end

function response(status, headers, body)
  if status >= 400 then
    statuses[status] = (statuses[status] or 0) + 1
  end
  -- Keep the session cookie the server renews, as a browser does (one per wrk thread).
  local renewed = (headers["Set-Cookie"] or ""):match("^(session=[^;]*)")
  if renewed then
    cookie = cookie:gsub("session=[^;]*", function() return renewed end)
  end
end

function done(summary, latency, requests)
  local bad = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do
      bad[tostring(code)] = (bad[tostring(code)] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(bad) do
    table.insert(parts, string.format('"%s": %d', code, n))
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "bad": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    table.concat(parts, ", ")))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    bad: dict[str, int]
    socket_errors: int
    peak_rss_mb: list[float]
    #: CPU seconds used during the run by the server's workers and by PostgreSQL backends.
    cpu_workers_s: float = 0.0
    cpu_postgres_s: float = 0.0
    #: Per kind of request, the workers' own time (see :func:`server_times`).
    by_kind: dict[str, dict[str, float]] | None = None

    def line(self) -> str:
        rss = ", ".join(f"{r:.0f}" for r in self.peak_rss_mb)
        bad = ", ".join(f"{k}: {v}" for k, v in sorted(self.bad.items())) or "none"
        per = max(self.requests, 1)
        return (f"{self.name:<10} {self.rps:9.1f} req/s  p50 {self.p50_ms:8.1f} ms  "
                f"p99 {self.p99_ms:8.1f} ms  max {self.max_ms:8.0f} ms  "
                f"errors {self.errors} (socket {self.socket_errors}; status {bad})  "
                f"peak RSS/worker MB [{rss}]  CPU per request: workers "
                f"{1000 * self.cpu_workers_s / per:.1f} ms, PostgreSQL "
                f"{1000 * self.cpu_postgres_s / per:.1f} ms" + "".join(
                    f"\n  {kind:<9} {k['n']:6.0f} requests, in the worker p50 "
                    f"{k['p50_ms']:6.0f} ms, p99 {k['p99_ms']:6.0f} ms, max {k['max_ms']:6.0f} ms"
                    for kind, k in (self.by_kind or {}).items()))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes (children not included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def postgres_pids() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() == "postgres":
                pids.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def worker_pids(master: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{master}/task").glob("*/children"):
        pids += [int(p) for p in task.read_text().split()]
    return pids


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return float("nan")
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def wait_ready(base: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {base} did not start; see {log}")


def sign_in(base: str, email: str, password: str, wait_s: float = 600.0) -> str:
    """The real sign-in form (CSRF token from the page); returns the Cookie header.

    A 503 (the database busy, e.g. SQLite's write lock held by the first run of the daily
    background jobs on a freshly generated instance) is retried for up to ``wait_s``; how
    long that took is printed, since users would have waited as long."""
    started = time.monotonic()
    while True:
        try:
            cookie = _sign_in_once(base, email, password)
        except _Busy:
            if time.monotonic() - started > wait_s:
                raise RuntimeError(f"sign-in kept answering 503 for {wait_s:.0f} s") from None
            time.sleep(2)
            continue
        waited = time.monotonic() - started
        if waited > 5:
            print(f"note: sign-in answered 503 (database busy) for {waited:.0f} s after the "
                  "server started", flush=True)
        return cookie


class _Busy(Exception):
    pass


def _sign_in_once(base: str, email: str, password: str) -> str:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page.text)
    data = {"email": email, "password": password}
    if match:
        data["csrf_token"] = match.group(1)
    answer = session.post(f"{base}/login", data=data, timeout=60, allow_redirects=False)
    if answer.status_code == 503:
        raise _Busy
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"sign-in as {email} failed: HTTP {answer.status_code}")
    check = session.get(f"{base}/studies/1", timeout=60, allow_redirects=False)
    if check.status_code != 200:
        raise RuntimeError(f"signed in, but the study page answered {check.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def prepare(instance: Path, folder: Path, seed: int, with_file: bool,
            only: str | None = None) -> tuple[str, Path]:
    """The API token, the request plan (one request a line) and the upload bodies."""
    from sqlalchemy import select

    from etmf import create_app
    from etmf.accounts.models import User
    from etmf.accounts.services import create_api_token
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services, shutdown
    from etmf.demo import make_pdf
    from etmf.documents.models import Document, DocumentVersion
    from etmf.migrate import upgrade
    from etmf.settings import load_settings
    from etmf.studies.models import Site

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generate import DOMAIN, RARE, WORDS

    rng = random.Random(seed)
    app = create_app(load_settings(overrides={"instance_path": str(instance),
                                              "log_level": "WARNING",
                                              "jobs_runner": "worker"}))
    with app.app_context():
        svc = services(app)
        try:
            upgrade(svc.db.engine)  # an instance generated by older code: as `etmf db upgrade`
            run_due_jobs(app)
            with svc.db.read_session() as session:
                filer = session.scalar(select(User).where(
                    User.email == f"specialist1@{DOMAIN}"))
                assert filer is not None, "not an instance made by benchmarks/generate.py"
                max_id = session.scalar(select(Document.id).order_by(Document.id.desc())
                                        .limit(1)) or 1
                sample = rng.sample(range(1, max_id + 1), min(2000, max_id))
                docs = dict(session.execute(
                    select(Document.id, DocumentVersion.number)
                    .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
                    .where(Document.id.in_(sample))).all())
                sites = list(session.scalars(select(Site.id)))
                artifacts = [a for (a,) in session.execute(
                    select(Document.artifact_id).distinct())]
            with unit_of_work(svc.db, svc.clock, Actor(filer.id, filer.full_name)) as uow:
                token = create_api_token(uow, filer.id, "mixed load benchmark", 1)
                uow.commit()
        finally:
            shutdown(app)
    doc_ids = sorted(docs)
    bodies = []
    if with_file:
        for n in range(20):
            pdf = make_pdf(f"Monitoring visit report {n}",
                           " ".join(rng.choice(WORDS) for _ in range(120)))
            head = "".join(
                f'--mixedloadboundary7d93\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                f"{v}\r\n" for k, v in (("artifact", "05.04.04"), ("level", "site"),
                                        ("site_id", rng.choice(sites)),
                                        ("title", f"Monitoring visit report (load {n})"),
                                        ("document_date", "2026-01-15")))
            body = (head.encode() + b'--mixedloadboundary7d93\r\nContent-Disposition: '
                    b'form-data; name="file"; filename="report.pdf"\r\nContent-Type: '
                    b'application/pdf\r\n\r\n' + pdf + b"\r\n--mixedloadboundary7d93--\r\n")
            path = folder / f"body{n}.bin"
            path.write_bytes(body)
            bodies.append(path)
    lines = []
    mix = dict(MIX) if with_file else {k: v for k, v in MIX.items() if k != "file"}
    if only:
        mix = {only: 1}
    kinds = [k for k, n in mix.items() for _ in range(n)]
    for _ in range(4000):
        kind = rng.choice(kinds)
        if kind == "tree":
            lines.append("GET " + rng.choice([
                "/studies/1", f"/studies/1/documents?zone={rng.randint(1, 11):02d}",
                f"/studies/1/documents?site={rng.choice(sites)}",
                f"/studies/1/documents?artifact={rng.choice(artifacts)}"]))
        elif kind == "search":
            word = rng.choice(WORDS) if rng.random() < 0.5 else rng.choice(RARE[:500])
            lines.append("GET " + rng.choice([
                f"/search?study=1&q={word}",
                f"/search?study=1&q={word}&site={rng.choice(sites)}",
                f"/search?study=1&q={word}&status=approved",
                f"/search?study=1&q=%22{rng.choice(WORDS)}+{rng.choice(WORDS)}%22"]))
        elif kind == "document":
            lines.append(f"GET /documents/{rng.choice(doc_ids)}")
        elif kind == "download":
            doc = rng.choice(doc_ids)
            lines.append(f"GET /documents/{doc}/versions/{docs[doc]}/download")
        else:
            lines.append(f"POST /api/v1/studies/1/documents {rng.choice(bodies)}")
    plan = folder / "plan.txt"
    plan.write_text("\n".join(lines) + "\n")
    return token, plan


def run_due_jobs(app: Any) -> None:
    """Bring the instance to its steady state first, as ``etmf jobs run-due`` does: the
    periodic tasks due at a server's first start (reminders over every document, KRI
    snapshots, the audit checkpoint) run once a day and would otherwise run in the
    measured workers' background threads, and start again in every run, since each run
    stops its server before they finish. How long they took is printed."""
    from etmf.jobs import requeue_stale, schedule_due, work_once

    started = time.perf_counter()
    requeue_stale(app)
    scheduled = schedule_due(app)
    ran = work_once(app)
    print(f"steady state: {len(scheduled)} periodic task(s) due, {ran} job(s) run in "
          f"{time.perf_counter() - started:.0f} s before the server started", flush=True)


def run_wrk(base: str, script: Path, env: dict[str, str], clients: int, duration: int,
            threads: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--timeout",
         "10s", "-s", str(script), base],
        capture_output=True, text=True, env={**os.environ, **env}, check=True)
    match = re.search(r"WRKJSON (\{.*\})", out.stdout)
    if not match:
        raise RuntimeError(f"wrk gave no summary:\n{out.stdout}\n{out.stderr}")
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def start_profiles(pids: list[int], folder: Path | None,
                   seconds: int) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` on each worker for the run: collapsed stacks (idle threads too,
    so waits show beside work) into ``folder/worker-<pid>.txt``."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds),
                              "--rate", "50", "--idle", "--threads", "--format", "raw",
                              "--output", str(folder / f"worker-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in pids]


#: The kind of a request, from the request line of an access log (the mix's URLs).
KIND_OF = [("file", re.compile(r'"POST /api/v1/studies/\d+/documents ')),
           ("download", re.compile(r'"GET /documents/\d+/versions/\d+/download ')),
           ("document", re.compile(r'"GET /documents/\d+ ')),
           ("search", re.compile(r'"GET /search\?')),
           ("tree", re.compile(r'"GET /studies/\d+(/documents\?\S*)? '))]
SERVER_MS = re.compile(r" (\d+)ms$")


def server_times(log: Path, start: int) -> dict[str, dict[str, float]]:
    """Per kind of request: how many, and the median, p99 and longest time the workers
    spent on them (``etmf serve``'s access log from byte ``start``: the time from reading
    the request to the response, without the wait for a free thread before it)."""
    times: dict[str, list[int]] = {}
    with open(log, "rb") as f:
        f.seek(start)
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip()
            took = SERVER_MS.search(line)
            if took is None:
                continue
            kind = next((k for k, pattern in KIND_OF if pattern.search(line)), "other")
            times.setdefault(kind, []).append(int(took.group(1)))
    found = {}
    for kind, values in sorted(times.items()):
        values.sort()
        found[kind] = {"n": len(values), "p50_ms": float(values[len(values) // 2]),
                       "p99_ms": float(values[min(len(values) - 1, len(values) * 99 // 100)]),
                       "max_ms": float(values[-1])}
    return found


def measure(name: str, cmd: list[str], cwd: Path, env: dict[str, str], base: str,
            log: Path, load: Any, profile: Path | None = None) -> Result:
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        server = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        wait_ready(base, log)
        wrk_env = load(base)
        workers = worker_pids(server.pid)
        spies = start_profiles(workers, profile, int(wrk_env["duration"]))
        pg_before = {pid: cpu_seconds([pid]) for pid in postgres_pids()}
        workers_before = cpu_seconds(workers)
        stats = run_wrk(base, **wrk_env)
        cpu_workers = cpu_seconds(workers) - workers_before
        # Backends that started during the run count from zero; ones that ended are lost
        # (the pools keep theirs open, so few are).
        cpu_pg = sum(cpu_seconds([pid]) - pg_before.get(pid, 0.0) for pid in postgres_pids())
        rss = [peak_rss_mb(pid) for pid in workers]
        for spy in spies:
            spy.wait(timeout=120)
    finally:
        server.terminate()  # our own gunicorn master; its workers follow it
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    seconds = stats["duration_us"] / 1e6
    socket_errors = stats["connect"] + stats["read"] + stats["write"] + stats["timeout"]
    return Result(name, stats["requests"], stats["requests"] / seconds,
                  stats["p50_us"] / 1000, stats["p90_us"] / 1000, stats["p99_us"] / 1000,
                  stats["max_us"] / 1000, socket_errors + stats["status"], stats["bad"],
                  socket_errors, rss, cpu_workers, cpu_pg, server_times(log, start))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", required=True, type=Path)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2,
                        help="threads per gunicorn worker (etmf serve's default)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-file", action="store_true",
                        help="leave out filing (the instance is then left unchanged)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record each etmf worker with py-spy (collapsed stacks, idle "
                             "included) into DIR; the figures then include its sampling")
    parser.add_argument("--only", choices=sorted(MIX), default=None,
                        help="one kind of request instead of the mix (CPU per request by kind)")
    parser.add_argument("--skip-floor", action="store_true",
                        help="measure etmf only (quick iterations; no ratio)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    instance = args.instance.resolve()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generate import DOMAIN, PASSWORD

    with tempfile.TemporaryDirectory(prefix="etmf-mixed-") as tmp:
        folder = Path(tmp)
        token, plan = prepare(instance, folder, args.seed,
                              not args.no_file or args.only == "file", args.only)
        script = folder / "mixed.lua"
        script.write_text(LUA)
        (folder / "floorapp.py").write_text(FLOOR_APP)
        etmf = str(Path(sys.executable).with_name("etmf"))

        def wrk_for(cookie: str) -> dict[str, Any]:
            return {"script": script, "clients": args.clients, "duration": args.duration,
                    "threads": args.wrk_threads,
                    "env": {"MIXED_COOKIE": cookie, "MIXED_TOKEN": token,
                            "MIXED_PLAN": str(plan)}}

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        etmf_result = measure(
            "etmf", [etmf, "serve", "--instance", str(instance), "--bind",
                     f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads",
                     str(args.threads)], folder, {"ETMF_LOG_LEVEL": "WARNING"}, base,
            instance / "mixed-load-serve.log",
            lambda b: wrk_for(sign_in(b, f"manager@{DOMAIN}", PASSWORD)), args.profile)
        if args.skip_floor:
            print(etmf_result.line())
            return {"etmf": etmf_result.__dict__}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        floor_result = measure(
            "floor", [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k",
                      "gthread", "--threads", str(args.threads), "-b", f"127.0.0.1:{port}",
                      "floorapp:app"], folder, {}, base, folder / "floor.log",
            lambda b: wrk_for("session=none"))
    load = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"mixed load: {args.clients} clients for {args.duration} s, gunicorn "
          f"{args.workers} workers x {args.threads} threads, wrk {args.wrk_threads} threads; "
          f"instance {instance}; mix {MIX if not args.no_file else 'without filing'}")
    print(etmf_result.line())
    print(floor_result.line())
    print(f"ratio floor/etmf requests/s: {floor_result.rps / etmf_result.rps:.1f}; "
          f"uptime: {uptime}")
    summary = {"etmf": etmf_result.__dict__, "floor": floor_result.__dict__,
               "clients": args.clients, "duration": args.duration, "workers": args.workers,
               "threads": args.threads, "load": load[:2], "instance": str(instance)}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
