"""Pages, API and audit for monitoring: the heat map is an HTML table whose cells link to the
records; the API lists deviations, SAEs and the heat map; everything replays from the log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ctms.deviations import services as dev
from ctms.safety import services as safety
from tests.conftest import csrf_from


def _run(world, user, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with world.uow(user.name, user.id) as uow:
        result = fn(uow, world.access(user), *args, **kwargs)
        uow.commit()
    return result


@pytest.fixture
def manager(world, clock):  # type: ignore[no-untyped-def]
    m = world.user("study_manager", name="Mara Manager")
    today = clock.now().date()
    _run(world, m, dev.log_deviation, dev.NewDeviation(
        site_id=world.site_ids["101"], category="eligibility", description="Age out of range",
        occurred_on=today - timedelta(days=3), identified_on=today, important=True))
    _run(world, m, safety.report_sae, safety.NewSae(
        site_id=world.site_ids["102"], term="Sepsis", seriousness="Hospitalisation",
        awareness_on=today - timedelta(days=20)))
    return m


@pytest.mark.req("FR-MON-4")
def test_the_heat_map_is_an_accessible_table_with_text_and_links(world, login, manager):
    page = login(manager).get(f"/ctms/studies/{world.study_id}/risk").get_data(as_text=True)
    assert '<th scope="col">Protocol deviation rate' in page
    assert 'data-indicator="sae_timeliness" data-level="amber"' in page  # 1 overdue SAE
    assert "<strong>Amber</strong>: 1" in page  # the level in words, not colour alone
    assert f'/ctms/studies/{world.study_id}/safety?site={world.site_ids["102"]}' in page
    assert f'/ctms/studies/{world.study_id}/deviations?site={world.site_ids["101"]}' in page


@pytest.mark.req("FR-MON-3")
def test_deviations_are_reviewed_and_closed_with_capa_through_the_pages(
        world, login, svc, manager):
    from ctms.deviations.models import Deviation

    client = login(manager)
    path = f"/ctms/studies/{world.study_id}/deviations"
    token = csrf_from(client.get(path).get_data(as_text=True))
    client.post(path + "/review", data={"csrf_token": token, "deviation_id": "1",
                                        "important": "yes"})
    refused = client.post(path + "/close", data={"csrf_token": token, "deviation_id": "1"},
                          follow_redirects=True).get_data(as_text=True)
    assert "needs its corrective and preventive action" in refused
    with svc.db.read_session() as s:
        assert s.get(Deviation, 1).status == "reviewed"


@pytest.mark.req("FR-MON-2")
def test_the_api_gives_deviations_saes_and_the_heat_map(world, login, manager):
    client = login(manager)
    saes = client.get(f"/api/v1/studies/{world.study_id}/saes").json["saes"]
    assert [(s["term"], s["state"], s["late"]) for s in saes] == [
        ("Sepsis", "overdue by 5 days", True)]
    token = csrf_from(client.get("/account/").get_data(as_text=True))
    created = client.post(f"/api/v1/studies/{world.study_id}/deviations",
                          json={"site_id": world.site_ids["201"], "category": "other",
                                "description": "Fridge log gap", "occurred_on": "2026-11-20",
                                "identified_on": "2026-11-25"},
                          headers={"X-CSRFToken": token})
    assert created.status_code == 201
    devs = client.get(f"/api/v1/studies/{world.study_id}/deviations").json["deviations"]
    assert {d["description"] for d in devs} == {"Age out of range", "Fridge log gap"}
    risk = client.get(f"/api/v1/studies/{world.study_id}/risk").json
    by_site = {s["number"]: s["indicators"] for s in risk["sites"]}
    assert by_site["102"]["sae_timeliness"] == {
        "value": "1", "level": "amber", "detail": "1 of 1 SAE reports late or overdue"}
    spec = client.get("/api/v1/openapi.json").json
    assert {"/studies/{study_id}/risk", "/studies/{study_id}/saes",
            "/studies/{study_id}/deviations",
            "/studies/{study_id}/monitoring/visits"} <= set(spec["paths"])


@pytest.mark.req("AUD-6")
def test_monitoring_safety_deviations_and_thresholds_replay_from_the_log(world, svc, manager):
    from ctms.risk.services import set_threshold
    from etmf.audit.service import replay_and_compare

    _run(world, manager, dev.review_deviation, 1, important=True, capa="Re-train staff")
    _run(world, manager, dev.close_deviation, 1)
    _run(world, manager, safety.set_clock, world.study_id, fatal_days=7, other_days=14)
    _run(world, manager, set_threshold, world.study_id, "action_items", amber="2", red="4")
    with svc.db.read_session() as s:
        assert replay_and_compare(s) == []
