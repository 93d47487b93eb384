"""A person signs in with a browser and sees their studies."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_member_signs_in_and_sees_the_home_page(world, live_server, page):
    manager = world.user("study_manager", name="Morgan Manager")
    page.goto(live_server.url + "/")
    assert page.url.startswith(live_server.url + "/login")
    page.get_by_label("E-mail address").fill(manager.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    assert page.get_by_test_id("signed-in-user").inner_text() == "Morgan Manager"
    assert page.get_by_role("link", name="TST-001").is_visible()
    # Styles are served (a missing asset would leave the page unstyled).
    css = page.evaluate("getComputedStyle(document.querySelector('.topbar')).display")
    assert css == "flex"


def test_wrong_password_shows_a_plain_message_and_stays_signed_out(world, live_server, page):
    user = world.user("tmf_specialist")
    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill("not-the-password-1")
    page.keyboard.press("Enter")
    assert page.get_by_role("alert").inner_text().strip() == "Wrong e-mail address or password."
    page.goto(live_server.url + "/")
    assert "/login" in page.url


def test_specialist_opens_a_study_and_a_document_by_keyboard(world, live_server, page):
    specialist = world.user("tmf_specialist")
    world.document(specialist, title="Protocol version 3")
    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail address").fill(specialist.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("link", name="TST-001").focus()
    page.keyboard.press("Enter")
    page.get_by_role("link", name="All documents").click()
    page.get_by_role("link", name="Protocol version 3").click()
    assert page.get_by_test_id("status").inner_text() == "Draft"
    assert "Protocol version 3.pdf" in page.get_by_test_id("versions").inner_text()
