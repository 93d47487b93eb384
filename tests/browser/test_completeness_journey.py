"""A study manager opens the completeness dashboard, clicks the lowest site's bar, lands on
the site's missing documents, files one, and sees the figure change."""

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


@pytest.mark.req("FR-TRACK-2")
def test_manager_drills_down_from_the_lowest_site_bar_and_files_a_missing_document(
        world, live_server, page, tmp_path):
    from etmf.tracking import services as tracking
    from etmf.tracking.services import Scope

    manager = world.user("study_manager", name="Mia Manager")
    qc = world.user("qc_reviewer")
    access = world.access(manager)
    with world.uow(manager.name, manager.id) as uow:
        for site in ("101", "102", "201"):
            for artifact in ("05.02.04", "05.02.08"):
                tracking.add_entry(uow, access, world.study_id,
                                   Scope("site", site_id=world.site_ids[site]), artifact,
                                   milestone="03")
        uow.commit()
    for site in ("101", "201"):  # site 102 has nothing: the lowest bar
        world.document(manager, title=f"PI CV {site}", artifact="05.02.04", level="site",
                       site=site, state="approved", qc=qc)
    cv_file = tmp_path / "cv-102.pdf"
    cv_file.write_bytes(make_pdf("Curriculum vitae of the PI of site 102"))

    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail address").fill(manager.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    page.goto(f"{live_server.url}/studies/{world.study_id}")
    page.get_by_role("link", name="Completeness and expiry").click()
    assert page.get_by_test_id("study-completeness").inner_text() == "33 %"  # 2 of 6
    chart = page.get_by_test_id("site-chart")
    first_bar = chart.locator("a").first  # lowest first
    assert "Site 102" in first_bar.get_attribute("aria-label")
    assert "2 missing" in first_bar.get_attribute("aria-label")
    first_bar.click()
    page.get_by_role("heading", name=re.compile("Expected documents of site 102")).wait_for()
    rows = page.get_by_test_id("entries").locator("tbody tr")
    assert rows.count() == 2
    row = rows.filter(has_text="Principal Investigator Curriculum Vitae")
    row.get_by_label(re.compile("File for Principal Investigator")).set_input_files(str(cv_file))
    row.get_by_label("Document date").fill("2026-11-20")
    row.get_by_role("button", name="Upload and file").click()
    page.get_by_text("Filed Principal Investigator Curriculum Vitae as a draft").wait_for()
    assert page.get_by_test_id("entries").locator("tbody tr").count() == 2  # filed, not approved
    assert page.get_by_test_id("entries").get_by_text("Not approved").count() == 1

    page.get_by_role("link", name="Dashboard").click()
    label = page.get_by_test_id("site-chart").locator("a").first.get_attribute("aria-label")
    assert "Site 102" in label and "1 missing" in label
