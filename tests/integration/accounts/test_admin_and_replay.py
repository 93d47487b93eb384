"""Administration pages change accounts only through events, and the log rebuilds them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import PASSWORD
from tests.integration.accounts.conftest import events_of, post_form, try_sign_in


@pytest.mark.req("ACC-4")
@pytest.mark.req("AUD-1")
def test_administrator_creates_deactivates_and_reactivates_an_account(world, login, app, svc):
    admin = world.user("admin")
    client = login(admin)
    weak = post_form(client, "/admin/users", {"email": "new@example.org", "full_name": "New",
                                              "password": "short"}, page="/admin/users")
    assert weak.status_code == 400 and "not accepted" in weak.get_data(as_text=True)
    created = post_form(client, "/admin/users", {"email": "Nora.New@Example.org",
                                                 "full_name": "Nora New",
                                                 "password": PASSWORD}, page="/admin/users")
    assert created.status_code == 302
    user_id = int(created.headers["Location"].rsplit("/", 1)[1])
    assert "nora.new@example.org" in client.get("/admin/users").get_data(as_text=True)
    version = events_of(svc, "user", user_id)[-1].stream_version
    no_reason = post_form(client, f"/admin/users/{user_id}/deactivate", {"version": version},
                          page="/admin/users")
    assert no_reason.status_code == 400
    done = post_form(client, f"/admin/users/{user_id}/deactivate",
                     {"version": version, "reason": "left the sponsor"}, page="/admin/users")
    assert done.status_code == 302
    assert try_sign_in(app.test_client(), "nora.new@example.org").status_code == 200  # refused
    # Concurrent edit: a form showing the old version gets 409, nothing changes.
    stale = post_form(client, f"/admin/users/{user_id}/reactivate",
                      {"version": version, "reason": "back"}, page="/admin/users")
    assert stale.status_code == 409
    # The e-mail address is never given to another account, not even a deactivated one's.
    again = post_form(client, "/admin/users", {"email": "nora.new@example.org",
                                               "full_name": "Someone Else",
                                               "password": PASSWORD}, page="/admin/users")
    assert again.status_code == 409 and "exists or existed" in again.get_data(as_text=True)
    back = post_form(client, f"/admin/users/{user_id}/reactivate",
                     {"version": version + 1, "reason": "rehired"}, page="/admin/users")
    assert back.status_code == 302
    types = [(e.type, e.reason) for e in events_of(svc, "user", user_id)]
    assert types == [("user.created", None), ("user.deactivated", "left the sponsor"),
                     ("user.reactivated", "rehired")]


@pytest.mark.req("AUD-1")
def test_role_changes_are_events_with_old_and_new_values(world, login, svc):
    admin = world.user("admin")
    user = world.user("monitor", site="101")
    client = login(admin)
    page = f"/admin/users/{user.id}"
    version = events_of(svc, "user", user.id)[-1].stream_version
    assert post_form(client, f"/admin/users/{user.id}/global-roles",
                     {"version": version, "admin": "yes", "reason": "new IT lead"},
                     page=page).status_code == 302
    changed = events_of(svc, "user", user.id)[-1]
    assert changed.type == "user.global_roles_changed"
    assert '"roles":[[],["admin"]]' in changed.payload
    refused = post_form(client, f"/admin/users/{user.id}/memberships",
                        {"study_id": world.study_id, "role": "inspector"}, page=page)
    assert refused.status_code == 400 and "time-limited grant" in refused.get_data(as_text=True)
    granted = post_form(client, f"/admin/users/{user.id}/memberships",
                        {"study_id": world.study_id, "role": "auditor",
                         "site_id": world.site_ids["102"]}, page=page)
    assert granted.status_code == 302
    membership = events_of(svc, "membership", 2)
    assert [e.type for e in membership] == ["membership.granted"]
    assert post_form(client, "/admin/memberships/2/revoke", {"reason": "moved on"},
                     page=page).status_code == 302
    assert [e.type for e in events_of(svc, "membership", 2)] == [
        "membership.granted", "membership.revoked"]
    assert events_of(svc, "membership", 2)[-1].study_id == world.study_id


def test_non_administrators_get_403_on_administration(world, login):
    client = login(world.user("study_manager"))
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "Only administrators" in response.get_data(as_text=True)


@pytest.mark.req("AUD-6")
def test_replaying_the_log_rebuilds_accounts_grants_and_tokens(world, svc, login, clock,
                                                               make_inspector):
    from etmf.accounts.services import (
        create_api_token,
        revoke_api_token,
        revoke_inspection,
        unlock_user,
    )
    from etmf.audit.service import verify_all

    specialist = world.user("tmf_specialist")
    qc = world.user("qc_reviewer")
    doc = world.document(specialist, title="Protocol", state="approved", qc=qc)
    inspector, grant_id = make_inspector(zones=("02",), sites=("101",))
    make_inspector(starts=clock.now() + timedelta(days=5), ends=clock.now() + timedelta(days=6),
                   name="Later Inspector")
    inspector_client = login(inspector)
    assert inspector_client.get(f"/documents/{doc}").status_code == 200
    with world.app.app_context(), world.uow() as uow:
        create_api_token(uow, specialist.id, "kept", 10)
        create_api_token(uow, specialist.id, "revoked", 10)
        uow.commit()
    with world.uow() as uow:
        revoke_api_token(uow, specialist.id, 2)
        revoke_inspection(uow, grant_id, reason="inspection over")
        uow.commit()
    client = world.app.test_client()
    for _ in range(5):
        try_sign_in(client, qc.email, "wrong-password-99")
    with world.uow() as uow:
        unlock_user(uow, qc.id, reason="confirmed by phone")
        uow.commit()
    with svc.db.read_session() as session:
        report = verify_all(session, svc.settings, replay=True)
    assert report.replayed
    assert report.replay_differences == []
