"""The server answers, signs people in, and explains errors in plain words."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, csrf_from


def test_healthz_answers_without_signing_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_each_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "storage": "ok", "search": "ok"}


def test_readyz_says_503_when_storage_is_gone(client, svc):
    import os
    import shutil

    svc.blobs.health()  # the store exists and works …
    for root, dirs, _files in os.walk(svc.settings.blob_path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
    shutil.rmtree(svc.settings.blob_path)
    svc.settings.blob_path.write_text("not a folder")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["checks"]["storage"] != "ok"


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")
    assert len(response.headers["X-Request-Id"]) == 32


def test_pages_need_a_signed_in_user(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_member_signs_in_and_sees_their_study(world, login):
    manager = world.user("study_manager", name="Morgan Manager")
    client = login(manager)
    html = client.get("/").get_data(as_text=True)
    assert "TST-001" in html
    assert "Morgan Manager" in html


@pytest.mark.req("ACC-7")
def test_wrong_password_and_unknown_account_get_the_same_answer(world, client):
    user = world.user("tmf_specialist")
    answers = []
    for email, password in ((user.email, "wrong-password-123"),
                            ("nobody@example.org", PASSWORD)):
        token = csrf_from(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"email": email, "password": password,
                                               "csrf_token": token})
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "Wrong e-mail address or password." in body
        answers.append(body.replace(email, "EMAIL"))
    assert answers[0].count("Wrong e-mail") == answers[1].count("Wrong e-mail")


@pytest.mark.req("ACC-8")
def test_login_without_csrf_token_is_refused(world, client):
    user = world.user("tmf_specialist")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code in (200, 400)
    assert client.get("/").status_code == 302  # still not signed in


def test_unknown_page_says_what_happened_in_words(world, login):
    client = login(world.user("auditor"))
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_api_errors_are_json_with_the_same_information(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    body = response.json["error"]
    assert body["status"] == 404
    assert body["title"] == "Page not found"
    assert body["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.req("ACC-7")
def test_sign_out_ends_the_session_and_the_cookie_cannot_be_replayed(world, login, app):
    client = login(world.user("tmf_specialist"))
    cookie = client.get_cookie("session")
    assert cookie is not None
    saved = cookie.value
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", saved)
    assert replay.get("/").status_code == 302


@pytest.mark.req("AUD-1")
def test_sign_in_and_sign_out_are_audited_with_client_address(world, login, svc):
    from sqlalchemy import select

    from etmf.audit.models import Event

    user = world.user("tmf_specialist")
    client = login(user)
    token = csrf_from(client.get("/").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    with svc.db.read_session() as s:
        events = s.scalars(select(Event).where(Event.stream_type == "user",
                                               Event.stream_id == str(user.id))
                           .order_by(Event.seq)).all()
    types = [e.type for e in events]
    assert types == ["user.created", "user.login", "user.logout"]
    login_event = events[1]
    assert login_event.actor_id == user.id
    assert login_event.actor_name == user.name
    assert login_event.client_addr == "127.0.0.1"
    assert login_event.request_id


def test_shutdown_finishes_the_indexing_before_it_closes_the_pool(app, world):
    """A background thread still working after the pool closed opened connections of its
    own, which nobody closed (a ResourceWarning, at random, in a later test)."""
    from etmf.bootstrap import services, shutdown
    from etmf.documents.indexing import indexing_for

    svc = services(app)
    manager = world.user("study_manager")
    doc_id = world.document(manager, title="Indexed before the pool closes")
    indexing = indexing_for(svc)
    indexing.schedule([doc_id])
    thread = indexing._thread
    assert thread is not None
    shutdown(app)
    assert not thread.is_alive()
    assert "document_indexing" not in svc.extras
    assert svc.db.engine.pool.checkedout() == 0
