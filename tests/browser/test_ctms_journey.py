"""CTMS in a real browser: a study manager is refused activating a site and sees exactly the
missing essential documents of the site's EDL; files them, has them approved, and activates
the site. A coordinator consents a subject on an outdated ICF, is refused with the reason,
and succeeds on the version in force."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD, make_pdf
from tests.integration.ctms.conftest import ctms  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

#: Start-up documents the EDL expects at site 102 (artifact number → name in the model).
EXPECTED = {"05.02.02": "Protocol Signature Page", "05.02.08": "Form FDA 1572"}


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


def _expect_site_102_documents(cw) -> None:  # type: ignore[no-untyped-def]
    """The site's EDL: two start-up documents, with placeholders waiting for their files."""
    from etmf.tracking import services as tracking

    site = cw.w.site_ids["102"]
    for artifact in EXPECTED:
        cw.run(tracking.add_entry, cw.w.study_id, tracking.Scope("site", site_id=site),
               artifact, milestone="03")
    cw.run(tracking.create_placeholders, cw.w.study_id, site_id=site)


@pytest.mark.req("FR-CTMS-2")
@pytest.mark.req("FR-CTMS-3")
def test_manager_sees_missing_documents_files_them_and_activates_then_icf_is_checked(
        ctms, world, live_server, page, tmp_path):  # noqa: F811
    _expect_site_102_documents(ctms)
    _sign_in(page, live_server, ctms.manager)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}")
    page.get_by_role("button", name="Initiation site 102").click()
    page.get_by_text("Site 102 is now Initiation.").wait_for()
    page.get_by_role("button", name="Active site 102").click()
    panel = page.get_by_test_id("missing-documents")
    panel.wait_for()
    for name in EXPECTED.values():
        assert f"{name}: missing" in panel.inner_text()
    links = [a.get_attribute("href") for a in panel.get_by_role("link", name="document").all()]
    assert len(links) == 2

    for n, href in enumerate(links):  # upload each expected file and send it to QC
        pdf = tmp_path / f"startup-{n}.pdf"
        pdf.write_bytes(make_pdf(f"Start-up document {n}"))
        page.goto(live_server.url + str(href))
        page.get_by_label("File", exact=True).set_input_files(str(pdf))
        page.get_by_role("button", name="Upload").click()
        page.get_by_text("uploaded as a draft").wait_for()
        page.get_by_role("button", name="Send to QC").click()
        page.get_by_test_id("status").filter(has_text="In QC").wait_for()
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}")
    page.get_by_role("button", name="Active site 102").click()
    panel = page.get_by_test_id("missing-documents")
    panel.wait_for()
    for name in EXPECTED.values():  # filed, but not yet approved
        assert f"{name}: not approved" in panel.inner_text()

    _sign_in(page, live_server, ctms.qc)
    for href in links:
        page.goto(live_server.url + str(href))
        page.get_by_role("button", name="Approve").click()
        page.get_by_test_id("status").filter(has_text="Approved").wait_for()

    _sign_in(page, live_server, ctms.manager)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}")
    page.get_by_role("button", name="Active site 102").click()
    page.get_by_text("Site 102 is now Active.").wait_for()

    _sign_in(page, live_server, ctms.coordinator)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}/subjects")
    page.get_by_label("Subject number").fill("101-042")
    page.get_by_role("button", name="Screen subject").click()
    page.get_by_text("Subject 101-042 is in screening at site 101.").wait_for()
    row = page.locator("tr[data-subject='101-042']")
    row.get_by_label("ICF version").select_option(label="v1.0")
    row.get_by_role("button", name="Record consent for 101-042").click()
    page.get_by_text(re.compile("ICF v1.0 was not the version approved and in force at site "
                                "101")).wait_for()
    row = page.locator("tr[data-subject='101-042']")
    row.get_by_label("ICF version").select_option(label="v2.0")
    row.get_by_role("button", name="Record consent for 101-042").click()
    page.get_by_text("Consent of subject 101-042 on 2026-11-26 is recorded.").wait_for()
    row = page.locator("tr[data-subject='101-042']")
    row.get_by_role("button", name="Record step for 101-042").click()
    page.get_by_text("Subject 101-042 is now Enrolled.").wait_for()
