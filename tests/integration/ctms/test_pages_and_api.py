"""CTMS pages and API: what a manager, a coordinator and the API see and can do."""

from __future__ import annotations

import pytest

from ctms.subjects import services as subjects
from tests.conftest import csrf_from


@pytest.mark.req("FR-CTMS-3")
def test_coordinator_is_refused_on_the_outdated_icf_on_the_page(ctms, world, login):
    client = login(ctms.coordinator)
    page = client.get(f"/ctms/studies/{world.study_id}/subjects")
    token = csrf_from(page.get_data(as_text=True))
    client.post(f"/ctms/studies/{world.study_id}/subjects",
                data={"csrf_token": token, "site_id": world.site_ids["101"], "number": "S-1"})
    sid = _subject_id(world, "S-1")
    refused = client.post(f"/ctms/studies/{world.study_id}/subjects/consent",
                          data={"csrf_token": token, "subject_id": sid,
                                "icf_version_id": ctms.icf["v1"],
                                "consented_on": "2026-11-26"}, follow_redirects=True)
    html = refused.get_data(as_text=True)
    assert "ICF v1.0 was not the version approved and in force at site 101" in html
    ok = client.post(f"/ctms/studies/{world.study_id}/subjects/consent",
                     data={"csrf_token": token, "subject_id": sid,
                           "icf_version_id": ctms.icf["v2"], "consented_on": "2026-11-26"},
                     follow_redirects=True)
    assert "Consent of subject S-1 on 2026-11-26 is recorded." in ok.get_data(as_text=True)


def _subject_id(world, number):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from ctms.subjects.models import Subject
    from etmf.bootstrap import services

    with services(world.app).db.read_session() as s:
        return s.scalar(select(Subject.id).where(Subject.number == number))


@pytest.mark.req("FR-CTMS-6")
def test_study_page_shows_sites_versions_and_the_enrollment_chart(ctms, world, login):
    from datetime import date

    from ctms.studyplan.services import PlanChange, set_study_plan

    ctms.run(set_study_plan, world.study_id, PlanChange(planned_enrollment=3,
                                                        planned_start=date(2026, 1, 1)))
    for i, on in enumerate((date(2026, 9, 1), date(2026, 10, 1))):
        sid = ctms.run(subjects.screen_subject, site_id=world.site_ids["101"], number=f"E-{i}",
                       screened_on=on, by=ctms.coordinator)
        ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"], consented_on=on,
                 by=ctms.coordinator)
        ctms.run(subjects.change_status, sid, "enrolled", effective_on=on, by=ctms.coordinator)
    html = login(ctms.manager).get(f"/ctms/studies/{world.study_id}").get_data(as_text=True)
    assert "<svg" in html and 'role="img"' in html
    assert "Enrolled 2 of 3" in html and 'data-testid="forecast"' in html
    assert "v2.0" in html  # protocol and ICF in force at site 101
    # The version and approval pickers offer the artifacts they take, not every document.
    version_picker = html.split('name="document_id" required>')[1].split("</select>")[0]
    approval_picker = html.split('name="approval_document_id">')[1].split("</select>")[0]
    assert "02.01.02 Protocol v1" in version_picker and "02.02.03 ICF v2" in version_picker
    assert "04.01.02" not in version_picker
    assert "04.01.02 IRB approval v1" in approval_picker and "02.01.02" not in approval_picker


def test_api_lists_sites_subjects_and_records_a_consent(ctms, world, login):
    client = login(ctms.coordinator)
    sites = client.get(f"/api/v1/studies/{world.study_id}/ctms/sites").json["sites"]
    assert [(s["number"], s["icf_in_force"], s["status"]) for s in sites] == \
        [("101", "v2.0", "active")]  # a site-limited coordinator sees their site only
    sid = ctms.run(subjects.screen_subject, site_id=world.site_ids["101"], number="A-1",
                   by=ctms.coordinator)
    token = csrf_from(client.get("/account/").get_data(as_text=True))
    refused = client.post(f"/api/v1/studies/{world.study_id}/ctms/consents",
                          json={"subject_id": sid, "icf_version_id": ctms.icf["v1"],
                                "consented_on": "2026-11-26"}, headers={"X-CSRFToken": token})
    assert refused.status_code == 400 and "v2.0" in refused.json["error"]["message"]
    ok = client.post(f"/api/v1/studies/{world.study_id}/ctms/consents",
                     json={"subject_id": sid, "icf_version_id": ctms.icf["v2"],
                           "consented_on": "2026-11-26"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 201
    listed = client.get(f"/api/v1/studies/{world.study_id}/ctms/subjects").json["subjects"]
    assert [s["number"] for s in listed] == ["A-1"]
    doc = client.get("/api/v1/openapi.json").json
    assert "/studies/{study_id}/ctms/consents" in doc["paths"]


def test_study_page_shows_its_sites_a_page_at_a_time(ctms, world, login, monkeypatch):
    """A 500-site study's page held every site with its forms and chart (1.5 MB): the
    sites come a page at a time, the study's figures still count them all, and a form sent
    from a page comes back to it."""
    from ctms.web import ctms as pages

    monkeypatch.setattr(pages, "SITE_ROWS", 1)
    client = login(ctms.manager)
    url = f"/ctms/studies/{world.study_id}"

    def sites_of(html):  # type: ignore[no-untyped-def]
        table = html.split('data-testid="sites">')[1].split("</table>")[0]
        return [n for n in ("101", "102", "201") if f'<th scope="row">{n} ' in table]

    first = client.get(url).get_data(as_text=True)
    pages_total = len(world.site_ids)
    assert sites_of(first) == ["101"] and f"Page 1 of {pages_total}" in first
    assert f'href="{url}?page=2">Next</a>' in first and "Previous</a>" not in first
    second = client.get(url, query_string={"page": 2}).get_data(as_text=True)
    assert sites_of(second) == ["102"] and f'href="{url}?page=1">Previous</a>' in second
    assert sites_of(client.get(url, query_string={"page": 999}).get_data(as_text=True)) == \
        ["201"]  # past the end: the last page
    token = csrf_from(second)
    back = client.post(f"{url}/sites/target", data={
        "csrf_token": token, "site_id": world.site_ids["102"], "target": "7", "page": "2"})
    assert back.status_code == 302 and back.headers["Location"].endswith(f"{url}?page=2")
    after = client.get(url, query_string={"page": 2}).get_data(as_text=True)
    assert "0 / 7" in after.split('data-testid="sites">')[1].split("</table>")[0]
