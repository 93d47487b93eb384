"""The fixture study of the acceptance: site 101 has twice the deviation rate of the others
and two expired essential documents; it is red on those two indicators and green elsewhere,
and the figures match the ones computed here by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from ctms.deviations import services as dev
from ctms.monitoring import services as mon
from ctms.risk import services as risk_services
from ctms.risk.alerts import notify_red_sites
from ctms.risk.services import heat_map
from ctms.sites.services import set_enrollment_target
from ctms.subjects import services as subj
from etmf.tracking import services as tracking
from etmf.tracking.services import Scope

NO_GAPS = lambda _session, _site_id, _today: []  # noqa: E731
SUBJECTS = 4
DEVIATIONS = {"101": 4, "102": 2, "201": 2}
ARTIFACTS = ("05.02.04", "05.02.08")  # two site-level essential documents with expiry


def _run(world, user, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with world.uow(user.name, user.id) as uow:
        result = fn(uow, world.access(user), *args, **kwargs)
        uow.commit()
    return result


@pytest.fixture
def study(world, svc, clock):  # type: ignore[no-untyped-def]
    from ctms.sites.services import change_site_status
    from etmf.studies.models import Site

    manager = world.user("study_manager", name="Mara Manager")
    qc = world.user("qc_reviewer")
    cra = world.user("cra", name="Cleo CRA")
    today = clock.now().date()
    _run(world, manager, mon.set_rule, world.study_id, 6)
    for number in ("101", "102", "201"):
        site_id = world.site_ids[number]
        for to in ("initiation", "active"):
            with svc.db.read_session() as s:
                version = s.get(Site, site_id).version
            _run(world, manager, change_site_status, site_id, to, expected_version=version,
                 gap_finder=NO_GAPS)
        for artifact in ARTIFACTS:
            _run(world, manager, tracking.add_entry, world.study_id,
                 Scope("site", site_id=site_id), artifact)
            # Site 101's documents expired yesterday; the others' are valid for a year.
            expiry = today - timedelta(days=1) if number == "101" else today + timedelta(
                days=365)
            world.document(manager, title=f"{artifact} site {number}", artifact=artifact,
                           level="site", site=number, state="approved", qc=qc,
                           document_date=today - timedelta(days=400), expiry_date=expiry)
        for n in range(SUBJECTS):
            subject = _run(world, manager, subj.screen_subject, site_id=site_id,
                           number=f"{number}-{n:03d}")
            if n == 0:
                _run(world, manager, dev.log_deviation, dev.NewDeviation(
                    site_id=site_id, subject_id=subject, category="consent",
                    description="Consent signed after first procedure", occurred_on=today,
                    identified_on=today, important=True))
        for n in range(DEVIATIONS[number] - 1):
            _run(world, manager, dev.log_deviation, dev.NewDeviation(
                site_id=site_id, category="visit_window", description=f"Visit late {n}",
                occurred_on=today, identified_on=today))
        visit = _run(world, cra, mon.plan_visit, site_id=site_id, kind="routine",
                     mode="on_site", planned_on=today, cra_user_id=cra.id)
        _run(world, cra, mon.record_visit, visit, mon.VisitRecord(
            visited_on=today - timedelta(days=7), attendees="PI, study nurse"))
    return manager


@pytest.mark.req("FR-MON-4")
@pytest.mark.req("FR-MON-3")
def test_the_site_with_twice_the_deviation_rate_and_expired_documents_is_red_on_those(
        world, svc, clock, study, monkeypatch):
    today = clock.now().date()
    with svc.db.read_session() as s:
        rows = {r.site.number: r for r in heat_map(s, world.study_id, today)}
    # By hand: study rate 8 deviations / 12 subjects; site 101: 4/4, the others 2/4.
    assert rows["101"].cells["deviation_rate"].value == Decimal("1.50")  # (4/4) / (8/12)
    assert rows["102"].cells["deviation_rate"].value == Decimal("0.75")  # (2/4) / (8/12)
    assert rows["201"].cells["deviation_rate"].value == Decimal("0.75")
    assert rows["101"].cells["documents"].value == 2
    assert rows["101"].cells["documents"].detail.count("expired") == 2
    # A site missing many documents names the first few in its cell and counts the rest.
    monkeypatch.setattr(risk_services, "DETAIL_GAPS", 1)
    with svc.db.read_session() as s:
        cell = {r.site.number: r for r in heat_map(s, world.study_id, today)}["101"] \
            .cells["documents"]
    assert cell.value == 2 and cell.detail.count("expired") == 1
    assert cell.detail.endswith("; and 1 more")
    assert rows["101"].cells["monitoring"].value == 0  # visited 7 days ago, every 6 weeks
    for number, row in rows.items():
        levels = {code: cell.level for code, cell in row.cells.items()}
        expected_red = {"deviation_rate", "documents"} if number == "101" else set()
        assert {c for c, lv in levels.items() if lv == "red"} == expected_red, number
        # Enrollment has no target yet and no visit came from the EDC: no data, neither
        # green nor red.
        assert {c for c, lv in levels.items() if lv == "green"} == (
            set(levels) - expected_red - {"enrollment", "data_entry_lag"}), number
        assert levels["enrollment"] == "none"
        assert levels["data_entry_lag"] == "none"
        assert row.cells["screen_failure"].value == 0


@pytest.mark.req("FR-MON-4")
def test_thresholds_are_per_study_and_targets_give_the_enrollment_indicator(
        world, svc, clock, study):
    from ctms.risk.services import set_threshold

    manager = study
    _run(world, manager, set_threshold, world.study_id, "deviation_rate", amber="1.6", red="2")
    _run(world, manager, set_enrollment_target, world.site_ids["102"], 10)
    with svc.db.read_session() as s:
        rows = {r.site.number: r for r in heat_map(s, world.study_id, clock.now().date())}
    assert rows["101"].cells["deviation_rate"].level == "green"
    enrollment = rows["102"].cells["enrollment"]
    assert (enrollment.value, enrollment.level) == (Decimal("0.00"), "red")  # 0 of 10


@pytest.mark.req("FR-MON-4")
def test_a_site_turning_red_notifies_the_study_manager_once(world, svc, clock, study):
    manager = study
    assert notify_red_sites(svc) == 2
    mails = [m for m in svc.mailer.sent if manager.email in m.to and "turned red" in m.subject]
    assert len(mails) == 1
    assert "Site 101: Protocol deviation rate is red" in mails[0].body
    assert "Site 101: Missing or expired essential documents is red" in mails[0].body
    clock.advance(timedelta(days=1))
    assert notify_red_sites(svc) == 0
    assert len([m for m in svc.mailer.sent if "turned red" in m.subject]) == 1


@pytest.mark.req("FR-MON-4")
@pytest.mark.parametrize("every_subjects", [None, 3])
def test_the_heat_map_asks_as_many_statements_for_many_sites_as_for_one(
        world, svc, clock, study, every_subjects):
    """Per-site statements made the dashboard take minutes at 500 sites: the gaps, overdue
    items and next visits of all the sites come from one pass each, and say what the one-site
    functions say."""
    from sqlalchemy import event

    from etmf.studies.models import Site

    today = clock.now().date()
    _run(world, study, mon.set_rule, world.study_id, 6, every_subjects)
    # Site 102 has a subject screened after its visit; with every_subjects=3 no site has 3.
    _run(world, study, subj.screen_subject, site_id=world.site_ids["102"], number="102-900")
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    def sql_of(site_numbers: tuple[str, ...]) -> int:
        statements.clear()
        event.listen(svc.db.engine, "before_cursor_execute", count)
        try:
            with svc.db.read_session() as s:
                rows = heat_map(s, world.study_id, today,
                                frozenset(world.site_ids[n] for n in site_numbers))
        finally:
            event.remove(svc.db.engine, "before_cursor_execute", count)
        assert [r.site.number for r in rows] == list(site_numbers)
        return len(statements)

    assert sql_of(("101",)) == sql_of(("101", "102")) > 0
    with svc.db.read_session() as s:
        sites = list(s.scalars(select(Site).where(Site.study_id == world.study_id)))
        assert mon.visits_due(s, sites) == {site.id: mon.visit_due(s, site) for site in sites}
        assert {d.on for d in mon.visits_due(s, sites).values()} != {None}


def test_the_data_entry_lag_reads_visit_completions_through_their_partial_index(
        world, svc, clock, study):
    """The lag's events come from the partial index of ``visit.completed`` events (migration
    0026), not from the index of every event of the study (720 ms at 1,090,000 events)."""
    from sqlalchemy import event, text

    from ctms.risk.services import entry_lags

    if svc.db.dialect != "postgresql":
        pytest.skip("reads PostgreSQL's plan; this runs in the PostgreSQL pass")
    seen: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, *_args):  # type: ignore[no-untyped-def]
        if "audit_events" in statement:
            seen.append((statement, parameters))

    event.listen(svc.db.engine, "before_cursor_execute", keep)
    try:
        with svc.db.read_session() as s:
            entry_lags(s, world.study_id, clock.now().date())
    finally:
        event.remove(svc.db.engine, "before_cursor_execute", keep)
    ((statement, parameters),) = seen
    with svc.db.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # a tiny table: ask which index fits
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cur.fetchall())
        conn.rollback()
    assert "ix_audit_events_visit_completed" in plan, plan
