"""Shared fixtures: an app per test on SQLite (or PostgreSQL when ETMF_TEST_DATABASE_URL is
set), factories for studies, users and documents, a frozen clock, and a network guard.

Isolation: SQLite tests copy a database migrated once per session; PostgreSQL tests get a
database of their own cloned from a migrated template (``CREATE DATABASE … TEMPLATE``).
Both run the real Alembic migrations, triggers included.
"""

from __future__ import annotations

import io
import ipaddress
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

pytest_plugins = ["tests.fixtures.s3server", "tests.fixtures.browser"]

PASSWORD = "Correct-Horse-Battery-9"
FROZEN_AT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


# ---- network guard ------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(address: object) -> None:
    if not isinstance(address, tuple):  # unix sockets
        return
    host = str(address[0])
    if host in ("localhost", ""):
        return
    try:
        if ipaddress.ip_address(host.split("%")[0]).is_loopback:
            return
    except ValueError:
        pass
    raise RuntimeError(f"test tried to reach {host}: only loopback is allowed in tests")


@pytest.fixture(autouse=True)
def _network_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(self: socket.socket, address: object) -> None:
        _loopback_only(address)
        return _real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        _loopback_only(address)
        return _real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


# ---- databases ----------------------------------------------------------------------------


def postgres_url() -> str | None:
    return os.environ.get("ETMF_TEST_DATABASE_URL") or None


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    # NullPool: every connection is closed when released, none is left for the GC to find.
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database used as the template of each test's database."""
    url = postgres_url()
    if url is None:
        yield None
        return
    from etmf import migrate
    from etmf.db import Database
    from etmf.settings import load_settings

    base = make_url(url)
    name = f"etmf_tpl_{_worker()}_{os.getpid()}"
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {base.render_as_string(hide_password=True)} "
                    f"is unreachable: {exc}")
    tpl_url = base.set(database=name).render_as_string(hide_password=False)
    settings = load_settings(overrides={"database_url": tpl_url, "instance_path": "/tmp"},
                             environ={})
    db = Database(settings)
    migrate.upgrade(db.engine)
    db.dispose()
    yield tpl_url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from etmf import migrate

    path = tmp_path_factory.mktemp("sqlite-template") / "etmf.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path,
    _pg_template: str | None,
) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if _pg_template is None:
        target = tmp_path / "instance" / "etmf.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    tpl = make_url(_pg_template)
    name = f"etmf_t_{_worker()}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(postgres_url())  # type: ignore[arg-type]
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl.database}"'))
    yield tpl.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# ---- the app ------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for its apps."""
    return {}


@pytest.fixture
def app(tmp_path: Path, database_url: str, settings_overrides: dict[str, object]) -> Iterator[Flask]:
    from etmf import create_app
    from etmf.bootstrap import services, shutdown
    from etmf.clock import FrozenClock
    from etmf.keys import ensure_system_keys
    from etmf.settings import load_settings

    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    settings = load_settings(
        overrides={"instance_path": str(instance), "database_url": database_url,
                   "testing": True, "log_level": "WARNING", "jobs_runner": "inline",
                   **settings_overrides},
        environ={},
    )
    app = create_app(settings)
    svc = services(app)
    svc.clock = FrozenClock(FROZEN_AT)
    ensure_system_keys(svc.settings)
    yield app
    shutdown(app)


@pytest.fixture
def svc(app: Flask):  # type: ignore[no-untyped-def]
    from etmf.bootstrap import services

    return services(app)


@pytest.fixture
def clock(svc):  # type: ignore[no-untyped-def]
    return svc.clock


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# ---- factories ----------------------------------------------------------------------------


@dataclass
class World:
    """A small study with two countries and three sites, built through the services."""

    app: Flask
    study_id: int
    country_ids: dict[str, int]
    site_ids: dict[str, int]

    def uow(self, actor_name: str = "test setup", actor_id: int | None = None):  # type: ignore[no-untyped-def]
        from etmf.audit.store import Actor, unit_of_work
        from etmf.bootstrap import services

        svc = services(self.app)
        return unit_of_work(svc.db, svc.clock, Actor(actor_id, actor_name))

    def user(self, role: str, *, site: str | None = None, email: str | None = None,
             name: str | None = None, study_id: int | None = None) -> User:
        from etmf.accounts.services import NewUser, create_user, grant_membership

        email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.org"
        name = name or f"{role.replace('_', ' ').title()} Person"
        # Password hashing reads Flask-Security's settings: it needs an app context, which
        # must not stay pushed (requests would then share its `g`).
        with self.app.app_context(), self.uow() as uow:
            user = create_user(uow, NewUser(email=email, full_name=name, password=PASSWORD,
                                            global_roles=("admin",) if role == "admin" else ()))
            if role != "admin":
                grant_membership(uow, user_id=user.id, study_id=study_id or self.study_id,
                                 role=role, site_id=self.site_ids[site] if site else None)
            uow.commit()
        return User(id=user.id, email=email, name=name, role=role)

    def access(self, user: User):  # type: ignore[no-untyped-def]
        from sqlalchemy import select

        from etmf.accounts.access import Access, Grant
        from etmf.accounts.models import Membership
        from etmf.bootstrap import services

        with services(self.app).db.read_session() as s:
            grants = tuple(Grant(m.study_id, m.site_id, m.role) for m in s.scalars(
                select(Membership).where(Membership.user_id == user.id,
                                         Membership.revoked_at.is_(None))))
        return Access(user_id=user.id, name=user.name, is_admin=user.role == "admin",
                      grants=grants)

    def store_file(self, content: bytes, filename: str = "doc.pdf",
                   mime: str = "application/pdf"):  # type: ignore[no-untyped-def]
        from etmf.bootstrap import services
        from etmf.documents.services import StoredFile

        ref = services(self.app).blobs.put(io.BytesIO(content))
        return StoredFile(sha256=ref.sha256, size=ref.size, mime=mime, filename=filename)

    def document(self, by: User, *, title: str = "Protocol v1", artifact: str = "02.01.02",
                 level: str = "trial", site: str | None = None,
                 content: bytes | None = None, document_date: date | None = None,
                 state: str = "draft", qc: User | None = None,
                 expiry_date: date | None = None, person: str | None = None) -> int:
        from etmf.documents import services as docs
        from etmf.documents.lifecycle import Action

        content = content or make_pdf(title)
        stored = self.store_file(content, filename=f"{title}.pdf")
        access = self.access(by)
        with self.uow(by.name, by.id) as uow:
            doc_id = docs.file_document(uow, access, docs.FileDocument(
                study_id=self.study_id, artifact=artifact, title=title, file=stored,
                level=level, site_id=self.site_ids[site] if site else None,
                document_date=document_date, expiry_date=expiry_date, person=person))
            uow.commit()
        if state in ("in_qc", "approved"):
            with self.uow(by.name, by.id) as uow:
                docs.transition(uow, access, doc_id, Action.SUBMIT_QC, expected_version=1)
                uow.commit()
        if state == "approved":
            assert qc is not None, "approving needs a qc user"
            with self.uow(qc.name, qc.id) as uow:
                docs.transition(uow, self.access(qc), doc_id, Action.APPROVE,
                                expected_version=2)
                uow.commit()
        return doc_id


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    role: str


def make_pdf(title: str, body: str = "Body text of the test document.") -> bytes:
    from etmf.demo import make_pdf as _make_pdf

    return _make_pdf(title, body)


@pytest.fixture
def world(app: Flask) -> Iterator[World]:
    from etmf.studies.services import NewStudy, add_country, add_site, create_study

    w = World(app=app, study_id=0, country_ids={}, site_ids={})
    with w.uow() as uow:
        w.study_id = create_study(uow, NewStudy(protocol_number="TST-001",
                                                title="Test study", phase="II",
                                                sponsor="Test Sponsor"))
        for code, name in (("DE", "Germany"), ("FR", "France")):
            w.country_ids[code] = add_country(uow, study_id=w.study_id, code=code, name=name)
        for number, code in (("101", "DE"), ("102", "DE"), ("201", "FR")):
            w.site_ids[number] = add_site(uow, study_id=w.study_id,
                                          country_id=w.country_ids[code], number=number,
                                          institution=f"Hospital {number}")
        uow.commit()
    yield w


@pytest.fixture
def login(client: FlaskClient) -> Callable[[User], FlaskClient]:
    def _login(user: User, password: str = PASSWORD) -> FlaskClient:
        page = client.get("/login")
        token = csrf_from(page.get_data(as_text=True))
        response = client.post("/login", data={"email": user.email, "password": password,
                                               "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return _login


def csrf_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
