"""The acceptance journey in a real browser: a CRA records a visit with two findings and an
action item, generates the report and signs it; the manager signs; the report is in the TMF
at the Monitoring Visit Report artifact with both signatures valid."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.integration.signing_workflow.conftest import enrol

pytestmark = pytest.mark.browser


def _sign_in(page, live_server, user) -> None:  # type: ignore[no-untyped-def]
    sign_out = page.get_by_role("button", name="Sign out")
    if page.url.startswith(live_server.url) and sign_out.count():
        sign_out.click()
        page.wait_for_url(re.compile(".*/login.*"))
    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")


def _sign(page, live_server, request_path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server.url + request_path)
    page.get_by_label(re.compile("legally binding equivalent")).check()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(re.compile(r".*/documents/\d+"))


@pytest.mark.req("FR-MON-1")
@pytest.mark.req("SIG-7")
def test_cra_records_a_visit_generates_and_signs_the_report_then_the_manager_signs(
        world, svc, live_server, page):
    admin = world.user("admin")
    manager = world.user("study_manager", name="Mara Manager")
    cra = world.user("cra", site="101", name="Cleo CRA")
    for person in (manager, cra):
        enrol(world, svc, admin, person)

    _sign_in(page, live_server, cra)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}/monitoring")
    page.get_by_role("button", name="Plan visit").click()
    page.get_by_role("link", name=re.compile("Routine visit, site 101")).click()
    page.get_by_label("Attendees").fill("Dr Weber (PI), Nina Nurse")
    page.get_by_label("Subjects reviewed").fill("101-001, 101-002")
    page.get_by_label("Documents reviewed").fill("Investigator site file")
    page.get_by_label("Finding 1 category").select_option("consent")
    page.get_by_label("Finding 1 severity").select_option("major")
    page.get_by_label("Finding 1 description").fill("101-002 consented on ICF v1")
    page.get_by_label("Finding 2 category").select_option("essential_documents")
    page.get_by_label("Finding 2 severity").select_option("minor")
    page.get_by_label("Finding 2 description").fill("Delegation log not updated")
    page.get_by_label("Action item 1 description").fill("Re-consent 101-002 on ICF v2")
    page.get_by_label("Action item 1 owner").fill("Dr Weber")
    page.get_by_label("Action item 1 due date").fill("2026-12-10")
    page.get_by_role("button", name="Record visit").click()
    assert "2 finding(s) and 1 action item(s)" in page.get_by_role("status").inner_text()
    assert page.get_by_test_id("findings").locator("tbody tr").count() == 2

    page.get_by_label("Reviewing manager").select_option(label="Mara Manager")
    page.get_by_role("button", name="Generate report and request signatures").click()
    page.wait_for_url(re.compile(r".*/documents/\d+"))
    doc_url = page.url
    assert "05.04.03" in page.content() and "Monitoring Visit Report" in page.content()
    (mail,) = [m for m in svc.mailer.sent if cra.email in m.to]
    path = re.search(r"https?://[^/\s]+(/signatures/requests/\d+/sign)", mail.body).group(1)
    _sign(page, live_server, path)

    _sign_in(page, live_server, manager)
    _sign(page, live_server, path)
    page.goto(doc_url)
    statuses = page.get_by_test_id("signature-status").all_inner_texts()
    assert statuses == ["VALID", "VALID"]
    summaries = " ".join(page.get_by_test_id("signature-summary").all_inner_texts())
    assert "signed by Cleo CRA" in summaries and "signed by Mara Manager" in summaries


@pytest.mark.req("FR-MON-1")
def test_cra_generates_and_signs_the_follow_up_letter_filed_at_05_04_12(
        world, svc, live_server, page):
    admin = world.user("admin")
    cra = world.user("cra", site="101", name="Cleo CRA")
    enrol(world, svc, admin, cra)

    _sign_in(page, live_server, cra)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}/monitoring")
    page.get_by_role("button", name="Plan visit").click()
    page.get_by_role("link", name=re.compile("Routine visit, site 101")).click()
    page.get_by_label("Attendees").fill("Dr Weber (PI)")
    page.get_by_label("Finding 1 category").select_option("consent")
    page.get_by_label("Finding 1 severity").select_option("major")
    page.get_by_label("Finding 1 description").fill("101-002 consented on ICF v1")
    page.get_by_label("Action item 1 description").fill("Re-consent 101-002 on ICF v2")
    page.get_by_label("Action item 1 owner").fill("Dr Weber")
    page.get_by_label("Action item 1 due date").fill("2026-12-10")
    page.get_by_role("button", name="Record visit").click()
    page.get_by_role("button", name="Generate follow-up letter and sign").click()
    page.wait_for_url(re.compile(r".*/documents/\d+"))
    doc_url = page.url
    assert "05.04.12" in page.content()
    assert "Monitoring Visit Follow-up Documentation" in page.content()
    (mail,) = [m for m in svc.mailer.sent if cra.email in m.to]
    path = re.search(r"https?://[^/\s]+(/signatures/requests/\d+/sign)", mail.body).group(1)
    _sign(page, live_server, path)
    page.goto(doc_url)
    assert page.get_by_test_id("signature-status").all_inner_texts() == ["VALID"]
    assert "signed by Cleo CRA" in page.get_by_test_id("signature-summary").inner_text()
