"""Fixtures for the signature workflow: enrolled signers, an approved PDF, a request."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from etmf.audit.models import Event
from etmf.documents.models import DocumentVersion
from tests.conftest import User, World


@dataclass
class Team:
    admin: User
    manager: User
    qc: User
    investigator: User


def enrol(world: World, svc, admin: User, user: User) -> None:  # type: ignore[no-untyped-def]
    """Identity verified by the administrator, statement accepted by the user (SIG-8)."""
    from etmf.signing.service import accept_statement, record_identity_check

    with world.uow(admin.name, admin.id) as uow:
        record_identity_check(uow, svc, world.access(admin), user.id, method="in_person",
                              document_seen="Passport P1234567")
        uow.commit()
    with world.uow(user.name, user.id) as uow:
        accept_statement(uow, svc, world.access(user), accepted=True)
        uow.commit()


@pytest.fixture
def team(world: World, svc) -> Team:  # type: ignore[no-untyped-def]
    t = Team(
        admin=world.user("admin", name="Alex Admin"),
        manager=world.user("study_manager", name="Morgan Manager"),
        qc=world.user("qc_reviewer", name="Quinn Reviewer"),
        investigator=world.user("investigator", site="101", name="Dr Irene Investigator"),
    )
    for person in (t.manager, t.qc, t.investigator):
        enrol(world, svc, t.admin, person)
    return t


@pytest.fixture
def approved_doc(world: World, team: Team) -> int:
    return world.document(team.manager, title="Protocol ONC-301 v3", state="approved",
                          qc=team.qc)


def new_request(world: World, svc, by: User, document_id: int,  # type: ignore[no-untyped-def]
                signers: list[tuple[User, str]], ordering: str = "sequential") -> int:
    from etmf.workflows.services import NewSignatureRequest, SignerSpec, request_signatures

    with world.uow(by.name, by.id) as uow:
        request_id = request_signatures(
            uow, world.access(by),
            NewSignatureRequest(document_id=document_id, ordering=ordering,
                                signers=tuple(SignerSpec(u.id, m) for u, m in signers)),
            link=lambda rid: f"http://etmf.test/signatures/requests/{rid}/sign",
            notify=svc.mailer.send)
        uow.commit()
    return request_id


@pytest.fixture
def sequential_request(world: World, svc, team: Team, approved_doc: int) -> int:  # type: ignore[no-untyped-def]
    return new_request(world, svc, team.manager, approved_doc,
                       [(team.investigator, "investigator_attestation"),
                        (team.manager, "approval")])


def csrf(client, path: str) -> str:  # type: ignore[no-untyped-def]
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


def post_sign(client, request_id: int, **fields: str):  # type: ignore[no-untyped-def]
    path = f"/signatures/requests/{request_id}/sign"
    data = {"csrf_token": csrf(client, path), "confirm": "yes", **fields}
    return client.post(path, data=data)


def version_count(svc, document_id: int) -> int:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(DocumentVersion).where(
            DocumentVersion.document_id == document_id)))


def events_of(svc, type_: str) -> list[Event]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return list(s.scalars(select(Event).where(Event.type == type_).order_by(Event.seq)))


def blob_bytes(svc, sha256: str) -> bytes:  # type: ignore[no-untyped-def]
    with svc.blobs.open(sha256) as fh:
        return fh.read()


def pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True, timeout=30).stdout


def login_as(app, user: User, password: str | None = None):  # type: ignore[no-untyped-def]
    """A fresh test client signed in as ``user`` (one client per person)."""
    from tests.conftest import PASSWORD, csrf_from

    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email,
                                           "password": password or PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client
