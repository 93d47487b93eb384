"""The study-wide pages at Phase III size: each one's time, size and SQL statements.

    .venv/bin/python benchmarks/study_pages.py --instance DIR [--runs 3] [--only NAME]

Signs in as the study manager of an instance made by ``generate.py`` (500 sites) and fetches
each page that covers every site of the study through the Flask test client: the expected
document list, the states of the expected documents, inspection readiness, expiry, the
inspector's landing page, the key risk indicator heat map, site payments, the CTMS study page
and monitoring. Prints, per page, the median and the longest of ``--runs`` fetches after one
warm fetch (the first view of a study also builds the dashboard's caches), the bytes sent and
the SQL statements sent. A statement count that grows with the sites is the finding to look
for: at 500 sites a few statements a site cost seconds (benchmarks/RESULTS.md, session 11).

The floor beside each figure is an authenticated ``/healthz``: what any request costs here.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PAGES = {
    "edl": "/tracking/studies/{study}/edl",
    "entries": "/tracking/studies/{study}/entries?problem=missing",
    "readiness": "/tracking/studies/{study}/readiness",
    "expiry": "/tracking/studies/{study}/expiry",
    "inspection": "/studies/{study}/inspection",
    "risk": "/ctms/studies/{study}/risk",
    "payments": "/ctms/studies/{study}/payments",
    "ctms-study": "/ctms/studies/{study}",
    "monitoring": "/ctms/studies/{study}/monitoring",
    "tasks": "/tracking/tasks",
}


def main(argv: list[str] | None = None) -> None:
    from generate import DOMAIN, PASSWORD
    from sqlalchemy import event

    from etmf import create_app
    from etmf.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--study", type=int, default=1)
    parser.add_argument("--only", choices=sorted(PAGES), action="append")
    args = parser.parse_args(argv)

    app = create_app(load_settings(overrides={"instance_path": str(args.instance),
                                              "log_level": "WARNING", "jobs_runner": "worker"}))
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    signed_in = client.post("/login", data={"email": f"manager@{DOMAIN}", "password": PASSWORD,
                                            "csrf_token": token.group(1) if token else ""})
    if signed_in.status_code != 302:
        raise SystemExit("could not sign in as the study manager: not a generate.py instance?")
    statements = [0]

    def count(*_args: object) -> None:
        statements[0] += 1

    event.listen(app.extensions["etmf"].db.engine, "before_cursor_execute", count)

    def fetch(url: str) -> tuple[float, int, int]:
        statements[0] = 0
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        return elapsed, len(response.data), statements[0]

    floor = [fetch("/healthz")[0] for _ in range(20)]
    print(f"floor: authenticated /healthz, median {statistics.median(floor):.1f} ms")
    print(f"{'page':<12} {'median ms':>10} {'max ms':>9} {'KB':>8} {'statements':>11}"
          f" {'ratio':>7}  url")
    for name, pattern in PAGES.items():
        if args.only and name not in args.only:
            continue
        url = pattern.format(study=args.study)
        fetch(url)  # warm: caches built, templates compiled
        runs = [fetch(url) for _ in range(args.runs)]
        times = [r[0] for r in runs]
        median = statistics.median(times)
        print(f"{name:<12} {median:>10.0f} {max(times):>9.0f} {runs[-1][1] / 1024:>8.0f} "
              f"{runs[-1][2]:>11} {median / statistics.median(floor):>7.0f}  {url}",
              flush=True)


if __name__ == "__main__":
    main()
