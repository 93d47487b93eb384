"""Scale-out, proven on one machine (issue 15): nginx with TLS in front of two app servers
and two workers on PostgreSQL, Redis and S3; one app server and one worker are killed with
SIGKILL mid-load and started again.

Afterwards: no acknowledged document is lost, every document is searchable, the audit chain
verifies, a write through one server is visible through the other on the next request, a
forged X-Forwarded-For is not believed, and cookies are Secure and HttpOnly.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import PASSWORD, make_pdf, postgres_url
from tests.fixtures.ports import free_port
from tests.fixtures.smtp import smtp_server
from tests.system.cluster import PROXY_SOURCE, Cluster, self_signed

pytestmark = [
    pytest.mark.skipif(not postgres_url(), reason="the scale-out scenario runs on PostgreSQL; "
                       "it runs in the PostgreSQL pass of .ci/run"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/nginx"),
                       reason="nginx is not installed (.ci/run installs it)"),
]

DOCUMENTS = 36
KILL_AFTER, RESTART_AFTER = 12, 24
SEARCH_DEADLINE_S = 60.0


def _env(cluster_root, instance, database_url, bucket) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    env.update({
        "ETMF_INSTANCE_PATH": str(instance),
        "ETMF_DATABASE_URL": database_url,
        "ETMF_STORAGE_BACKEND": "s3",
        "ETMF_S3_BUCKET": bucket.name,
        "ETMF_S3_ENDPOINT_URL": bucket.server.endpoint_url,
        "ETMF_S3_ACCESS_KEY": bucket.store_options()["access_key"],
        "ETMF_S3_SECRET_KEY": bucket.store_options()["secret_key"],
        "ETMF_SEARCH_BACKEND": "postgres",
        "ETMF_JOBS_RUNNER": "worker",
        "ETMF_REDIS_URL": "redis://127.0.0.1:6379/0",
        "ETMF_TRUSTED_PROXIES": "1",
        "ETMF_TRUSTED_PROXY_ADDRESSES": PROXY_SOURCE,
        "ETMF_SECURE_COOKIES": "true",
        "ETMF_LOG_LEVEL": "WARNING",
    })
    return env


@pytest.fixture(scope="module")
def cluster_db(_pg_template):  # type: ignore[no-untyped-def]
    """One migrated PostgreSQL database for the whole module (the cluster is shared)."""
    from sqlalchemy.engine import make_url

    from tests.conftest import _admin_engine

    template = make_url(_pg_template)
    name = f"etmf_cluster_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(postgres_url())  # type: ignore[arg-type]
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
    yield template.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def smtp_sink():  # type: ignore[no-untyped-def]
    """A real SMTP server on loopback (aiosmtpd) that keeps every message."""
    with smtp_server() as sink:
        yield sink


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, cluster_db, moto_server, smtp_sink):  # type: ignore[no-untyped-def]
    """One cluster for the module: starting it costs half a minute on two cores."""
    from tests.fixtures.s3server import create_bucket

    root = tmp_path_factory.mktemp("cluster")
    instance = root / "instance"
    instance.mkdir(parents=True)
    env = _env(root, instance, cluster_db, create_bucket(moto_server, object_lock=True))
    env.update({"ETMF_MAIL_BACKEND": "smtp", "ETMF_SMTP_HOST": "127.0.0.1",
                "ETMF_SMTP_PORT": str(smtp_sink[0].port)})
    cert, _key = self_signed(root)
    c = Cluster(root=root, instance=instance, env=env, app_ports=[free_port(), free_port()],
                proxy_port=free_port(), cert=cert)
    init = c.etmf("init", "--admin-email", "root@example.org", "--admin-name", "Rita Root",
                  "--admin-password", PASSWORD)
    assert init.returncode == 0, init.stdout + init.stderr
    try:
        c.start_app(0)
        c.start_app(1)
        c.start_worker(0)
        c.start_worker(1)
        c.start_nginx()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


def _setup_study(c: Cluster) -> dict[str, object]:
    """A new study, filer and QC reviewer with API tokens, made in-process on the same DB."""
    from etmf import create_app
    from etmf.accounts.services import NewUser, create_api_token, create_user, grant_membership
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.settings import load_settings
    from etmf.studies.services import NewStudy, add_country, add_site, create_study

    app = create_app(load_settings(environ=c.env))
    svc = services(app)
    out: dict[str, object] = {}
    try:
        with app.app_context(), unit_of_work(svc.db, svc.clock, Actor(None, "setup")) as uow:
            tag = uuid.uuid4().hex[:8]
            study = create_study(uow, NewStudy(protocol_number=f"SCL-{tag}", title="Scale-out",
                                               phase="III", sponsor="Sponsor"))
            country = add_country(uow, study_id=study, code="DE", name="Germany")
            add_site(uow, study_id=study, country_id=country, number="101",
                     institution="Charité")
            for role in ("tmf_specialist", "qc_reviewer", "investigator"):
                user = create_user(uow, NewUser(email=f"{role}-{tag}@example.org",
                                                full_name=role.replace("_", " ").title(),
                                                password=PASSWORD))
                grant_membership(uow, user_id=user.id, study_id=study, role=role)
                out[role] = create_api_token(uow, user.id, "load driver", 30)
                out[f"{role}_id"] = user.id
            out["study"] = study
            uow.commit()
    finally:
        svc.db.dispose()
    return out


class Driver:
    """Files, sends to QC and approves documents through the proxy, as API clients do."""

    def __init__(self, c: Cluster, setup: dict[str, object]) -> None:
        self.c = c
        self.study = setup["study"]
        self.filer = {"Authorization": f"Bearer {setup['tmf_specialist']}"}
        self.qc = {"Authorization": f"Bearer {setup['qc_reviewer']}"}
        self.acknowledged: dict[int, str] = {}  # document id → its unique word
        self.approved: set[int] = set()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def _post(self, path: str, headers, **kwargs):  # type: ignore[no-untyped-def]
        """POST through the proxy; a 502/503 (the server died under the request) is tried
        again: the client does not know whether it was done, as in real life."""
        upload = kwargs.pop("upload", None)
        for _attempt in range(20):
            if upload is not None:  # a fresh stream each attempt: the last one was consumed
                kwargs["files"] = {"file": (upload[0], io.BytesIO(upload[1]), "application/pdf")}
            try:
                r = requests.post(self.c.url + path, headers=headers, timeout=60,
                                  verify=str(self.c.cert), **kwargs)
            except requests.ConnectionError:
                time.sleep(0.25)  # the client's back-off while the proxy re-routes
                continue
            if r.status_code in (502, 503, 504):
                time.sleep(0.25)
                continue
            return r
        raise AssertionError(f"{path}: no answer through the proxy after 20 attempts")

    def file_and_approve(self, n: int) -> None:
        word = f"scaleword{n:04d}"
        pdf = make_pdf(f"Site staff signature log {word}", f"Body of {word}.")
        r = self._post(f"/api/v1/studies/{self.study}/documents", self.filer,
                       upload=(f"{word}.pdf", pdf),
                       data={"artifact": "05.02.05", "title": f"Signature log {word}",
                             "level": "trial"})
        if r.status_code != 201:
            with self.lock:
                self.errors.append(f"file {n}: {r.status_code} {r.text[:200]}")
            return
        doc = r.json()
        with self.lock:
            self.acknowledged[doc["id"]] = word
        r = self._post(f"/api/v1/documents/{doc['id']}/transition", self.filer,
                       json={"action": "submit_qc", "expected_version": doc["version"]})
        if r.status_code != 200:
            return  # a retried request after a lost answer: 409, the document stays a draft
        r = self._post(f"/api/v1/documents/{doc['id']}/transition", self.qc,
                       json={"action": "approve", "expected_version": r.json()["version"]})
        if r.status_code == 200:
            with self.lock:
                self.approved.add(doc["id"])


def _search(c: Cluster, token: str, word: str, base: str | None = None) -> set[int]:
    r = requests.get(f"{base or c.url}/api/v1/search", params={"q": word},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30,
                     verify=str(c.cert))
    assert r.status_code == 200, r.text
    return {hit["document_id"] for hit in r.json()["hits"]}


@pytest.mark.req("OPS-1")
def test_killing_an_app_server_and_a_worker_mid_load_loses_nothing(cluster):
    c = cluster
    setup = _setup_study(c)
    driver = Driver(c, setup)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(driver.file_and_approve, n) for n in range(DOCUMENTS)]
        killed = restarted = False
        while not all(f.done() for f in futures):
            acked = len(driver.acknowledged)
            if not killed and acked >= KILL_AFTER:
                c.apps[0].kill()
                c.workers[0].kill()
                killed = True
            if killed and not restarted and acked >= RESTART_AFTER:
                c.start_app(0)
                c.start_worker(0)
                restarted = True
            threading.Event().wait(0.05)
        for f in futures:
            f.result()
    assert killed and restarted
    assert not driver.errors, driver.errors
    assert len(driver.acknowledged) == DOCUMENTS

    # No acknowledged document lost: each one is there, through either app server.
    filer = setup["tmf_specialist"]
    for doc_id in driver.acknowledged:
        for i in (0, 1):
            r = requests.get(f"{c.direct_url(i)}/api/v1/documents/{doc_id}",
                             headers={"Authorization": f"Bearer {filer}"}, timeout=30)
            assert r.status_code == 200, (doc_id, i, r.text)
            if doc_id in driver.approved:
                assert r.json()["status"] == "approved"

    # Every document searchable (the workers drained the outbox, whoever died).
    deadline = time.monotonic() + SEARCH_DEADLINE_S
    missing = dict(driver.acknowledged)
    while missing and time.monotonic() < deadline:
        for doc_id, word in list(missing.items()):
            if doc_id in _search(c, str(filer), word):
                del missing[doc_id]
        if missing:
            threading.Event().wait(0.5)
    assert not missing, f"not searchable within {SEARCH_DEADLINE_S:.0f} s: {missing}"

    # The audit chain verifies, and replaying the log rebuilds the live tables.
    verify = c.etmf("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_write_through_one_server_is_read_through_the_other(cluster):
    c = cluster
    setup = _setup_study(c)
    filer = {"Authorization": f"Bearer {setup['tmf_specialist']}"}
    pdf = make_pdf("Cross-server check", "crossword")
    r = requests.post(f"{c.direct_url(0)}/api/v1/studies/{setup['study']}/documents",
                      headers=filer, timeout=60,
                      files={"file": ("x.pdf", io.BytesIO(pdf), "application/pdf")},
                      data={"artifact": "05.02.05", "title": "Cross-server check"})
    assert r.status_code == 201, r.text
    doc = r.json()
    r = requests.post(f"{c.direct_url(1)}/api/v1/documents/{doc['id']}/transition",
                      headers=filer, json={"action": "submit_qc",
                                           "expected_version": doc["version"]}, timeout=60)
    assert r.status_code == 200, r.text
    seen = requests.get(f"{c.direct_url(0)}/api/v1/documents/{doc['id']}", headers=filer,
                        timeout=30).json()
    assert seen["status"] == "in_qc" and seen["version"] == doc["version"] + 1


def _client_addresses(database_url: str) -> dict[str, list[str | None]]:
    """Client address of every event, by event type."""
    engine = create_engine(database_url)
    out: dict[str, list[str | None]] = {}
    try:
        with engine.connect() as conn:
            for kind, addr in conn.execute(text(
                    "SELECT type, client_addr FROM audit_events ORDER BY seq")):
                out.setdefault(kind, []).append(addr)
    finally:
        engine.dispose()
    return out


def _sign_in(base: str, verify: str, headers: dict[str, str]) -> requests.Response:
    s = requests.Session()
    page = s.get(f"{base}/login", headers=headers, verify=verify, timeout=30)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return s.post(f"{base}/login", verify=verify, timeout=30, allow_redirects=False,
                  headers={**headers, "Referer": f"{base}/login"},
                  data={"email": "root@example.org", "password": PASSWORD,
                        "csrf_token": token.group(1)})


@pytest.mark.req("AUD-2")
def test_forged_forwarded_addresses_are_not_believed_and_cookies_are_secure(cluster,
                                                                             cluster_db):
    c = cluster
    setup = _setup_study(c)
    forged = {"X-Forwarded-For": "203.0.113.66"}
    # Straight to an app server (not the proxy), with a token: the header is dropped.
    pdf = make_pdf("Forged address", "forged")
    r = requests.post(f"{c.direct_url(0)}/api/v1/studies/{setup['study']}/documents",
                      headers={**forged, "Authorization": f"Bearer {setup['tmf_specialist']}"},
                      files={"file": ("x.pdf", io.BytesIO(pdf), "application/pdf")},
                      data={"artifact": "05.02.05", "title": "Forged address"}, timeout=60)
    assert r.status_code == 201, r.text
    # Through nginx, which replaces the header with the address it saw.
    proxied = _sign_in(c.url, str(c.cert), forged)
    assert proxied.status_code == 302, proxied.text[:500]

    addresses = _client_addresses(cluster_db)
    assert addresses["document.filed"][-1] == "127.0.0.1"
    assert addresses["user.login"][-1] == "127.0.0.1"
    assert "203.0.113.66" not in {a for seen in addresses.values() for a in seen}

    cookie = next(v for k, v in proxied.headers.items()
                  if k.lower() == "set-cookie" and v.startswith("session="))
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=")


def _in_process_app(c: Cluster):  # type: ignore[no-untyped-def]
    from etmf import create_app
    from etmf.settings import load_settings

    return create_app(load_settings(environ=c.env))


def _request_signature(c: Cluster, setup: dict[str, object], document_id: int) -> int:
    """The study side, in-process on the same database: enrol the investigator (identity
    check, accepted statement) and ask for a signature due in two days (a reminder threshold).
    """
    from datetime import timedelta

    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.signing.models import SigningProfile
    from etmf.signing.service import accept_statement, record_identity_check
    from etmf.workflows.services import NewSignatureRequest, SignerSpec, request_signatures
    from tests.conftest import User, World

    app = _in_process_app(c)
    svc = services(app)
    world = World(app=app, study_id=int(str(setup["study"])), country_ids={}, site_ids={})
    admin = User(id=1, email="root@example.org", name="Rita Root", role="admin")
    signer = User(id=int(str(setup["investigator_id"])), email="", name="Investigator",
                  role="investigator")
    requester = User(id=int(str(setup["tmf_specialist_id"])), email="",
                     name="Tmf Specialist", role="tmf_specialist")
    try:
        with app.app_context():
            with svc.db.read_session() as s:
                profile = s.get(SigningProfile, signer.id)
                enrolled = profile is not None and profile.accepted_at is not None
            if not enrolled:
                with world.uow(admin.name, admin.id) as uow:
                    record_identity_check(uow, svc, world.access(admin), signer.id,
                                          method="in_person", document_seen="Passport X1")
                    uow.commit()
                with world.uow(signer.name, signer.id) as uow:
                    accept_statement(uow, svc, world.access(signer), accepted=True)
                    uow.commit()
            with unit_of_work(svc.db, svc.clock, Actor(requester.id, requester.name)) as uow:
                request_id = request_signatures(
                    uow, world.access(requester),
                    NewSignatureRequest(document_id=document_id,
                                        signers=(SignerSpec(signer.id,
                                                            "investigator_attestation"),),
                                        due_date=svc.clock.now().date() + timedelta(days=2)),
                    link=lambda rid: f"{c.url}/signatures/requests/{rid}/sign",
                    notify=svc.mailer.send)
                uow.commit()
    finally:
        svc.db.dispose()
    return request_id


def _submit_and_wait(c: Cluster, kind: str, times: int) -> None:
    from etmf import jobs
    from etmf.bootstrap import services
    from etmf.jobs.models import DONE, FAILED

    app = _in_process_app(c)
    try:
        ids = [jobs.submit(app, kind) for _ in range(times)]  # queued; Redis wakes workers
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {jobs.get_job(app, i).status for i in ids}
            if states <= {DONE, FAILED}:
                break
            threading.Event().wait(0.2)
        assert {jobs.get_job(app, i).status for i in ids} == {DONE}
    finally:
        services(app).db.dispose()


@pytest.mark.req("SIG-4")
def test_signing_through_the_proxy_and_one_reminder_per_threshold(cluster, smtp_sink):
    c = cluster
    _controller, sink = smtp_sink
    setup = _setup_study(c)
    driver = Driver(c, setup)
    for n in range(3):
        driver.file_and_approve(1000 + n)
    assert len(driver.approved) == 3, driver.errors
    docs = sorted(driver.approved)
    requests_ = {doc: _request_signature(c, setup, doc) for doc in docs}

    signer = {"Authorization": f"Bearer {setup['investigator']}"}
    for doc in docs[:2]:  # two are signed through the proxy; the third stays pending
        r = driver._post(f"/api/v1/signatures/requests/{requests_[doc]}/sign", signer,
                         json={"password": PASSWORD, "confirm": True})
        assert r.status_code == 201, r.text
        assert r.json()["meaning"] == "Investigator attestation"
        versions = requests.get(f"{c.url}/api/v1/documents/{doc}", headers=signer,
                                timeout=30, verify=str(c.cert)).json()["versions"]
        assert len(versions) == 2  # the signed rendition is a new version

    # Two reminder runs at once, on two workers: the pending signer gets one mail.
    _submit_and_wait(c, "signatures.reminders", times=2)
    reminders = [m for m in sink.messages if b"Subject: Reminder: signature" in m]
    titles = [m for m in reminders if f"scaleword{1000:04d}".encode() in m
              or f"scaleword{1001:04d}".encode() in m or f"scaleword{1002:04d}".encode() in m]
    pending_word = driver.acknowledged[docs[2]].encode()
    assert [m for m in titles if pending_word in m] and len(titles) == 1, titles
