"""The inspection acceptance journey: an inspector opens a document, its earlier version and
its audit trail, raises a request; a specialist answers it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, make_pdf
from tests.integration.accounts.conftest import make_inspector  # noqa: F401

pytestmark = pytest.mark.browser


def _sign_in(page, url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/")


@pytest.mark.req("FR-INSP-3")
def test_inspector_reads_versions_and_audit_trail_raises_a_request_specialist_answers(
        world, live_server, page, make_inspector):  # noqa: F811
    from etmf.documents import services as docs
    from etmf.documents.lifecycle import Action

    specialist = world.user("tmf_specialist", name="Sam Specialist")
    qc = world.user("qc_reviewer", name="Quentin QC")
    doc_id = world.document(specialist, title="Monitoring plan", state="approved", qc=qc)
    stored = world.store_file(make_pdf("Monitoring plan v2"), filename="plan-v2.pdf")
    with world.uow(specialist.name, specialist.id) as uow:
        docs.add_version(uow, world.access(specialist), doc_id, stored, label="2.0",
                         expected_version=3)
        uow.commit()
    for action, by, expected in ((Action.SUBMIT_QC, specialist, 4), (Action.APPROVE, qc, 5)):
        with world.uow(by.name, by.id) as uow:
            docs.transition(uow, world.access(by), doc_id, action, expected_version=expected)
            uow.commit()
    inspector, _grant = make_inspector(name="Ines Inspector")
    url = live_server.url

    _sign_in(page, url, inspector.email)
    page.goto(f"{url}/studies/{world.study_id}/inspection")
    assert page.get_by_test_id("total").inner_text() == "1"
    page.get_by_role("link", name="Documents by date").click()
    page.get_by_role("link", name="Monitoring plan").click()
    assert page.get_by_test_id("inline-pdf").locator("iframe").count() == 1
    versions = page.get_by_test_id("versions")
    assert "Superseded" in versions.inner_text()
    with page.expect_download() as download:
        versions.get_by_role("link", name="Monitoring plan.pdf").click()
    assert download.value.suggested_filename == "Monitoring plan.pdf"
    page.get_by_role("link", name="Full audit trail and export").click()
    assert "Status changed" in page.locator("main").inner_text()
    page.go_back()
    form = page.get_by_test_id("raise-request")
    form.get_by_label("You need").select_option("explanation")
    form.get_by_label("Your request").fill("Why was version 1.0 superseded?")
    form.get_by_role("button", name="Send request").click()
    assert re.search(r"Request \d+ was sent", page.get_by_role("status").inner_text())
    assert "Why was version 1.0 superseded?" in page.get_by_test_id("requests").inner_text()
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, url, specialist.email)
    page.goto(f"{url}/studies/{world.study_id}/inspection/requests")
    page.get_by_label("Answer").fill("Version 2.0 adds the risk-based monitoring section.")
    page.get_by_role("button", name="Answer").click()
    table = page.get_by_test_id("requests").inner_text()
    assert "risk-based monitoring" in table and "Sam Specialist" in table
