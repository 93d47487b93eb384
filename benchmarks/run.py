"""Every benchmark in one command, and one table: figure, median, p95, floor, ratio, target.

    .venv/bin/python benchmarks/run.py [--sizes 25000,250000] [--instance DIR ...]
        [--database-url URL] [--work /tmp/etmf-scale] [--only STEP,...] [--skip STEP,...]
        [--quick] [--timeout 7200]

Steps (each a subprocess with its options; its whole output is kept in
``<work>/logs/<step>.log``):

- ``generate``   benchmarks/generate.py at each of ``--sizes`` (skipped for the sizes given
                 as ``--instance``); figures: seconds, documents/s, events/s;
- ``mixed``      benchmarks/mixed_load.py on each instance: requests/s, p50/p99, errors,
                 peak RSS per worker, beside a do-nothing gunicorn app;
- ``forms``      benchmarks/search_forms.py on each instance (the mix's search forms
                 through the server's index, beside bare Whoosh or bare SQL);
- ``verify``     benchmarks/verify_speed.py at 1,000,000 events;
- ``search``     benchmarks/search_speed.py (term, filtered, phrase; Whoosh and, with a
                 PostgreSQL URL, PostgreSQL);
- ``pages``      benchmarks/pages_speed.py (tree, document and other pages at the sizes);
- ``dashboard``  benchmarks/dashboard_speed.py at the largest size;
- ``ingest``     benchmarks/ingest_api.py (documents/s through the HTTP API, lag until
                 searchable);
- ``ems``        benchmarks/ems_export.py (MB/s beside a plain zip);
- ``sign``       benchmarks/sign_latency.py (ms per signature beside a default pyHanko sign).

A step that fails (a script another change is still working on, a missing tool) is reported
as FAILED with the end of its output, and the run goes on. ``--quick`` runs every step at a
small size (a smoke test of the whole chain, not figures to record).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


@dataclass
class Row:
    figure: str
    median: float | None
    p95: float | None = None
    floor: float | None = None
    unit: str = "ms"
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.median is None or not self.floor:
            return None
        return self.median / self.floor


@dataclass
class Step:
    name: str
    argv: list[str]
    parse: Callable[[str], list[Row]]
    after: Callable[[], list[Row]] | None = None  # rows read from a JSON file it wrote


def _f(pattern: str, text: str, flags: int = re.M) -> list[tuple[str, ...]]:
    return [m if isinstance(m, tuple) else (m,) for m in re.findall(pattern, text, flags)]


def _num(s: str) -> float:
    return float(s.replace(",", ""))


# ---- parsers of each script's printed figures -------------------------------------------


def parse_verify(out: str) -> list[Row]:
    """One row per process count: verify_chain beside the bare page fetch + SHA-256."""
    floors = dict(_f(r"^floor: fetch \+ SHA-256, (\d+) process(?:es)?\s+([\d,]+)", out))
    rows = []
    for procs, rate in _f(r"^verify_chain, (\d+) process(?:es)?\s+([\d,]+)", out):
        events = _num(rate)
        floor = floors.get(procs)
        rows.append(Row(f"audit verify (1M events), {procs} process{'es' if procs != '1' else ''}",
                        events, None, _num(floor) if floor else None, "events/s",
                        ">= 100,000 events/s", events >= 100_000))
    return rows


def parse_search(out: str) -> list[Row]:
    rows = []
    for backend, name, p50, p95, b50, _b95 in _f(
            r"^(\w+)\s+(\w+)\s+ours p50\s+([\d.]+) ms p95\s+([\d.]+) ms \| bare p50\s+"
            r"([\d.]+) ms p95\s+([\d.]+) ms", out):
        bound = 2000.0 if "phrase" in name else 200.0
        rows.append(Row(f"search {backend} {name}", float(p50), float(p95), float(b50), "ms",
                        f"p95 < {bound:g} ms", float(p95) < bound))
    return rows


def forms_rows(size: str) -> Callable[[str], list[Row]]:
    def parse(out: str) -> list[Row]:
        rows = []
        backend = "postgresql" if "PostgreSQL full-text search" in out else "whoosh"
        for form, _n, p50, p95, worst, cut, floor in _f(
                r"^(term|term \+ one site|term \+ status|phrase of common words)\s+(\d+)\s+"
                r"([\d.]+)ms\s+([\d.]+)ms\s+([\d.]+)ms\s+(\d+)\s+([\d.]+)ms", out):
            if form.startswith("phrase"):  # within its bound, never cut
                rows.append(Row(f"search {backend} {size} {form} (max)", float(p50), float(worst),
                                float(floor), "ms (max in p95 column)", "max < 2000 ms",
                                float(worst) < 2000 and cut == "0"))
            else:
                rows.append(Row(f"search {backend} {size} {form}", float(p50), float(p95),
                                float(floor), "ms", "p95 < 200 ms", float(p95) < 200))
        return rows

    return parse


def _page_target(label: str) -> float | None:
    label = label.lower()
    if "dashboard" in label or "completeness" in label:
        return 500.0
    if "tree" in label:
        return 150.0
    if "document" in label and "documents" not in label:
        return 100.0
    return None


def parse_pages(out: str) -> list[Row]:
    rows = []
    size = ""
    for line in out.splitlines():
        found = re.match(r"^(\w+): \d+ sites, \d+ countries, ([\d,]+) documents", line)
        if found:
            size = f" @{found.group(2)} ({found.group(1)})"
            continue
        m = re.match(r"^(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", line)
        if m and size:
            label, med, p95, floor = m.group(1), *map(float, m.group(2, 3, 4))
            bound = _page_target(label)
            rows.append(Row(f"page {label}{size}", med, p95, floor, "ms",
                            f"p95 < {bound:g} ms" if bound else "",
                            (p95 < bound) if bound else None))
    return rows


def parse_dashboard(out: str) -> list[Row]:
    ours = _f(r"^dashboard\s+median\s+([\d.]+) ms\s+p95\s+([\d.]+) ms", out)
    after = _f(r"^after change\s+median\s+([\d.]+) ms\s+p95\s+([\d.]+) ms", out)
    floor = _f(r"^floor\s+median\s+([\d.]+) ms\s+p95\s+([\d.]+) ms", out)
    rows = []
    base = float(floor[0][0]) if floor else None
    for name, found in (("dashboard", ours), ("dashboard after a change", after)):
        if found:
            p95 = float(found[0][1])
            rows.append(Row(name, float(found[0][0]), p95, base, "ms", "p95 < 500 ms",
                            p95 < 500))
    return rows


def parse_ingest(out: str) -> list[Row]:
    sustained = _f(r"documents/s sustained\s+([\d.]+)", out)
    floor = _f(r"floor: bare POST/s\s+([\d.]+)", out)
    lag = _f(r"searchable lag \(count\)\s+p50 ([\d.]+) s, p95 ([\d.]+) s, max ([\d.]+) s", out)
    errors = _f(r"documents filed \((\d+) errors\)", out)
    rows = []
    if sustained:
        rate = float(sustained[0][0])
        ok = rate >= 20 and (not errors or errors[0][0] == "0")
        rows.append(Row("ingest via API (sustained)", rate, None,
                        float(floor[0][0]) if floor else None, "docs/s", ">= 20 docs/s",
                        ok))
    if lag:
        worst = float(lag[0][2])
        rows.append(Row("ingest: lag until searchable", float(lag[0][0]), float(lag[0][1]),
                        None, "s", "max < 60 s", worst < 60))
    return rows


def parse_ems(out: str) -> list[Row]:
    ours = _f(r"^EMS export :.*= ([\d.]+) MB/s", out)
    plain = _f(r"^plain zip  :.*= ([\d.]+) MB/s", out)
    if not ours:
        return []
    return [Row("EMS export", float(ours[0][0]), None, float(plain[0][0]) if plain else None,
                "MB/s")]


def parse_sign(out: str) -> list[Row]:
    rows = []
    for pages, _size, service, _signer, default in _f(
            r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+", out):
        rows.append(Row(f"signing ({pages} page PDF)", float(service), None, float(default),
                        "ms", "<= 0.5 x default", float(service) <= 0.5 * float(default)))
    return rows


def generate_rows(size: int, path: Path) -> list[Row]:
    data = json.loads(path.read_text())
    t = data["timings"]
    return [
        Row(f"generate {size:,}: total", t["total"], None, None, "s",
            met=None),
        Row(f"generate {size:,}: documents+events", t["documents"], None, None, "s"),
        Row(f"generate {size:,}: events written", data["events"] / t["documents"], None,
            None, "events/s", ">= 1,000,000 events" if size >= 250_000 else "",
            data["events"] >= 1_000_000 if size >= 250_000 else None),
    ]


def mixed_rows(size: str, path: Path) -> list[Row]:
    data = json.loads(path.read_text())
    ours, floor = data["etmf"], data["floor"]
    rss = max(ours["peak_rss_mb"]) if ours["peak_rss_mb"] else None
    return [
        Row(f"mixed load {size}: requests/s", ours["rps"], None, floor["rps"], "req/s",
            ">= 200 req/s", ours["rps"] >= 200),
        Row(f"mixed load {size}: latency", ours["p50_ms"], ours["p99_ms"], floor["p50_ms"],
            "ms (p99 in p95 column)", "p99 < 1000 ms", ours["p99_ms"] < 1000),
        Row(f"mixed load {size}: errors", ours["errors"], None, floor["errors"], "count",
            "0 errors", ours["errors"] == 0),
        Row(f"mixed load {size}: peak RSS per worker", rss, None,
            max(floor["peak_rss_mb"]) if floor["peak_rss_mb"] else None, "MB",
            "< 400 MB", rss is not None and rss < 400),
    ]


# ---- running -------------------------------------------------------------------------------


def run_step(step: Step, logs: Path, timeout: float) -> tuple[str, list[Row], str]:
    log = logs / f"{step.name}.log"
    t0 = time.perf_counter()
    print(f"\n== {step.name}: {' '.join(step.argv)}", flush=True)
    try:
        proc = subprocess.run(step.argv, capture_output=True, text=True, timeout=timeout,
                              cwd=HERE.parent)
        out = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr else "")
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
        status = f"FAILED (timed out after {timeout:.0f} s)"
    log.write_text(out)
    rows: list[Row] = []
    if status == "ok":
        try:
            rows = step.parse(out) + (step.after() if step.after else [])
        except Exception as exc:  # a changed output format must not stop the run
            status = f"ran, figures not understood ({exc.__class__.__name__}: {exc})"
        if not rows and status == "ok":
            status = "ran, no figures found in its output"
    took = time.perf_counter() - t0
    print(f"   {status} in {took:.0f} s; log {log}", flush=True)
    if status != "ok":
        tail = "\n".join(out.strip().splitlines()[-8:])
        print("   " + tail.replace("\n", "\n   "), flush=True)
    return status, rows, f"{took:.0f} s"


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def print_table(rows: list[Row], statuses: list[tuple[str, str, str]]) -> None:
    width = max([len(r.figure) for r in rows] + [30])
    print(f"\n{'figure':<{width}} {'median':>10} {'p95':>10} {'floor':>10} {'ratio':>7} "
          f"{'unit':<10} {'target':<22} met?")
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.figure:<{width}} {fmt(r.median):>10} {fmt(r.p95):>10} {fmt(r.floor):>10} "
              f"{fmt(r.ratio, 2):>7} {r.unit.split(' ')[0]:<10} {r.target:<22} {met}")
    print("\nsteps:")
    for name, status, took in statuses:
        print(f"  {name:<22} {status} ({took})")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          "ratio = median / floor (for rates, floor / ours is the slowdown)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25000,250000")
    parser.add_argument("--instance", action="append", default=[], type=Path,
                        help="an instance made by generate.py (repeatable); skips generation")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL: instances and every script use PostgreSQL")
    parser.add_argument("--work", type=Path, default=Path("/tmp/etmf-scale"))
    parser.add_argument("--only", default="", help="comma-separated steps to run")
    parser.add_argument("--skip", default="", help="comma-separated steps to leave out")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--duration", type=int, default=60, help="mixed load seconds")
    parser.add_argument("--timeout", type=float, default=7200, help="per step, seconds")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if not args.quick else [2000]
    only = {s for s in args.only.split(",") if s}
    skip = {s for s in args.skip.split(",") if s}
    wanted = lambda name: (not only or name in only) and name not in skip  # noqa: E731
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    db = ["--database-url", args.database_url] if args.database_url else []
    q = args.quick
    steps: list[Step] = []
    instances: list[tuple[str, Path]] = [(p.name, p) for p in args.instance]
    if not args.instance:
        for size in sizes:
            inst = args.work / f"instance-{size}"
            out = args.work / f"generate-{size}.json"
            pg = []
            if args.database_url:
                from sqlalchemy.engine import make_url

                url = make_url(args.database_url).set(database=f"etmf_scale_{size}")
                pg = ["--database-url", url.render_as_string(hide_password=False)]
            instances.append((f"{size:,}", inst))
            if wanted("generate"):
                steps.append(Step(f"generate-{size}", [
                    PY, str(HERE / "generate.py"), "--instance", str(inst), "--documents",
                    str(size), "--replace", "--json", str(out), *pg],
                    lambda _o: [], lambda size=size, out=out: generate_rows(size, out)))
    if wanted("mixed"):
        for label, inst in instances:
            out = args.work / f"mixed-{inst.name}.json"
            steps.append(Step(f"mixed-{inst.name}", [
                PY, str(HERE / "mixed_load.py"), "--instance", str(inst), "--duration",
                str(10 if q else args.duration), "--json", str(out)],
                lambda _o: [], lambda label=label, out=out: mixed_rows(label, out)))
    if wanted("forms"):
        for label, inst in instances:
            steps.append(Step(f"forms-{inst.name}", [
                PY, str(HERE / "search_forms.py"), "--instance", str(inst), "--queries",
                "5" if q else "30", "--floor-limit", "2" if q else "5"], forms_rows(label)))
    largest = str(max(sizes))
    catalogue = [
        ("verify", [PY, str(HERE / "verify_speed.py"), "--events",
                    "20000" if q else "1000000", *db], parse_verify),
        ("search", [PY, str(HERE / "search_speed.py"), "--docs", "2000" if q else "100000",
                    "--repeat", "3" if q else "10", *db], parse_search),
        ("pages", [PY, str(HERE / "pages_speed.py"), "--documents",
                   "2000" if q else ",".join(map(str, sizes)), "--runs", "3" if q else "30",
                   *db], parse_pages),
        ("dashboard", [PY, str(HERE / "dashboard_speed.py"), "--documents",
                       "2000" if q else largest, "--runs", "3" if q else "15", *db],
         parse_dashboard),
        ("ingest", [PY, str(HERE / "ingest_api.py"), "--docs", "200" if q else "2000"],
         parse_ingest),
        ("ems", [PY, str(HERE / "ems_export.py"), "--documents", "50" if q else "1000"],
         parse_ems),
        ("sign", [PY, str(HERE / "sign_latency.py"), "--rounds", "3" if q else "20"],
         parse_sign),
    ]
    steps += [Step(name, argv, parse) for name, argv, parse in catalogue if wanted(name)]

    rows: list[Row] = []
    statuses: list[tuple[str, str, str]] = []
    for step in steps:
        status, found, took = run_step(step, logs, args.timeout)
        rows += found
        statuses.append((step.name, status, took))
    print_table(rows, statuses)
    (args.work / "table.json").write_text(json.dumps(
        [{**r.__dict__, "ratio": r.ratio} for r in rows], indent=2))
    return 0 if all(s == "ok" for _n, s, _t in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
