"""The daily work of filing, in a real browser: three files in one go, suggestions
accepted and corrected, QC rejecting one with an issue, the fix, and full-text search."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD, make_pdf

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _close_indexing(app) -> Iterator[None]:  # type: ignore[no-untyped-def]
    yield
    from etmf.bootstrap import services
    from etmf.documents import indexing

    indexing.shutdown(services(app))


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


@pytest.mark.req("OPS-1")
@pytest.mark.req("REC-5")
@pytest.mark.req("REC-6")
def test_specialist_files_three_documents_qc_rejects_one_and_search_finds_its_text(
        world, live_server, page, tmp_path, svc):
    specialist = world.user("tmf_specialist", name="Sam Specialist")
    reviewer = world.user("qc_reviewer", name="Quinn Reviewer")
    files = {
        "Protocol_v3.pdf": make_pdf("Protocol ONC-301 v3",
                                    "Subjects are stratified by wombat exposure history."),
        "Investigators_Brochure_edition7.pdf": make_pdf("Investigator's Brochure",
                                                        "Edition 7 of the brochure."),
        "Team_plan.pdf": make_pdf("Trial team plan", "How the trial team works."),
    }
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))

    _sign_in(page, live_server, specialist)
    page.goto(f"{live_server.url}/studies/{world.study_id}/file")
    page.get_by_label(re.compile("^Files")).set_input_files(paths)
    assert page.locator("#chosen li").count() == 3
    page.get_by_role("button", name="Upload and describe").click()
    page.get_by_role("heading", name="Describe the files").wait_for()
    assert page.locator("progress#upload-progress").count() == 0  # the page was replaced
    rows = page.locator("fieldset.filing-row")
    assert rows.count() == 3

    dates = {"Protocol_v3.pdf": "2026-03-01", "Investigators_Brochure_edition7.pdf":
             "2025-11-10", "Team_plan.pdf": "2026-01-15"}
    for i in range(3):
        row = rows.nth(i)
        name = row.locator(".filename").inner_text()
        if name == "Team_plan.pdf":
            # The suggestions are wrong: correct it with the artifact combobox, by keyboard.
            combo = row.get_by_role("combobox", name=re.compile("^Find an artifact"))
            combo.fill("trial management plan")
            row.get_by_role("listbox", name="Matching artifacts").get_by_role(
                "option", name=re.compile("01.01.02 Trial Management Plan")).wait_for()
            combo.press("ArrowDown")
            combo.press("Enter")
            assert row.locator("select.artifact-select").input_value() == "002"
        else:
            row.locator("button.suggestion").first.click()  # accept the top suggestion
            assert row.locator("button.suggestion").first.get_attribute("aria-pressed") \
                == "true"
        # The date is labelled by the chosen artifact's dating convention.
        assert row.locator("label[for$='document_date']").inner_text() == "Version Date"
        row.get_by_label("Level").select_option("trial")
        row.locator("input[type=date][name$='document_date']").fill(dates[name])
    page.get_by_label("Send the filed documents to QC at once").check()
    page.get_by_role("button", name="File 3 documents").click()
    page.get_by_text("Filed 3 documents and sent to QC.").wait_for()

    # The list orders by document date (newest first), not by upload order.
    table = page.get_by_test_id("documents")
    page.get_by_label("Sort").select_option("document_date")
    page.get_by_role("button", name="Apply").click()
    titles = [t.strip() for t in table.locator("tbody th").all_inner_texts()]
    assert titles == ["Protocol v3", "Team plan", "Investigators Brochure edition7"]

    # QC: reject the plan with an issue, approve the other two.
    _sign_in(page, live_server, reviewer)
    for title in titles:
        page.goto(f"{live_server.url}/studies/{world.study_id}/documents")
        page.get_by_role("link", name=title).click()
        if title == "Team plan":
            page.get_by_label("Issue 1 category").select_option("Metadata incorrect or missing")
            page.get_by_label("Issue 1 comment").fill("The title must name the plan")
            page.get_by_role("button", name="Reject (back to draft)").click()
            assert page.get_by_test_id("status").inner_text() == "Draft"
        else:
            page.get_by_role("button", name="Approve").click()
            assert page.get_by_test_id("status").inner_text() == "Approved"
    page.goto(f"{live_server.url}/studies/{world.study_id}/qc-issues")
    assert "The title must name the plan" in page.get_by_test_id("qc-issues").inner_text()

    # The specialist fixes the metadata, answers the issue and resubmits.
    _sign_in(page, live_server, specialist)
    page.goto(f"{live_server.url}/studies/{world.study_id}/documents")
    page.get_by_role("link", name="Team plan").click()
    page.get_by_role("link", name="Edit metadata").click()
    page.get_by_label("Title").fill("Trial Management Plan v1")
    page.get_by_role("button", name="Save").click()
    page.get_by_label("What was done").fill("Title corrected")
    page.get_by_role("button", name="Answer").click()
    page.get_by_role("button", name="Send to QC").click()
    assert page.get_by_test_id("status").inner_text() == "In QC"
    assert "title: Team plan → Trial Management Plan v1" in page.get_by_test_id(
        "history").inner_text()

    # A word that occurs only inside the protocol PDF is found, with a snippet.
    from etmf.documents import indexing

    assert indexing.flush(svc)
    page.goto(f"{live_server.url}/search")
    page.get_by_label('Words or "a phrase"').fill("wombat")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_test_id("result-count").inner_text().startswith("1 result")
    snippet = page.get_by_test_id("snippet").first
    assert snippet.locator("mark").inner_text().lower() == "wombat"
    assert "stratified by" in snippet.inner_text()

    # A facet value narrows the search to itself; "remove" widens it again.
    page.get_by_test_id("facet-zone").get_by_role("link").first.click()
    page.wait_for_url(re.compile(r".*[?&]zone=.*"))
    assert page.get_by_text("Filtered by: zone").is_visible()
    assert page.get_by_test_id("result-count").inner_text().startswith("1 result")
    page.get_by_role("link", name="remove").click()
    page.wait_for_url(lambda url: "zone=" not in url)
    assert page.get_by_text("Filtered by").count() == 0
    assert page.get_by_test_id("result-count").inner_text().startswith("1 result")

    # Every earlier version stays downloadable after a new version.
    page.get_by_test_id("hits").get_by_role("link").first.click()
    new = tmp_path / "Protocol_v4.pdf"
    new.write_bytes(make_pdf("Protocol ONC-301 v4", "Version 4."))
    page.get_by_label("File", exact=True).set_input_files(str(new))
    page.get_by_role("button", name="Upload").click()
    versions = page.get_by_test_id("versions")
    assert versions.locator("tbody tr").count() == 2
    for link in versions.get_by_role("link").all():
        response = page.request.get(live_server.url + link.get_attribute("href"))
        assert response.status == 200 and response.body().startswith(b"%PDF")
