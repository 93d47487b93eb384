"""TMF tree page and document page at scale, each beside its floor, in one run (issue 11).

    python benchmarks/pages_speed.py [--documents 25000,250000] [--sites 500] [--countries 40]
                                     [--runs 30] [--database-url URL] [--profile PAGE]
                                     [--only PAGE]

For each size a scratch database is built (a temporary SQLite file, or with a PostgreSQL URL a
scratch database next to the one named, dropped afterwards) with bulk Core inserts into the
migrated schema, as ``dashboard_speed.py`` does (study, countries, sites, documents over the
core artifacts at every place, 70 % approved, some in QC, one in fifty undated; the tree's
kept counts are then rebuilt once), plus what the pages read: every document has a
version row and the extracted-text row of its file, one in four a second version, one in
twenty-five a signed rendition with its stored signature validation and signature request,
and each document two audit events (filed, then a transition or a metadata change; fake
hashes: nothing here verifies the chain). Two users are made through the real services: a
study manager, and site staff limited to one site (their permission scoping is part of every
query they make).

Each page is fetched through the Flask test client, signed in, ``--runs`` times after one warm
fetch; median and p95 are printed beside the floor — the bare SQL returning the rows the page
shows (for the tree: the grouped counts; for a list: its 50 rows; for a document: the document,
its versions, texts, events, validation and requests), run on a plain engine connection — and
the ratio. With two sizes a growth table follows: time at the larger size over time at the
smaller. ``--profile NAME`` prints a cProfile of that page (top 25 by cumulative time) and the
query plan of its floor.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import Engine, create_engine, func, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from etmf import migrate  # noqa: E402
from etmf.audit.models import Event  # noqa: E402
from etmf.documents import counts  # noqa: E402
from etmf.documents.models import Document, DocumentText, DocumentVersion  # noqa: E402
from etmf.reference_model.model import FilingLevel, load_reference_model  # noqa: E402
from etmf.signing.models import SignatureValidation  # noqa: E402
from etmf.studies.models import Country, Site, Study  # noqa: E402
from etmf.workflows.models import SignatureRequest  # noqa: E402

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
PASSWORD = "Correct-Horse-Battery-9"
CHUNK = 10_000


# ---- data -----------------------------------------------------------------------------------


def _chunks(session: Session, table, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(rows), CHUNK):
        session.execute(insert(table), rows[i:i + CHUNK])


def _study(engine: Engine, sites: int, countries: int, documents: int) -> None:
    """Study, countries, sites and documents spread over the Reference Model's core artifacts
    at every place, 70 % approved, 10 % in QC (the layout of dashboard_speed.py, kept here so
    that the two benchmarks can change apart)."""
    rng = random.Random(8)
    model = load_reference_model()
    core = model.core_artifacts()
    by_level = {lvl: [a for a in core if lvl in model.levels_of(a)] for lvl in FilingLevel}
    with Session(engine) as s:
        s.execute(insert(Study.__table__), [dict(
            id=1, protocol_number="BENCH-1", title="Benchmark", phase="III", sponsor="B",
            status="active", tmf_model_version="3.3.1", created_at=NOW, version=1)])
        s.execute(insert(Country.__table__), [dict(
            id=c, study_id=1, code=f"{chr(65 + c // 26)}{chr(65 + c % 26)}",
            name=f"Country {c}") for c in range(1, countries + 1)])
        site_country = {i: 1 + (i - 1) % countries for i in range(1, sites + 1)}
        s.execute(insert(Site.__table__), [dict(
            id=i, study_id=1, country_id=site_country[i], number=f"{i:04d}",
            institution=f"Hospital {i}", status="active", version=1) for i in site_country])
        places = [("trial", None, None)] + [("country", c, None)
                                            for c in range(1, countries + 1)] \
            + [("site", site_country[i], i) for i in site_country]
        rows = []
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
                document_date=(filed - timedelta(days=rng.randrange(60))).date()
                if d % 50 else None,  # a few undated records (they list last)
                expiry_date=None,
                approved_at=filed + timedelta(days=rng.randrange(20))
                if status == "approved" else None))
        _chunks(s, Document.__table__, rows)
        s.commit()


def populate(engine: Engine, sites: int, countries: int, documents: int) -> None:
    """The study, plus versions, texts, signatures and events."""
    _study(engine, sites, countries, documents)
    rng = random.Random(11)
    with Session(engine) as s:
        docs = s.execute(select(Document.id, Document.status, Document.created_at)
                         .order_by(Document.id)).all()
        versions, texts, events, validations, requests = [], [], [], [], []
        current: dict[int, int] = {}
        seq = 0
        for doc_id, status, created in docs:
            n_versions = 2 if doc_id % 4 == 0 else 1
            for number in range(1, n_versions + 1):
                vid = doc_id if number == 1 else documents + doc_id
                sha = f"{vid:064x}"
                versions.append(dict(
                    id=vid, document_id=doc_id, number=number, label=f"{number}.0",
                    status="approved" if status == "approved" and number == n_versions
                    else "superseded" if number < n_versions else status,
                    sha256=sha, size=40_000 + rng.randrange(200_000), mime="application/pdf",
                    filename=f"doc-{doc_id}-v{number}.pdf", page_count=1 + rng.randrange(30),
                    note=None, created_at=created + timedelta(days=number - 1),
                    created_by_id=None, created_by_name="Filer", signed_from_version_id=None))
                texts.append(dict(sha256=sha, status="ok", error=None, pages=1, truncated=False,
                                  text="", extracted_at=created))
                current[doc_id] = vid
            if doc_id % 25 == 0:
                vid = 2 * documents + doc_id
                sha = f"{vid:064x}"
                versions.append(dict(
                    id=vid, document_id=doc_id, number=n_versions + 1,
                    label=f"{n_versions + 1}.0", status=status, sha256=sha, size=60_000,
                    mime="application/pdf", filename=f"doc-{doc_id}-signed.pdf", page_count=2,
                    note="Signed", created_at=created + timedelta(days=5), created_by_id=None,
                    created_by_name="Investigator", signed_from_version_id=current[doc_id]))
                texts.append(dict(sha256=sha, status="ok", error=None, pages=2,
                                  truncated=False, text="", extracted_at=created))
                validations.append(dict(
                    id=len(validations) + 1, document_id=doc_id, version_id=vid, sha256=sha,
                    checked_at=created + timedelta(days=5), checked_by_name="server",
                    overall="VALID", report=json.dumps([{
                        "signer_name": "Dr Investigator", "meaning": "approval",
                        "signing_time": (created + timedelta(days=5)).isoformat(),
                        "level": "PAdES-B-B", "status": "VALID",
                        "summary": "Intact, trusted signer, not revoked"}])))
                requests.append(dict(
                    id=len(requests) + 1, study_id=1, document_id=doc_id,
                    source_version_id=current[doc_id], current_version_id=vid,
                    ordering="sequential", due_date=None, message=None, status="completed",
                    created_at=created, created_by_id=None, created_by_name="Manager",
                    closed_at=created + timedelta(days=5), close_reason=None, version=2))
                current[doc_id] = vid
            filed = {"study_id": 1, "title": f"Doc {doc_id}", "version": {
                "label": "1.0", "filename": f"doc-{doc_id}-v1.pdf", "sha256": f"{doc_id:064x}"}}
            second = ("document.transitioned", {"version_id": doc_id, "from": "draft",
                                                 "to": "in_qc"}) if doc_id % 2 else (
                "document.metadata_changed", {"changes": {"title": [f"Doc {doc_id}",
                                                                    f"Doc {doc_id}"]}})
            for version, (etype, payload) in enumerate(
                    (("document.filed", filed), second), start=1):
                seq += 1
                events.append(dict(
                    seq=seq, stream_type="document", stream_id=str(doc_id),
                    stream_version=version, type=etype, payload=json.dumps(payload),
                    study_id=1, actor_id=None, actor_name="Filer", reason=None,
                    occurred_at=created, request_id=None, client_addr=None,
                    prev_hash="0" * 64, hash=f"{seq:064x}"))
        _chunks(s, DocumentVersion.__table__, versions)
        _chunks(s, DocumentText.__table__, texts)
        _chunks(s, SignatureValidation.__table__, validations)
        _chunks(s, SignatureRequest.__table__, requests)
        _chunks(s, Event.__table__, events)
        # One statement sets every current version (same rule as above, without a round
        # trip per document).
        signed = 2 * documents + Document.id
        second_v = documents + Document.id
        from sqlalchemy import case

        s.execute(update(Document).values(current_version_id=case(
            (Document.id % 25 == 0, signed), (Document.id % 4 == 0, second_v),
            else_=Document.id)))
        s.commit()
    with engine.begin() as conn:  # the rows went in with Core: count them once
        counts.rebuild(conn)


def make_users(app) -> dict[str, tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    """A study manager and site staff of one site, through the real services."""
    from etmf.accounts.services import NewUser, create_user, grant_membership
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services

    svc = services(app)
    users: dict[str, tuple[str, int | None]] = {}
    with Session(svc.db.engine) as s:
        site = s.scalar(select(Document.site_id).where(Document.site_id.is_not(None))
                        .group_by(Document.site_id).order_by(func.count().desc()).limit(1))
    for key, role, site_id in (("manager", "study_manager", None), ("site", "site_staff", site)):
        email = f"{key}@bench.example.org"
        with app.app_context(), unit_of_work(svc.db, svc.clock, Actor(None, "bench")) as uow:
            user = create_user(uow, NewUser(email=email, full_name=f"Bench {key}",
                                            password=PASSWORD))
            grant_membership(uow, user_id=user.id, study_id=1, role=role, site_id=site_id)
            uow.commit()
        users[key] = (email, site_id)
    return users


def signed_in(app, email: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    response = client.post("/login", data={"email": email, "password": PASSWORD,
                                           "csrf_token": token.group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


# ---- pages and floors -----------------------------------------------------------------------


@dataclass
class Page:
    name: str
    who: str
    url: str
    floor: Callable[[Session], object]
    expect: str


def _visible(q, site: int | None):  # type: ignore[no-untyped-def]
    q = q.where(Document.study_id == 1)
    if site is not None:
        q = q.where(func.coalesce(Document.site_id, 0).in_([0, site]))
    return q


#: Newest first, undated last, as the page orders it.
NEWEST = (Document.document_date.desc().nulls_last(), Document.id.desc())
#: Within a date range every row is dated.
NEWEST_DATED = (Document.document_date.desc(), Document.id.desc())


def _list_floor(site: int | None, *conds, order=NEWEST):  # type: ignore[no-untyped-def]
    """The 50 rows the list shows, nothing else (no count, no sites, no page)."""
    def run(s: Session) -> object:
        q = _visible(select(Document), site).where(*conds).order_by(*order)
        return s.execute(q.limit(50)).all()
    return run


def _tree_floor(site: int | None) -> Callable[[Session], object]:
    def run(s: Session) -> object:
        q = _visible(select(Document.zone, Document.section, Document.artifact_id,
                            Document.status, func.count()), site)
        return s.execute(q.group_by(Document.zone, Document.section, Document.artifact_id,
                                    Document.status)).all()
    return run


def _document_floor(doc_id: int) -> Callable[[Session], object]:
    def run(s: Session) -> object:
        doc = s.execute(select(Document).where(Document.id == doc_id)).one()
        versions = s.execute(select(DocumentVersion).where(
            DocumentVersion.document_id == doc_id).order_by(DocumentVersion.number.desc())).all()
        shas = [v[0].sha256 for v in versions]
        s.execute(select(DocumentText).where(DocumentText.sha256.in_(shas))).all()
        s.execute(select(Event).where(Event.stream_type == "document",
                                      Event.stream_id == str(doc_id)).order_by(Event.seq)).all()
        s.execute(select(SignatureValidation).where(
            SignatureValidation.version_id == doc[0].current_version_id)
            .order_by(SignatureValidation.id.desc()).limit(1)).all()
        return s.execute(select(SignatureRequest).where(
            SignatureRequest.document_id == doc_id)).all()
    return run


def pages(engine: Engine, site: int) -> list[Page]:
    with Session(engine) as s:
        zone = s.scalar(select(Document.zone).group_by(Document.zone)
                        .order_by(func.count().desc()).limit(1))
        artifact = s.scalar(select(Document.artifact_id).where(Document.site_id == site)
                            .group_by(Document.artifact_id).order_by(func.count().desc())
                            .limit(1))
        country = s.scalar(select(Document.country_id).where(Document.site_id == site).limit(1))
        signed = s.scalar(select(func.min(Document.id)).where(
            Document.id % 25 == 0, Document.site_id.is_(None) | (Document.site_id == site)))
        plain = s.scalar(select(func.min(Document.id)).where(Document.id % 4 == 1,
                                                             Document.status == "approved"))
    frm, to = date(2026, 1, 1), date(2026, 6, 30)
    D = Document
    dated = (D.document_date >= frm, D.document_date <= to)
    out = [
        Page("tree root", "manager", "/studies/1", _tree_floor(None), "TMF by zone"),
        Page("list: zone", "manager", f"/studies/1/documents?zone={zone}",
             _list_floor(None, D.zone == zone), "documents"),
        Page("list: artifact@site", "manager",
             f"/studies/1/documents?artifact={artifact}&site={site}",
             _list_floor(None, D.artifact_id == artifact, D.site_id == site), "documents"),
        Page("list: country+status+dates", "manager",
             f"/studies/1/documents?country={country}&status=approved&from={frm}&to={to}",
             _list_floor(None, D.country_id == country, D.status == "approved", *dated,
                         order=NEWEST_DATED), "documents"),
        Page("list: oldest first", "manager", "/studies/1/documents?sort=-document_date",
             _list_floor(None, order=(D.document_date.asc().nulls_last(), D.id.asc())),
             "documents"),
        Page("list: page 100", "manager", "/studies/1/documents?page=100",
             lambda s: s.execute(_visible(select(D), None).order_by(*NEWEST)
                                 .limit(50).offset(99 * 50)).all(), "documents"),
        Page("document (signed)", "manager", f"/documents/{signed}", _document_floor(signed),
             "Electronic signatures"),
        Page("document (plain)", "manager", f"/documents/{plain}", _document_floor(plain),
             "Versions"),
        Page("tree root", "site", "/studies/1", _tree_floor(site), "TMF by zone"),
        Page("list: all", "site", "/studies/1/documents", _list_floor(site), "documents"),
        Page("list: status+dates", "site",
             f"/studies/1/documents?status=approved&from={frm}&to={to}",
             _list_floor(site, D.status == "approved", *dated, order=NEWEST_DATED),
             "documents"),
        Page("document (signed)", "site", f"/documents/{signed}", _document_floor(signed),
             "Electronic signatures"),
    ]
    return out


# ---- measuring ------------------------------------------------------------------------------


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_page(client, page: Page, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    response = client.get(page.url)  # warm: templates, statement caches
    body = response.get_data(as_text=True)
    if response.status_code != 200 or page.expect not in body:
        raise SystemExit(f"{page.who} {page.url}: {response.status_code} "
                         f"without {page.expect!r}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(page.url)
        response.get_data()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return times


def time_floor(engine: Engine, fn: Callable[[Session], object], runs: int) -> list[float]:
    with Session(engine) as s:
        fn(s)
    times = []
    for _ in range(runs):
        with Session(engine) as s:
            start = time.perf_counter()
            fn(s)
            times.append((time.perf_counter() - start) * 1000)
    return times


def explain(engine: Engine, fn: Callable[[Session], object]) -> None:
    """Print the plan of every statement the floor runs."""
    from sqlalchemy import event

    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as s:
            fn(s)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
    with engine.connect() as c:
        for statement, parameters in statements:
            print("--", statement.replace("\n", " ")[:300])
            for row in c.exec_driver_sql(prefix + statement, parameters):  # type: ignore[arg-type]
                print("  ", " ".join(str(x) for x in row))


def profile(client, page: Page) -> None:  # type: ignore[no-untyped-def]
    client.get(page.url).get_data()  # templates compiled before, not in, the profile
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        client.get(page.url).get_data()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue())


def run_size(args: argparse.Namespace, documents: int) -> dict[str, tuple[float, float, float]]:
    from etmf import create_app
    from etmf.bootstrap import shutdown
    from etmf.settings import load_settings

    tmp = tempfile.TemporaryDirectory(prefix="etmf-pages-")
    scratch = admin = None
    if args.database_url:
        url = make_url(args.database_url)
        scratch = f"bench_pages_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{scratch}"'))
        db_url = url.set(database=scratch).render_as_string(hide_password=False)
    else:
        db_url = f"sqlite:///{tmp.name}/etmf.db"
    engine = create_engine(db_url)
    app = None
    results: dict[str, tuple[float, float, float]] = {}
    try:
        migrate.upgrade(engine)
        start = time.perf_counter()
        populate(engine, args.sites, args.countries, documents)
        if engine.dialect.name == "postgresql":
            # What autovacuum does to a table after bulk inserts: statistics, and the
            # visibility map that lets counts read an index alone.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        else:
            with engine.connect() as c:
                c.exec_driver_sql("ANALYZE")
                c.commit()
        print(f"\n{engine.dialect.name}: {args.sites} sites, {args.countries} countries, "
              f"{documents:,} documents generated in {time.perf_counter() - start:.1f} s")
        settings = load_settings(overrides={
            "instance_path": tmp.name, "database_url": db_url, "log_level": "WARNING",
            "jobs_runner": "inline"}, environ={})
        app = create_app(settings)
        users = make_users(app)
        site = users["site"][1]
        assert site is not None
        clients = {who: signed_in(app, email) for who, (email, _s) in users.items()}
        print(f"{'page':<32} {'median':>8} {'p95':>8} {'floor':>8} {'floor p95':>9} "
              f"{'ratio':>6}")
        for page in pages(engine, site):
            label = f"{page.who}: {page.name}"
            if args.only and args.only not in label:
                continue
            if args.profile and args.profile in label:
                profile(clients[page.who], page)
                explain(engine, page.floor)
            times = time_page(clients[page.who], page, args.runs)
            base = time_floor(engine, page.floor, args.runs)
            med, p95, fmed = statistics.median(times), _p95(times), statistics.median(base)
            results[label] = (med, p95, fmed)
            print(f"{label:<32} {med:8.1f} {p95:8.1f} {fmed:8.1f} {_p95(base):9.1f} "
                  f"{med / fmed:6.1f}")
    finally:
        if app is not None:
            shutdown(app)
        engine.dispose()
        if scratch and admin is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE "{scratch}" WITH (FORCE)'))
            admin.dispose()
        tmp.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", default="25000,250000",
                        help="comma-separated sizes; with two, a growth table follows")
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--countries", type=int, default=40)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile", default="",
                        help="profile the page whose 'who: name' label contains this")
    parser.add_argument("--only", default="",
                        help="measure only the pages whose 'who: name' label contains this")
    args = parser.parse_args()
    import os

    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    sizes = [int(n) for n in args.documents.split(",")]
    runs = {n: run_size(args, n) for n in sizes}
    if len(sizes) > 1:
        small, large = runs[sizes[0]], runs[sizes[-1]]
        factor = sizes[-1] / sizes[0]
        print(f"\ngrowth from {sizes[0]:,} to {sizes[-1]:,} documents (x{factor:g}):")
        print(f"{'page':<32} {'median':>8} {'p95':>8} {'floor':>8}")
        for label, (med, p95, fmed) in large.items():
            m0, p0, f0 = small[label]
            print(f"{label:<32} {med / m0:7.1f}x {p95 / p0:7.1f}x {fmed / f0:7.1f}x")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
