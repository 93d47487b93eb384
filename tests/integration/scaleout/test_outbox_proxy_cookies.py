"""What several app servers and workers rely on: the durable search outbox, wake-ups through
Redis, client addresses only from trusted proxies, secure cookies."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from etmf.audit.store import Event
from etmf.documents.indexing import drain_outbox, index_after_commit, outbox_size
from etmf.search.base import Scope, SearchQuery

WORKER_MODE = {"jobs_runner": "worker"}


def _found(svc, world, word: str) -> set[int]:  # type: ignore[no-untyped-def]
    scope = Scope(studies={world.study_id: None})
    results = svc.search.search(SearchQuery(text=word, scope=scope))
    return {hit.document_id for hit in results.hits}


@pytest.mark.parametrize("settings_overrides", [WORKER_MODE])
def test_with_workers_a_change_queues_its_document_in_the_same_transaction(
        svc, world, settings_overrides):
    author = world.user("tmf_specialist")
    doc_id = world.document(author, title="Pharmacovigilance plan")

    with world.uow() as uow:  # a command that fails: no outbox row either
        index_after_commit(uow, svc, doc_id)
    assert outbox_size(svc) == 0

    with world.uow() as uow:
        index_after_commit(uow, svc, doc_id)
        uow.commit()
    assert outbox_size(svc) == 1
    assert doc_id not in _found(svc, world, "Pharmacovigilance")  # nobody indexed it yet

    assert drain_outbox(svc) == 1
    assert outbox_size(svc) == 0
    assert doc_id in _found(svc, world, "Pharmacovigilance")
    assert drain_outbox(svc) == 0


@pytest.mark.parametrize("settings_overrides", [WORKER_MODE])
def test_a_worker_run_indexes_the_outbox(app, svc, world, settings_overrides):
    from etmf.jobs import run_pumps

    author = world.user("tmf_specialist")
    ids = [world.document(author, title=f"Monitoring plan {n}") for n in range(3)]
    with world.uow() as uow:
        index_after_commit(uow, svc, *ids)
        uow.commit()
    assert run_pumps(app) == 3
    assert set(ids) <= _found(svc, world, "Monitoring")


@pytest.mark.parametrize("settings_overrides",
                         [{**WORKER_MODE, "redis_url": "redis://127.0.0.1:6379/0"}])
def test_queued_work_wakes_a_waiting_worker_through_redis(svc, settings_overrides):
    from etmf.jobs.wake import Waiter, notify_workers

    waiter = Waiter(svc)
    try:
        woke = threading.Event()
        stop = threading.Event()

        def wait() -> None:
            waiter.wait(stop, 60)  # a minute unless the message arrives
            woke.set()

        thread = threading.Thread(target=wait)
        thread.start()
        # The subscription is live before the publish (subscribe is synchronous above).
        notify_workers(svc)
        thread.join(30)
        assert woke.is_set()
    finally:
        waiter.close()


@pytest.mark.parametrize("settings_overrides",
                         [{**WORKER_MODE, "redis_url": "redis://127.0.0.1:1/0"}])
def test_a_dead_redis_costs_latency_not_work(app, svc, world, caplog, settings_overrides):
    from etmf.jobs import run_pumps
    from etmf.jobs.wake import Waiter

    author = world.user("tmf_specialist")
    doc_id = world.document(author, title="Vendor qualification")
    with caplog.at_level("WARNING", logger="etmf.jobs"), world.uow() as uow:
        index_after_commit(uow, svc, doc_id)
        uow.commit()  # the wake-up fails after the commit: logged, the command succeeded
    assert "could not wake workers through Redis" in caplog.text
    waiter = Waiter(svc)
    assert waiter.polling  # falls back to polling the database
    waiter.close()
    assert run_pumps(app) == 1  # the work was queued all the same
    assert doc_id in _found(svc, world, "Vendor")


BEHIND_PROXY = {"trusted_proxies": 1, "trusted_proxy_addresses": ("10.0.0.5",),
                "secure_cookies": True}


def _login_events(svc):  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return s.scalars(select(Event).where(Event.type.like("user.login%"))
                         .order_by(Event.seq)).all()


def _sign_in(client, user, environ):  # type: ignore[no-untyped-def]
    from tests.conftest import PASSWORD, csrf_from

    page = client.get("/login", environ_base=environ)
    # Over HTTPS, CSRF protection also checks that the form came from this site.
    return client.post("/login", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": csrf_from(page.get_data(as_text=True))},
                       environ_base=environ, headers={"Referer": "https://localhost/login"})


@pytest.mark.req("AUD-2")
@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
def test_a_forwarded_address_is_believed_only_from_the_proxy(app, svc, world,
                                                             settings_overrides):
    user = world.user("monitor")
    forged = {"REMOTE_ADDR": "192.0.2.10", "HTTP_X_FORWARDED_FOR": "203.0.113.66"}
    assert _sign_in(app.test_client(), user, forged).status_code == 302
    proxied = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.7",
               "HTTP_X_FORWARDED_PROTO": "https"}
    assert _sign_in(app.test_client(), user, proxied).status_code == 302
    addresses = [e.client_addr for e in _login_events(svc)]
    assert addresses[-2:] == ["192.0.2.10", "198.51.100.7"]


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY])
def test_behind_the_proxy_cookies_are_secure_and_httponly_and_hsts_is_sent(
        app, world, settings_overrides):
    user = world.user("monitor")
    proxied = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.7",
               "HTTP_X_FORWARDED_PROTO": "https"}
    response = _sign_in(app.test_client(), user, proxied)
    cookies = [v for k, v in response.headers.items() if k.lower() == "set-cookie"]
    session_cookie = next(c for c in cookies if c.startswith("session="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
