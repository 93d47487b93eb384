"""Completeness dashboard speed at scale, beside the bare SQL aggregate, in one run.

    python benchmarks/dashboard_speed.py [--sites 500] [--countries 40] [--documents 250000]
                                         [--runs 15] [--database-url URL]

Rows are generated with bulk inserts (Core, no events) into a scratch database: a temporary
SQLite file, or with a PostgreSQL URL a scratch database next to the one named (dropped
afterwards). The EDL is the Reference Model's core artifacts at every place (as
`generate_edl` makes it); documents are spread over those artifacts and places, 70 %
approved, some in QC, CVs with expiry dates. Prints median and p95 of:

- dashboard: every figure of the dashboard page as the page computes them
  (etmf.tracking.summary.figures: completeness, missing, overdue, expired grouped by
  study/zone/site/country/milestone in SQL over the EDL and the document-count cache, people's
  documents, timeliness, quality, QC queue, trend), with the freshness check of the caches;
- entries: the entry-by-entry computation (entry_states + metrics.group_by) the first version
  of the dashboard used, for comparison (skipped with --no-entries);
- floor: the bare SQL aggregate (documents grouped by artifact, level, country, site with
  approved counts), the least a dashboard reading the documents must do.

The caches (etmf.tracking.summary) are built once before measuring ("cache build"). Then:

- dashboard: the page's figures with fresh caches (nothing changed since the last view);
- after change: one command before each view moves a document through QC (its event
  appended and projected in one transaction, as every command does); the command keeps the
  caches exact (etmf.tracking.upkeep: recounts the document's cell, regroups its place), so
  the view reads them as any other;
- command: that command's own time, upkeep included; bare command: the same command once
  the study has no caches (the upkeep's cost is the difference).
Every site has a person (a PI) working there and at the next site, whose CV counts at both.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import case, create_engine, delete, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import etmf.projections  # noqa: E402,F401 - registers the projections and the upkeep
from etmf import migrate  # noqa: E402
from etmf.audit.store import Actor, Context, UnitOfWork  # noqa: E402
from etmf.clock import SystemClock  # noqa: E402
from etmf.documents.models import Document, DocumentVersion  # noqa: E402
from etmf.reference_model.model import FilingLevel, load_reference_model  # noqa: E402
from etmf.studies.models import Country, Site, Study  # noqa: E402
from etmf.tracking import metrics, summary  # noqa: E402
from etmf.tracking.expected import entry_states  # noqa: E402
from etmf.tracking.models import (  # noqa: E402
    CacheStamp,
    EdlEntry,
    MilestoneDate,
    Person,
    PersonDocument,
    PersonSite,
)

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
CLOCK = SystemClock()
CHANGED = 1000  # documents with a version, which the "after change" runs move


def populate(engine, sites: int, countries: int, documents: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(8)
    model = load_reference_model()
    core = model.core_artifacts()
    by_level = {lvl: [a for a in core if lvl in model.levels_of(a)] for lvl in FilingLevel}
    with Session(engine) as s:
        s.execute(insert(Study.__table__), [dict(
            id=1, protocol_number="BENCH-1", title="Benchmark", phase="III", sponsor="B",
            status="active", tmf_model_version="3.3.1", created_at=NOW, version=1)])
        s.execute(insert(Country.__table__), [dict(id=c, study_id=1, code=f"{chr(65 + c // 26)}{chr(65 + c % 26)}",
                                         name=f"Country {c}") for c in range(1, countries + 1)])
        site_country = {i: 1 + (i - 1) % countries for i in range(1, sites + 1)}
        s.execute(insert(Site.__table__), [dict(id=i, study_id=1, country_id=site_country[i],
                                      number=f"{i:04d}", institution=f"Hospital {i}",
                                      status="active", version=1) for i in site_country])
        entries, eid = [], 0
        places = [("trial", None, None)] + [("country", c, None) for c in range(1, countries + 1)] \
            + [("site", site_country[i], i) for i in site_country]
        for level, c, st in places:
            for a in by_level[FilingLevel(level)]:
                eid += 1
                entries.append(dict(id=eid, study_id=1, level=level, country_id=c, site_id=st,
                                    artifact_id=a.unique_id, zone=a.zone_number,
                                    required_count=1, milestone=a.site_milestone_code))
        for i in range(0, len(entries), 10_000):
            s.execute(insert(EdlEntry.__table__), entries[i:i + 10_000])
        s.execute(insert(MilestoneDate.__table__), [dict(id=i, study_id=1, country_id=None, site_id=i,
                                               code="03", planned=TODAY - timedelta(days=i % 90),
                                               actual=None) for i in site_country])
        rows: list[dict[str, object]] = []
        versions: list[dict[str, object]] = []
        for d in range(1, documents + 1):
            level, c, st = places[rng.randrange(len(places))]
            a = rng.choice(by_level[FilingLevel(level)])
            filed = NOW - timedelta(days=rng.randrange(400))
            r = rng.random()
            status = "approved" if r < 0.7 else "in_qc" if r < 0.8 else "draft"
            rows.append(dict(
                id=d, study_id=1, artifact_id=a.unique_id, artifact_number=a.number,
                zone=a.zone_number, section=a.section_number, level=level, country_id=c,
                site_id=st, title=f"Doc {d}", status=status, created_at=filed, version=3,
                document_date=(filed - timedelta(days=rng.randrange(60))).date(),
                expiry_date=(filed + timedelta(days=730)).date() if a.unique_id in
                ("087", "088") else None,
                approved_at=filed + timedelta(days=rng.randrange(20)) if status == "approved"
                else None, current_version_id=d if d <= CHANGED else None))
            if d <= CHANGED:  # the documents the "after change" runs move through QC
                versions.append(dict(
                    id=d, document_id=d, number=1, label="1.0", status=status,
                    sha256=f"{d:064x}", size=1, mime="application/pdf",
                    filename=f"{d}.pdf", created_at=filed, created_by_id=None,
                    created_by_name="benchmark"))
            if len(rows) == 10_000:
                s.execute(insert(Document.__table__), rows)
                rows = []
        if rows:
            s.execute(insert(Document.__table__), rows)
        s.execute(insert(DocumentVersion.__table__), versions)
        cvs = dict(s.execute(select(Document.site_id, func.min(Document.id)).where(
            Document.artifact_id == "087", Document.level == "site").group_by(
            Document.site_id)).all())
        s.execute(insert(Person.__table__), [dict(id=i, name=f"PI {i}", email=None) for i in site_country])
        s.execute(insert(PersonSite.__table__), [dict(person_id=i, site_id=j, role="PI")
                                       for i in site_country
                                       for j in {i, 1 + i % len(site_country)}])
        if cvs:
            s.execute(insert(PersonDocument.__table__), [dict(person_id=i, document_id=d)
                                               for i, d in cvs.items()])
        s.commit()


LABELS = dict.fromkeys(summary.GROUPINGS, str)


def dashboard(session: Session) -> None:
    if not summary.is_fresh(session, 1):
        raise SystemExit("the caches went stale during the benchmark")
    summary.figures(session, 1, NOW, LABELS, filing_target=30, approval_target=14)


def _change(engine, n: int) -> None:  # type: ignore[no-untyped-def]
    """One command: a document moves through QC (approved ⇄ in QC), its event appended and
    projected in one transaction as every command does (the caches' upkeep included)."""
    with Session(engine) as s:
        uow = UnitOfWork(s, CLOCK, Actor.system("benchmark"), Context())
        doc = s.get(Document, 1 + (n * 7919) % CHANGED)
        assert doc is not None
        to = "in_qc" if doc.status == "approved" else "approved"
        uow.emit("document", doc.id, "document.transitioned", {
            "version_id": doc.current_version_id, "action": "benchmark", "from": doc.status,
            "to": to, "superseded_version_id": None}, study_id=1)
        uow.commit()


def after_change(engine, runs: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """Times of the command (with the upkeep of the caches) and of the view after it."""
    commands, views = [], []
    for n in range(runs):
        start = time.perf_counter()
        _change(engine, n)
        commands.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        with Session(engine) as s:
            if not summary.is_fresh(s, 1):
                summary.refresh(lambda: Session(engine), 1)
            summary.figures(s, 1, NOW, LABELS, filing_target=30, approval_target=14)
        views.append((time.perf_counter() - start) * 1000)
    return commands, views


def bare_commands(engine, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    """The same command on a study without caches (nothing to keep up): the upkeep's cost
    is the difference."""
    with Session(engine) as s:
        s.execute(delete(CacheStamp).where(CacheStamp.study_id == 1))
        s.commit()
    times = []
    for n in range(runs):
        start = time.perf_counter()
        _change(engine, runs + n)
        times.append((time.perf_counter() - start) * 1000)
    return times


def entries(session: Session) -> None:
    states = entry_states(session, 1, TODAY)
    metrics.group_by(states, {
        "study": lambda s: "study", "zone": lambda s: s.entry.zone,
        "site": lambda s: s.entry.site_id, "country": lambda s: s.entry.country_id,
        "milestone": lambda s: s.entry.milestone}, dict.fromkeys(
        ("study", "zone", "site", "country", "milestone"), str))
    metrics.timeliness(session, 1, 30, 14)
    metrics.quality(session, 1)
    metrics.qc_queue(session, 1, NOW)
    metrics.approvals_by_week(session, 1, TODAY)


def floor(session: Session) -> None:
    session.execute(select(
        Document.artifact_id, Document.level, Document.country_id, Document.site_id,
        func.count(), func.sum(case((Document.approved_at.is_not(None), 1), else_=0)))
        .where(Document.study_id == 1).group_by(
        Document.artifact_id, Document.level, Document.country_id, Document.site_id)).all()


def measure(engine, fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        with Session(engine) as s:
            start = time.perf_counter()
            fn(s)
            times.append((time.perf_counter() - start) * 1000)
    return times


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def describe(name: str, times: list[float]) -> str:
    return (f"{name:<12} median {statistics.median(times):8.1f} ms   "
            f"p95 {_p95(times):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--countries", type=int, default=40)
    parser.add_argument("--documents", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-entries", action="store_true",
                        help="skip timing the entry-by-entry computation (slow at 250,000)")
    args = parser.parse_args()
    scratch = None
    tmp = tempfile.TemporaryDirectory(prefix="etmf-dash-")
    if args.database_url:
        url = make_url(args.database_url)
        scratch = f"bench_dash_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{scratch}"'))
        engine = create_engine(url.set(database=scratch))
    else:
        engine = create_engine(f"sqlite:///{tmp.name}/bench.db")
    try:
        migrate.upgrade(engine)
        start = time.perf_counter()
        populate(engine, args.sites, args.countries, args.documents)
        if engine.dialect.name == "postgresql":
            with engine.connect() as c:
                c.execute(text("ANALYZE"))
                c.commit()
        print(f"{engine.dialect.name}: {args.sites} sites, {args.countries} countries, "
              f"{args.documents:,} documents generated in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        summary.refresh(lambda: Session(engine), 1)
        print(f"cache build {1000 * (time.perf_counter() - start):.0f} ms (once)")
        measure(engine, dashboard, 1)  # warm caches (reference model, statement cache)
        dash = measure(engine, dashboard, args.runs)
        base = measure(engine, floor, args.runs)
        print(describe("dashboard", dash))
        commands, views = after_change(engine, args.runs)
        print(describe("after change", views))
        print(describe("command", commands))
        print(describe("bare command", bare_commands(engine, args.runs)))
        if not args.no_entries:
            print(describe("entries", measure(engine, entries, max(3, args.runs // 5))))
        print(describe("floor", base))
        print(f"dashboard / floor: median {statistics.median(dash) / statistics.median(base):.2f}"
              f"   p95 {_p95(dash) / _p95(base):.2f}")
    finally:
        engine.dispose()
        if scratch:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE "{scratch}"'))
        tmp.cleanup()


if __name__ == "__main__":
    main()
