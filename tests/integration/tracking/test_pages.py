"""The tracking pages: dashboard with charts, drill-down with CSV, filing from the list,
expiry views and flags, the EDL editor, people and the task list."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from etmf.tracking import services as tracking
from etmf.tracking.services import Scope
from etmf.web.tracking import PAGE_ROWS
from tests.conftest import csrf_from, make_pdf


def _fresh_login(app, user):  # type: ignore[no-untyped-def]
    from tests.conftest import PASSWORD

    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


@pytest.fixture
def study_with_edl(tracker, clock):  # type: ignore[no-untyped-def]
    w = tracker.w
    for site in ("101", "102"):
        tracker.run(tracking.add_entry, w.study_id, Scope("site", site_id=w.site_ids[site]),
                    "05.02.04", milestone="03")
    tracker.run(tracking.add_entry, w.study_id, Scope("site", site_id=w.site_ids["101"]),
                "05.02.08", milestone="03")
    cv = tracker.file("05.02.04", site="101", document_date=clock.now().date(),
                      expiry_date=clock.now().date() + timedelta(days=20), title="CV PI 101")
    tracker.approve(cv)
    return w, cv


@pytest.mark.req("FR-TRACK-2")
def test_dashboard_bars_lead_to_the_sites_missing_documents_with_csv(
        tracker, study_with_edl, login):
    w, _cv = study_with_edl
    client = login(tracker.manager)
    page = client.get(f"/tracking/studies/{w.study_id}").get_data(as_text=True)
    assert "<svg" in page and "Completeness by site" in page
    assert 'data-testid="study-completeness">33 %' in page  # 1 of 3
    site102 = w.site_ids["102"]
    assert f"/tracking/studies/{w.study_id}/entries?site={site102}&amp;problem=open" in page
    listing = client.get(f"/tracking/studies/{w.study_id}/entries?site={site102}&problem=open")
    assert "05.02.04 Principal Investigator Curriculum Vitae" in listing.get_data(as_text=True)
    exported = client.get(f"/tracking/studies/{w.study_id}/entries?problem=open&format=csv")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert sorted((r["place"], r["artifact"], r["problem"])
                  for r in rows) == [("Site 101", "05.02.08", "missing"),
                                     ("Site 102", "05.02.04", "missing")]


@pytest.mark.req("FR-TRACK-2")
def test_filing_from_the_missing_list_changes_the_figures(tracker, study_with_edl, login):
    w, _cv = study_with_edl
    client = login(tracker.manager)
    url = f"/tracking/studies/{w.study_id}/entries?site={w.site_ids['102']}&problem=missing"
    page = client.get(url).get_data(as_text=True)
    entry_id = re.search(r'name="entry_id" value="(\d+)"', page).group(1)
    response = client.post(f"/tracking/studies/{w.study_id}/entries/file", data={
        "csrf_token": csrf_from(page), "entry_id": entry_id, "next": url,
        "document_date": "2026-11-20",
        "file": (io.BytesIO(make_pdf("CV of the PI of 102")), "cv102.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    after = client.get(url).get_data(as_text=True)
    assert "Filed Principal Investigator Curriculum Vitae as a draft" in after
    assert "Nothing to show." in after  # no longer missing: filed, not yet approved
    listing = client.get(f"/tracking/studies/{w.study_id}/entries?site={w.site_ids['102']}"
                         "&problem=not_approved").get_data(as_text=True)
    assert "Principal Investigator Curriculum Vitae" in listing


@pytest.mark.req("FR-TRACK-3")
def test_expiry_views_and_the_expired_flag_in_the_tmf_browser(tracker, study_with_edl, login,
                                                              clock):
    w, cv = study_with_edl
    client = login(tracker.manager)
    assert "CV PI 101" in client.get(
        f"/tracking/studies/{w.study_id}/expiry?window=30").get_data(as_text=True)
    docs = client.get(f"/studies/{w.study_id}/documents").get_data(as_text=True)
    assert 'data-testid="expired-flag"' not in docs
    clock.advance(timedelta(days=21))
    client = _fresh_login(w.app, tracker.manager)  # the first session timed out meanwhile
    expired = client.get(f"/tracking/studies/{w.study_id}/expiry?window=expired")
    assert "CV PI 101" in expired.get_data(as_text=True)
    assert 'data-testid="expired-flag"' in client.get(
        f"/studies/{w.study_id}/documents").get_data(as_text=True)
    ready = client.get(f"/tracking/studies/{w.study_id}/readiness?site={w.site_ids['101']}")
    assert "1 expired" in ready.get_data(as_text=True)
    tasks = client.get("/tracking/tasks").get_data(as_text=True)
    assert "Renew" in tasks and "CV PI 101" in tasks


def test_the_task_list_shows_the_most_urgent_of_each_kind_and_links_to_all(
        tracker, study_with_edl, login, clock, monkeypatch):
    from etmf.web import tracking as pages

    w, _cv = study_with_edl
    today = clock.now().date()
    licence = tracker.file("05.02.04", site="102", expiry_date=today + timedelta(days=5),
                           title="Licence 102")
    tracker.approve(licence)
    for scope in (Scope("trial"), Scope("site", site_id=w.site_ids["101"])):
        tracker.run(tracking.set_milestone_dates, w.study_id, scope, "03",
                    planned=today + timedelta(days=10), actual=None)
    monkeypatch.setattr(pages, "TASK_ROWS", 1)
    tasks = login(tracker.manager).get("/tracking/tasks").get_data(as_text=True)
    assert "Licence 102" in tasks and "CV PI 101" not in tasks  # the soonest of the two
    assert f'href="/tracking/studies/{w.study_id}/expiry?window=30">All 2 documents ' \
        "expiring within 30 days</a>" in tasks
    assert tasks.count("Milestone 03") == 1
    assert f'href="/tracking/studies/{w.study_id}/edl#h-ms">All 2 milestones' in tasks
    assert "expired documents</a>" not in tasks  # none has expired


@pytest.mark.req("FR-TRACK-1")
def test_study_manager_generates_and_edits_the_edl_in_the_browser_forms(tracker, login):
    w = tracker.w
    client = login(tracker.manager)
    page = client.get(f"/tracking/studies/{w.study_id}/edl").get_data(as_text=True)
    token = csrf_from(page)
    assert client.post(f"/tracking/studies/{w.study_id}/edl/generate",
                       data={"csrf_token": token}).status_code == 302
    page = client.get(f"/tracking/studies/{w.study_id}/edl").get_data(as_text=True)
    # Generated for every place: more than a page; one place's entries are one choice away.
    total = int(page.split('data-testid="edl">\n<caption>')[1].split(" ")[0])
    assert total > PAGE_ROWS and f"on page 1 of {-(-total // PAGE_ROWS)}" in page
    assert page.count('name="entry_id"') == 2 * PAGE_ROWS and ">Next</a>" in page
    site = client.get(f"/tracking/studies/{w.study_id}/edl",
                      query_string={"place": f"site-{w.site_ids['101']}"}).get_data(as_text=True)
    assert "05.02.04 Principal Investigator Curriculum Vitae" in site
    next_link = site.split('class="pager"')[1].split(">Next</a>")[0].rsplit('href="', 1)[1]
    assert f"place=site-{w.site_ids['101']}" in next_link and "page=2" in next_link
    assert "Site 102" not in site.split('data-testid="edl"')[1]
    last = client.get(f"/tracking/studies/{w.study_id}/edl",
                      query_string={"page": 10_000}).get_data(as_text=True)
    assert ">Previous</a>" in last and ">Next</a>" not in last  # clamped to the last page
    # The states of the expected documents page too; the CSV keeps every one.
    states = client.get(f"/tracking/studies/{w.study_id}/entries",
                        query_string={"problem": "missing"}).get_data(as_text=True)
    listed = states.split('data-testid="entries">')[1].split("</tbody>")[0]
    assert listed.count('<th scope="row">') == PAGE_ROWS
    assert "problem=missing" in states.split('class="pager"')[1]
    csv_rows = client.get(f"/tracking/studies/{w.study_id}/entries",
                          query_string={"problem": "missing", "format": "csv"}).get_data(
                              as_text=True).strip().splitlines()
    assert len(csv_rows) - 1 > PAGE_ROWS and f"{len(csv_rows) - 1} expected documents" in states
    # Inspection readiness lists the first page of each kind and links to all of them.
    ready = client.get(f"/tracking/studies/{w.study_id}/readiness").get_data(as_text=True)
    missing = ready.split("<caption>Missing (")[1].split("</table>")[0]
    assert missing.startswith(f"{len(csv_rows) - 1}, the first {PAGE_ROWS})")
    assert missing.count('<th scope="row">') == PAGE_ROWS
    assert f"problem=missing\">All {len(csv_rows) - 1} missing</a>" in ready
    assert client.post(f"/tracking/studies/{w.study_id}/milestones", data={
        "csrf_token": token, "code": "03", "level": "site", "site_id": w.site_ids["101"],
        "planned": "2026-12-01"}).status_code == 302
    page = client.get(f"/tracking/studies/{w.study_id}/edl").get_data(as_text=True)
    assert "2026-12-01" in page
    dashboard = client.get(f"/tracking/studies/{w.study_id}").get_data(as_text=True)
    assert "Completeness by zone" in dashboard


def test_people_page_lists_a_person_at_two_sites(tracker, login):
    w = tracker.w
    client = login(tracker.manager)
    token = csrf_from(client.get(f"/tracking/studies/{w.study_id}/persons").get_data(as_text=True))
    client.post(f"/tracking/studies/{w.study_id}/persons", data={
        "csrf_token": token, "name": "Dr Ada", "site_id": w.site_ids["101"], "role": "PI"})
    from etmf.tracking.models import Person
    person_id = tracker.read(lambda s: s.query(Person).one().id)
    client.post(f"/tracking/studies/{w.study_id}/persons", data={
        "csrf_token": token, "person_id": person_id, "site_id": w.site_ids["201"],
        "role": "Sub-Investigator"})
    page = client.get(f"/tracking/studies/{w.study_id}/persons").get_data(as_text=True)
    assert "101 (PI), 201 (Sub-Investigator)" in page


@pytest.mark.req("FR-TRACK-3")
def test_documents_list_flags_expiry_derived_from_the_artifacts_validity(tracker, login,
                                                                         clock):
    w = tracker.w
    today = clock.now().date()
    # a lab's normal ranges (365 days by default), no own expiry date, dated 400 days ago
    old = tracker.file("08.01.04", site="101", document_date=today - timedelta(days=400),
                       title="Normal ranges 2025")
    tracker.approve(old)
    fresh = tracker.file("08.01.04", site="102", document_date=today - timedelta(days=10),
                         title="Normal ranges 2026")
    tracker.approve(fresh)
    client = login(tracker.manager)
    page = client.get(f"/studies/{w.study_id}/documents").get_data(as_text=True)
    rows = {title: row for row in page.split("<tr>")
            for title in ("Normal ranges 2025", "Normal ranges 2026") if title in row}
    assert 'data-testid="expired-flag"' in rows["Normal ranges 2025"]
    assert (today - timedelta(days=35)).isoformat() in rows["Normal ranges 2025"]
    assert "(validity)" in rows["Normal ranges 2026"]
    assert 'data-testid="expired-flag"' not in rows["Normal ranges 2026"]
    # the same document is in the tracking view of expired documents
    expired = client.get(
        f"/tracking/studies/{w.study_id}/expiry?window=expired").get_data(as_text=True)
    assert "Normal ranges 2025" in expired and "Normal ranges 2026" not in expired


@pytest.mark.req("FR-TRACK-2")
def test_a_document_filed_after_a_view_shows_on_the_next_view_without_a_rebuild(
        tracker, study_with_edl, login, svc):
    from etmf.tracking.models import CacheStamp

    w, _cv = study_with_edl
    client = login(tracker.manager)
    page = client.get(f"/tracking/studies/{w.study_id}").get_data(as_text=True)
    assert 'data-testid="study-completeness">33 %' in page  # 1 of 3; the caches are built
    built = tracker.read(lambda s: s.get(CacheStamp, w.study_id).seq)
    doc = tracker.file("05.02.04", site="102", document_date=svc.clock.now().date())
    tracker.approve(doc)
    page = client.get(f"/tracking/studies/{w.study_id}").get_data(as_text=True)
    assert 'data-testid="study-completeness">66 %' in page  # 2 of 3, at once
    # Kept by the filing and the approval themselves, not rebuilt by the view.
    assert tracker.read(lambda s: s.get(CacheStamp, w.study_id).seq) == built
