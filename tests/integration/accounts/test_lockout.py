"""Account lockout after consecutive failed sign-ins, and audited unlocking (ACC-5)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import PASSWORD
from tests.integration.accounts.conftest import events_of, post_form, try_sign_in

WRONG = "not-the-password-42"
GENERIC = "Wrong e-mail address or password."
LOCKED = "This account is locked"


def _lock(client, user, attempts: int = 5) -> None:
    for _ in range(attempts):
        body = try_sign_in(client, user.email, WRONG).get_data(as_text=True)
        assert GENERIC in body
        assert LOCKED not in body  # the lock is never told to someone without the password


@pytest.mark.req("ACC-5")
def test_five_failures_lock_the_account_and_the_right_password_then_fails(world, client, svc):
    user = world.user("tmf_specialist")
    _lock(client, user)
    response = try_sign_in(client, user.email, PASSWORD)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert LOCKED in body
    assert "ask them to unlock it" in body
    assert client.get("/").status_code == 302  # still signed out
    # A wrong password on a locked account gets the same answer as an unknown account.
    assert LOCKED not in try_sign_in(client, user.email, WRONG).get_data(as_text=True)


@pytest.mark.req("ACC-5")
@pytest.mark.req("AUD-1")
def test_failures_and_the_lock_are_audited_and_administrators_are_told(world, client, svc):
    admin = world.user("admin", email="alex.admin@example.org")
    user = world.user("qc_reviewer", name="Quinn Reviewer")
    _lock(client, user)
    failed = [e for e in events_of(svc, "user", user.id) if e.type == "user.login_failed"]
    assert len(failed) == 5
    assert '"locked":true' in failed[-1].payload and '"failed_logins":5' in failed[-1].payload
    assert all(e.client_addr == "127.0.0.1" for e in failed)
    mails = [m for m in svc.mailer.sent if "locked" in m.subject]
    assert len(mails) == 1
    assert mails[0].to == (admin.email,)
    assert "Quinn Reviewer" in mails[0].subject and user.email in mails[0].body


@pytest.mark.req("ACC-5")
def test_a_success_before_the_limit_resets_the_count(world, client, login):
    user = world.user("monitor")
    _lock(client, user, attempts=4)
    login(user)
    post_form(client, "/logout")
    _lock(client, user, attempts=4)
    assert client.get("/").status_code == 302
    login(user)  # four more failures did not lock: the count restarted


@pytest.mark.req("ACC-5")
@pytest.mark.req("AUD-1")
def test_administrator_unlocks_with_a_reason_and_the_user_signs_in(world, app, svc, login):
    admin = world.user("admin")
    user = world.user("investigator", site="101")
    _lock(app.test_client(), user)
    admin_client = login(admin)
    page = admin_client.get("/admin/locked").get_data(as_text=True)
    assert user.email in page
    # No reason: refused, still locked.
    refused = post_form(admin_client, f"/admin/users/{user.id}/unlock",
                        {"version": _version(svc, user.id), "reason": ""}, page="/admin/locked")
    assert refused.status_code == 400
    assert "A reason is required" in refused.get_data(as_text=True)
    done = post_form(admin_client, f"/admin/users/{user.id}/unlock",
                     {"version": _version(svc, user.id), "reason": "Phoned the user",
                      "back": "locked"}, page="/admin/locked")
    assert done.status_code == 302
    assert user.email not in admin_client.get("/admin/locked").get_data(as_text=True)
    unlocked = events_of(svc, "user", user.id)[-1]
    assert unlocked.type == "user.unlocked"
    assert unlocked.reason == "Phoned the user"
    assert unlocked.actor_id == admin.id
    fresh = app.test_client()
    assert try_sign_in(fresh, user.email).status_code == 302


def test_unknown_account_failures_are_logged_not_stored_as_events(world, client, svc, caplog):
    from etmf.audit.service import event_count

    with svc.db.read_session() as s:
        before = event_count(s)
    with caplog.at_level(logging.WARNING, logger="etmf.security"):
        body = try_sign_in(client, "nobody@example.org", PASSWORD).get_data(as_text=True)
    assert GENERIC in body
    assert any("unknown account" in r.getMessage() for r in caplog.records)
    assert not any("nobody@example.org" in r.getMessage() for r in caplog.records)
    with svc.db.read_session() as s:
        assert event_count(s) == before


def _version(svc, user_id: int) -> int:
    from etmf.accounts.models import User

    with svc.db.read_session() as s:
        return s.get(User, user_id).version


def test_passwords_are_stored_as_argon2id_at_the_recommended_cost(world, svc):
    from etmf.accounts.models import User

    user = world.user("monitor")
    with svc.db.read_session() as s:
        stored = s.get(User, user.id).password
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored
