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


def test_every_printed_demo_credential_signs_in(app, live_server, page):
    from etmf.demo import DEMO_PASSWORD, build_demo
    from tests.conftest import csrf_from

    with app.app_context():  # password hashing reads Flask-Security settings
        accounts = build_demo(app)
    assert len(accounts) == 9
    for email, _role in accounts:
        client = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"email": email, "password": DEMO_PASSWORD,
                                               "csrf_token": token})
        assert response.status_code == 302, email
        assert client.get("/").status_code == 200, email
    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail address").fill("manager@etmf-demo.org")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    assert page.get_by_test_id("signed-in-user").inner_text() == "Morgan Manager"
    page.get_by_role("link", name="ONC-301").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("ONC-301")
