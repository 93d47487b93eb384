"""Sessions end after inactivity (server clock), remember-me is off (ACC-7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.accounts.conftest import events_of, try_sign_in


@pytest.mark.req("ACC-7")
@pytest.mark.req("AUD-1")
def test_a_request_after_fifteen_idle_minutes_signs_out_with_a_message(world, login, clock,
                                                                      svc):
    user = world.user("tmf_specialist")
    client = login(user)
    clock.advance(timedelta(minutes=14))
    assert client.get("/").status_code == 200  # activity restarts the count
    clock.advance(timedelta(minutes=14))
    assert client.get("/").status_code == 200
    clock.advance(timedelta(minutes=15, seconds=1))
    response = client.get(f"/studies/{world.study_id}")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert "signed out after 15 minutes without activity" in client.get("/login").get_data(
        as_text=True)
    assert client.get("/").status_code == 302  # and it stays signed out
    logout = events_of(svc, "user", user.id)[-1]
    assert logout.type == "user.logout" and '"cause":"inactivity"' in logout.payload


@pytest.mark.req("ACC-7")
def test_the_activity_mark_is_renewed_once_a_minute_and_never_extends_the_timeout(
        world, login, clock):
    client = login(world.user("tmf_specialist"))

    def renews_cookie(path: str = "/") -> bool:
        response = client.get(path)
        assert response.status_code == 200
        renewed = any(c.startswith("session=") for c in response.headers.getlist("Set-Cookie"))
        left = int(response.get_data(as_text=True).split('data-seconds-left="')[1]
                   .split('"')[0])
        seconds_left.append(left)
        return renewed

    seconds_left: list[int] = []

    clock.advance(timedelta(seconds=30))
    assert not renews_cookie()  # within the step: the cookie is neither re-signed nor sent
    clock.advance(timedelta(seconds=31))
    assert renews_cookie()  # a minute after the mark: renewed (mark = now)
    clock.advance(timedelta(seconds=50))
    assert not renews_cookie()  # 50 s after the mark
    # The warning script counts from the mark the server counts from.
    assert seconds_left == [15 * 60 - 30, 15 * 60, 15 * 60 - 50]
    # Idle from here: the timeout runs from the mark, 50 s before the last request, so the
    # session ends 14 min 10 s after that request, early by less than a step, never late.
    clock.advance(timedelta(minutes=14, seconds=11))
    response = client.get(f"/studies/{world.study_id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.req("ACC-7")
def test_staying_signed_in_renews_the_mark_at_once(world, login, clock):
    client = login(world.user("monitor"))
    clock.advance(timedelta(seconds=50))
    stay = client.get("/account/keepalive", headers={"Accept": "application/json"})
    assert stay.status_code == 200 and stay.json["seconds_left"] == 15 * 60
    assert any(c.startswith("session=") for c in stay.headers.getlist("Set-Cookie"))
    clock.advance(timedelta(minutes=14, seconds=50))  # 15 min 40 s after sign-in
    assert client.get(f"/studies/{world.study_id}").status_code == 200


@pytest.mark.req("ACC-7")
def test_api_calls_with_an_expired_session_get_json_401(world, login, clock):
    client = login(world.user("monitor"))
    clock.advance(timedelta(minutes=16))
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "without activity" in response.json["error"]["message"]


@pytest.mark.req("ACC-7")
def test_pages_carry_the_warning_script_with_the_configured_timeout(world, login, app):
    html = login(world.user("auditor")).get("/").get_data(as_text=True)
    assert 'src="/static/js/session.js" data-timeout-minutes="15"' in html
    with app.test_client().get("/static/js/session.js") as script:
        assert script.status_code == 200 and b"aria-live" in script.data


@pytest.mark.req("ACC-7")
def test_remember_me_is_off_even_when_asked_for(world, client):
    from tests.conftest import csrf_from

    user = world.user("monitor")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password":
                                           "Correct-Horse-Battery-9", "remember": "y",
                                           "csrf_token": token})
    assert response.status_code == 302
    assert client.get_cookie("remember_token") is None
    assert "Remember" not in client.get("/login").get_data(as_text=True)


def test_a_deactivated_account_gets_the_generic_answer(world, client, app):
    from etmf.accounts.services import deactivate_user

    user = world.user("monitor")
    with world.uow("Admin") as uow:
        deactivate_user(uow, user.id, reason="left the company")
        uow.commit()
    body = try_sign_in(client, user.email).get_data(as_text=True)
    assert "Wrong e-mail address or password." in body
