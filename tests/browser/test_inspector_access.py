"""An administrator grants an inspector access; the inspector browses and can edit nothing."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.req("ACC-3")
def test_admin_grants_access_and_the_inspector_browses_read_only(world, live_server, page):
    from etmf.accounts.services import NewUser, create_user

    admin = world.user("admin", name="Alex Admin")
    specialist = world.user("tmf_specialist")
    qc = world.user("qc_reviewer")
    doc_id = world.document(specialist, title="Clinical study protocol", state="approved", qc=qc)
    with world.app.app_context(), world.uow() as uow:
        create_user(uow, NewUser(email="ian@agency.example", full_name="Ian Inspector",
                                 password=PASSWORD))
        uow.commit()
    url = live_server.url

    _sign_in(page, url, admin.email)
    page.get_by_role("link", name="Inspector access").click()
    page.get_by_label("Inspector", exact=True).select_option(label="Ian Inspector (ian@agency.example)")
    page.get_by_label("Study", exact=True).select_option(label="TST-001 · Test study")
    page.get_by_label("From (UTC)").fill("2026-11-26T09:00")
    page.get_by_label("To (UTC)").fill("2026-11-27T17:00")
    page.get_by_label("Reason (e.g. the inspection notice)").fill("BfArM notice 77")
    page.get_by_role("button", name="Grant access").click()
    assert "Inspector access granted." in page.get_by_role("status").inner_text()
    row = page.get_by_test_id("grants").get_by_role("row", name=re.compile("Ian Inspector"))
    assert "Active" in row.inner_text() and "2026-11-27 17:00" in row.inner_text()
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, url, "ian@agency.example")
    page.wait_for_url(url + "/")
    page.get_by_role("link", name="TST-001").click()
    page.get_by_role("link", name="All documents").click()
    page.get_by_role("link", name="Clinical study protocol").click()
    assert page.get_by_test_id("status").inner_text() == "Approved"
    main = page.locator("main")
    for name in ("Edit", "Send to QC", "Withdraw", "Upload", "File", "Request signatures"):
        assert main.get_by_role("button", name=re.compile(name)).count() == 0, name
    assert main.get_by_role("link", name=re.compile(r"^(Edit|File)")).count() == 0
    page.goto(f"{url}/documents/{doc_id}/edit")
    assert page.get_by_role("heading", level=1).inner_text() != "Edit document"
    assert "not allowed" in page.locator("main").inner_text().lower() or \
        "no access" in page.locator("main").inner_text().lower()
    page.goto(f"{url}/studies/{world.study_id}/file")
    assert "not allowed" in page.locator("main").inner_text().lower()
