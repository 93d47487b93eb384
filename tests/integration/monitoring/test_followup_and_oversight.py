"""Follow-up letters, the "after N new subjects" visit rule, overdue reports and action items
(pages and reminders once per threshold), the data-entry lag indicator and the KRI trend."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from ctms.monitoring import services as mon
from ctms.monitoring.models import MonitoringVisit
from ctms.monitoring.reminders import send_monitoring_reminders
from ctms.risk.services import heat_map
from ctms.risk.trend import RED_COUNT, take_snapshots, trend
from ctms.subjects import services as subj
from tests.conftest import PASSWORD
from tests.integration.ctms.conftest import ctms  # noqa: F401 (fixture)
from tests.integration.signing_workflow.conftest import enrol, login_as, post_sign

NO_GAPS = lambda _session, _site_id, _today: []  # noqa: E731


def _run(world, user, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with world.uow(user.name, user.id) as uow:
        result = fn(uow, world.access(user), *args, **kwargs)
        uow.commit()
    return result


@pytest.fixture
def team(world, svc):  # type: ignore[no-untyped-def]
    admin = world.user("admin")
    manager = world.user("study_manager", name="Mara Manager")
    cra = world.user("cra", site="101", name="Cleo CRA")
    for person in (manager, cra):
        enrol(world, svc, admin, person)
    return manager, cra


def _activate(world, svc, manager, number):  # type: ignore[no-untyped-def]
    from ctms.sites.services import change_site_status
    from etmf.studies.models import Site

    for to in ("initiation", "active"):
        with svc.db.read_session() as s:
            version = s.get(Site, world.site_ids[number]).version
        _run(world, manager, change_site_status, world.site_ids[number], to,
             expected_version=version, gap_finder=NO_GAPS)


def _recorded_visit(world, cra, on, *, due_in=14):  # type: ignore[no-untyped-def]
    visit = _run(world, cra, mon.plan_visit, site_id=world.site_ids["101"], kind="routine",
                 mode="on_site", planned_on=on, cra_user_id=cra.id)
    _run(world, cra, mon.record_visit, visit, mon.VisitRecord(
        visited_on=on, attendees="Dr Weber (PI)", summary="Routine visit.",
        findings=(mon.NewFinding("consent", "major", "ICF v2 not used for 101-001"),
                  mon.NewFinding("essential_documents", "minor", "CV of SI not signed")),
        action_items=(mon.NewActionItem("Re-consent 101-001 on ICF v2", "Dr Weber",
                                        on + timedelta(days=due_in)),)))
    return visit


@pytest.mark.req("FR-MON-1")
def test_the_follow_up_letter_lists_the_actions_is_signed_by_the_cra_and_filed_at_05_04_12(
        world, svc, clock, team, app):
    import io

    from pypdf import PdfReader

    from etmf.documents.models import Document
    from etmf.workflows.models import SignatureRequest

    manager, cra = team
    today = clock.now().date()
    planned = _run(world, cra, mon.plan_visit, site_id=world.site_ids["101"], kind="routine",
                   mode="remote", planned_on=today, cra_user_id=cra.id)
    with pytest.raises(mon.InvalidTransition, match="Record the visit"):
        _run(world, cra, mon.file_letter, planned, file=world.store_file(b"%PDF-1.4"),
             link=str, notify=svc.mailer.send)
    visit_id = _recorded_visit(world, cra, today)
    with svc.db.read_session() as s:
        pdf = mon.letter_pdf(s, s.get(MonitoringVisit, visit_id), cra.name)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Re-consent 101-001 on ICF v2" in text and "Dr Weber" in text
    assert (today + timedelta(days=14)).isoformat() in text
    assert "ICF v2 not used for 101-001" in text
    # Only the visit's CRA writes and signs the letter.
    with pytest.raises(mon.InvalidTransition, match="signed by the visit's CRA"):
        _run(world, manager, mon.file_letter, visit_id, file=world.store_file(pdf, "l.pdf"),
             link=str, notify=svc.mailer.send)
    doc_id = _run(world, cra, mon.file_letter, visit_id, file=world.store_file(pdf, "l.pdf"),
                  link=lambda rid: f"http://etmf.test/signatures/requests/{rid}/sign",
                  notify=svc.mailer.send)
    with pytest.raises(mon.InvalidTransition, match="already filed"):
        _run(world, cra, mon.file_letter, visit_id, file=world.store_file(pdf, "l.pdf"),
             link=str, notify=svc.mailer.send)
    with svc.db.read_session() as s:
        doc = s.get(Document, doc_id)
        assert (doc.artifact_id, doc.artifact_number, doc.zone) == ("241", "05.04.12", "05")
        visit = s.get(MonitoringVisit, visit_id)
        assert visit.letter_document_id == doc_id and visit.status == "recorded"
        request_id = visit.letter_request_id
    assert post_sign(login_as(app, cra), request_id, password=PASSWORD).status_code == 302
    with svc.db.read_session() as s:
        request = s.get(SignatureRequest, request_id)
        assert request.status == "completed"
        assert [(x.printed_name, x.meaning, x.status) for x in request.signers] == [
            ("Cleo CRA", "author", "signed")]
    page = login_as(app, cra).get(f"/documents/{doc_id}").get_data(as_text=True)
    assert "VALID" in page and "INVALID" not in page
    from etmf.audit.service import replay_and_compare

    with svc.db.read_session() as s:
        assert replay_and_compare(s) == []


@pytest.mark.req("FR-MON-1")
def test_a_visit_is_due_after_n_new_subjects_or_n_weeks_whichever_comes_first(
        world, svc, clock, team):
    from etmf.errors import ValidationError
    from etmf.studies.models import Site

    manager, cra = team
    today = clock.now().date()
    _activate(world, svc, manager, "101")
    with pytest.raises(ValidationError, match="or both"):
        _run(world, manager, mon.set_rule, world.study_id, None, None)
    _run(world, manager, mon.set_rule, world.study_id, 6, 3)
    visited = today - timedelta(days=20)
    _recorded_visit(world, cra, visited)

    def due():  # type: ignore[no-untyped-def]
        with svc.db.read_session() as s:
            return mon.visit_due(s, s.get(Site, world.site_ids["101"]))

    # Two subjects since the visit: the weekly rule gives the date.
    for n, days_ago in enumerate((15, 12)):
        _run(world, manager, subj.screen_subject, site_id=world.site_ids["101"],
             number=f"101-{n:03d}", screened_on=today - timedelta(days=days_ago))
    assert due().on == visited + timedelta(weeks=6)
    assert due().reason == "6 weeks after the last visit"
    # The third new subject makes the visit due on the day they were screened: overdue.
    _run(world, manager, subj.screen_subject, site_id=world.site_ids["101"], number="101-009",
         screened_on=today - timedelta(days=4))
    assert due().on == today - timedelta(days=4)
    assert due().reason == "3 new subject(s) screened since the last visit"
    with svc.db.read_session() as s:
        row = next(r for r in heat_map(s, world.study_id, today, gap_finder=NO_GAPS)
                   if r.site.number == "101")
    assert row.cells["monitoring"].value == 4  # days overdue
    # Subjects only: fewer than N since the visit gives no date at all.
    _run(world, manager, mon.set_rule, world.study_id, None, 5)
    assert due().on is None and due().reason.startswith("fewer than 5 new subject(s)")


@pytest.mark.req("FR-MON-1")
def test_overdue_reports_and_action_items_show_and_are_reminded_once_per_threshold(
        world, svc, clock, team, login):
    manager, cra = team
    today = clock.now().date()
    _run(world, manager, mon.set_rule, world.study_id, 6, None, 5)
    visit_id = _recorded_visit(world, cra, today, due_in=3)
    mails = []
    start = clock.now()
    for day in range(0, 40):
        clock.set(start + timedelta(days=day))
        before = len(svc.mailer.sent)
        send_monitoring_reminders(svc)
        send_monitoring_reminders(svc)  # a second run the same day sends nothing more
        mails += [(day, m.subject, m.to) for m in svc.mailer.sent[before:]]
        if day == 9:
            client = login(cra)
            page = client.get(f"/ctms/studies/{world.study_id}/monitoring").get_data(
                as_text=True)
            assert "Overdue by 4 day(s)" in page  # the report, due on day 5
            assert "Overdue by 6 day(s)" in page  # the action item, due on day 3
            site_page = client.get(
                f"/ctms/studies/{world.study_id}/monitoring/sites/{world.site_ids['101']}"
            ).get_data(as_text=True)
            assert "Overdue by 4 day(s)" in site_page and "Overdue by 6 day(s)" in site_page
        if day == 12:  # the report is filed: its reminders stop, the item's go on
            with svc.db.read_session() as s:
                pdf = mon.report_pdf(s, s.get(MonitoringVisit, visit_id), cra.name)
            _run(world, cra, mon.file_report, visit_id, file=world.store_file(pdf, "r.pdf"),
                 manager_user_id=manager.id, link=str, notify=lambda _m: None)
    report = [d for d, subject, _to in mails if subject.startswith("Monitoring visit report")]
    items = [d for d, subject, _to in mails if subject.startswith("Action item overdue")]
    assert report == [6, 12]  # due day 5: 1 and 7 days overdue; filed on day 12
    assert items == [4, 10, 17, 33]  # due day 3: 1, 7, 14 and 30 days overdue
    assert all({cra.email, manager.email} <= set(to) for _d, _s, to in mails)
    assert mails[0][1] == "Action item overdue by 1 day: site 101"


@pytest.mark.req("FR-MON-4")
def test_data_entry_lag_is_the_mean_days_from_visit_to_edc_import(ctms, world, svc, clock):  # noqa: F811
    from ctms.edc import services as edc
    from tests.integration.ctms.test_edc_import import _odm, _subject

    for spec in (subj.VisitSpec("V1", "Baseline", 0), subj.VisitSpec("V2", "Week 2", 14, 3, 3)):
        ctms.run(subj.define_visit, world.study_id, spec)
    sid = ctms.run(subj.screen_subject, site_id=world.site_ids["101"], number="101-002",
                   screened_on=date(2026, 11, 1), by=ctms.coordinator)
    ctms.run(subj.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=date(2026, 11, 1), by=ctms.coordinator)
    ctms.run(subj.change_status, sid, "enrolled", effective_on=date(2026, 11, 1),
             by=ctms.coordinator)
    data = _odm(_subject("101-002", [
        ("Event.baseline_arm_1", "baseline_arm_1", [("visit_date", "2026-11-01")]),
        ("Event.week_2_arm_1", "week_2_arm_1", [("visit_date", "2026-11-15")])]))
    assert clock.now().date() == date(2026, 11, 26)
    with world.uow(ctms.coordinator.name, ctms.coordinator.id) as uow:
        assert edc.import_odm(uow, world.access(ctms.coordinator), world.study_id, data,
                              dry_run=False).imported
        uow.commit()
    with svc.db.read_session() as s:
        rows = {r.site.number: r for r in heat_map(s, world.study_id, clock.now().date(),
                                                   gap_finder=NO_GAPS)}
    cell = rows["101"].cells["data_entry_lag"]
    # By hand: imported 2026-11-26; visits 2026-11-01 (25 days) and 2026-11-15 (11 days).
    assert cell.value == Decimal("18.0") and cell.level == "red"
    assert "2 visit(s)" in cell.detail and "longest 25 days" in cell.detail
    assert rows["102"].cells["data_entry_lag"].level == "none"
    # The window: 90 days later the import no longer counts.
    with svc.db.read_session() as s:
        later = heat_map(s, world.study_id, date(2026, 11, 26) + timedelta(days=90),
                         gap_finder=NO_GAPS)
    assert next(r for r in later if r.site.number == "101").cells[
        "data_entry_lag"].value is None


@pytest.mark.req("FR-MON-4")
@pytest.mark.req("AUD-6")
def test_daily_snapshots_give_the_trend_once_a_day_and_replay(world, svc, clock, team, login):
    from ctms.deviations import services as dev

    manager, cra = team
    start = clock.now()
    for day in range(3):
        clock.set(start + timedelta(days=day))
        if day == 1:  # an SAE at site 102 goes overdue: its timeliness cell turns amber
            from ctms.safety import services as safety

            _run(world, manager, safety.report_sae, safety.NewSae(
                site_id=world.site_ids["102"], term="Sepsis", seriousness="Hospitalisation",
                awareness_on=clock.now().date() - timedelta(days=30)))
            _run(world, manager, mon.set_rule, world.study_id, 1)
        if day == 2:
            _run(world, manager, dev.log_deviation, dev.NewDeviation(
                site_id=world.site_ids["101"], category="other", description="x",
                occurred_on=clock.now().date(), identified_on=clock.now().date()))
        assert take_snapshots(svc, gap_finder=NO_GAPS) == 1
        assert take_snapshots(svc, gap_finder=NO_GAPS) == 0  # once a day
    today = clock.now().date()
    with svc.db.read_session() as s:
        t = trend(s, world.study_id, today, indicator="sae_timeliness", days=5)
        by_site = {x.site.number: x.values for x in t.series}
        assert by_site["102"] == [None, None, Decimal(0), Decimal(1), Decimal(1)]
        assert by_site["101"] == [None, None, Decimal(0), Decimal(0), Decimal(0)]
        reds = trend(s, world.study_id, today, indicator=RED_COUNT, days=3)
        assert [r[0] for r in reds.rows()] == [today - timedelta(days=2),
                                                today - timedelta(days=1), today]
    page = login(manager).get(f"/ctms/studies/{world.study_id}/risk?trend=sae_timeliness"
                              "&days=14").get_data(as_text=True)
    assert 'data-testid="kri-trend"' in page and "<polyline" in page
    assert "SAE reports late or overdue per site" in page
    from etmf.audit.service import replay_and_compare

    with svc.db.read_session() as s:
        assert replay_and_compare(s) == []


@pytest.mark.req("FR-MON-1")
def test_the_api_gives_what_is_overdue_and_the_trend(world, svc, clock, team, login):
    manager, cra = team
    today = clock.now().date()
    _run(world, manager, mon.set_rule, world.study_id, 2, None, 3)
    visit_id = _recorded_visit(world, cra, today - timedelta(days=10), due_in=5)
    take_snapshots(svc, gap_finder=NO_GAPS)
    client = login(manager)
    body = client.get(f"/api/v1/studies/{world.study_id}/monitoring/overdue").json
    assert body["reports"] == [{"visit_id": visit_id, "site_id": world.site_ids["101"],
                                "visited_on": (today - timedelta(days=10)).isoformat(),
                                "report_due": (today - timedelta(days=7)).isoformat(),
                                "days_overdue": 7}]
    assert [(a["description"], a["days_overdue"]) for a in body["action_items"]] == [
        ("Re-consent 101-001 on ICF v2", 5)]
    site = next(s for s in body["sites"] if s["number"] == "101")
    assert site == {"site_id": world.site_ids["101"], "number": "101",
                    "next_visit_due": (today + timedelta(days=4)).isoformat(),
                    "because": "2 weeks after the last visit"}
    visits = client.get(f"/api/v1/studies/{world.study_id}/monitoring/visits").json["visits"]
    assert visits[0]["report_due"] == (today - timedelta(days=7)).isoformat()
    assert visits[0]["letter_document_id"] is None
    t = client.get(f"/api/v1/studies/{world.study_id}/risk/trend?indicator=action_items"
                   "&days=2").json
    assert t["days"] == [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    by_site = {s["number"]: s["values"] for s in t["sites"]}
    assert by_site["101"] == [None, "1"] and by_site["102"] == [None, "0"]
    assert client.get(f"/api/v1/studies/{world.study_id}/risk/trend?indicator=nope"
                      ).status_code == 400
    spec = client.get("/api/v1/openapi.json").json
    assert {"/studies/{study_id}/monitoring/overdue",
            "/studies/{study_id}/risk/trend"} <= set(spec["paths"])
