"""An SSO user signs after re-entering the password at the provider (prompt=login,
max_age=0); a stale auth_time is refused and nothing is signed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from etmf.accounts.models import User as UserRow
from etmf.audit.models import Event
from tests.conftest import User
from tests.fixtures.oidc_provider import sign_in_at_provider
from tests.integration.signing_workflow.conftest import enrol, new_request
from tests.integration.sso.conftest import local, sso_sign_in


def _payloads(svc, type_: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    with svc.db.read_session() as s:
        return [json.loads(e.payload) for e in s.scalars(
            select(Event).where(Event.type == type_).order_by(Event.seq))]


@pytest.fixture
def signing_setup(client, svc, world, idp):  # type: ignore[no-untyped-def]
    """Ivy signs in through the provider (investigator at site 101 by her groups), is
    enrolled, and has a signature request waiting."""
    assert sso_sign_in(client, idp, "ivy").status_code == 302
    with svc.db.read_session() as s:
        row = s.scalar(select(UserRow).where(UserRow.email == "ivy@hospital.example"))
        ivy = User(id=row.id, email=row.email, name=row.full_name, role="investigator")
    admin = world.user("admin", name="Alex Admin")
    manager = world.user("study_manager", name="Morgan Manager")
    qc = world.user("qc_reviewer", name="Quinn Reviewer")
    enrol(world, svc, admin, ivy)
    doc = world.document(manager, title="Protocol TST-001 v2", state="approved", qc=qc)
    request_id = new_request(world, svc, manager, doc, [(ivy, "investigator_attestation")])
    return ivy, doc, request_id


def _start_signing(client, request_id: int):  # type: ignore[no-untyped-def]
    import re

    page = client.get(f"/signatures/requests/{request_id}/sign").get_data(as_text=True)
    assert "Re-enter password at Hospital Login and sign" in page
    assert 'name="password"' not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(f"/signatures/requests/{request_id}/sign/sso",
                       data={"csrf_token": token, "confirm": "yes"})


@pytest.mark.req("FR-SSO-7")
@pytest.mark.req("SIG-4")
def test_sso_user_signs_after_reentering_the_password_at_the_provider(
        client, svc, world, idp, signing_setup):
    ivy, doc, request_id = signing_setup
    response = _start_signing(client, request_id)
    query = parse_qs(urlsplit(response.location).query)
    assert query["prompt"] == ["login"] and query["max_age"] == ["0"]
    assert query["code_challenge_method"] == ["S256"] and query["nonce"]
    user = idp.user("ivy")
    back = sign_in_at_provider(response.location, idp.issuer, str(user["sub"]),
                               str(user["password"]))
    done = client.get(local(back))
    assert done.status_code == 302 and done.location == f"/documents/{doc}"
    (applied,) = _payloads(svc, "signature.applied")
    assert applied["auth_method"] == "OIDC:test"
    assert applied["identity_provider"] == "test" and applied["subject"] == "ivy-0001"
    (reauth,) = _payloads(svc, "user.sso_reauthenticated")
    assert reauth["auth_time"] == applied["provider_auth_time"]
    # Fresh: entered after the first sign-in, within the allowed 120 s of the signature.
    (login,) = _payloads(svc, "user.sso_login")
    auth_time = datetime.fromisoformat(reauth["auth_time"])
    assert auth_time >= datetime.fromisoformat(login["auth_time"])
    assert abs((svc.clock.now() - auth_time).total_seconds()) <= 120
    report = client.get(f"/api/v1/documents/{doc}/versions/2/signatures").get_json()
    (signature,) = report["signatures"]
    assert signature["auth_type"] == "OIDC:test" and signature["status"] == "VALID"
    assert signature["auth_seconds"] <= 120


@pytest.mark.req("FR-SSO-8")
def test_stale_auth_time_is_refused_and_nothing_is_signed(
        client, svc, clock, world, idp, signing_setup):
    ivy, doc, request_id = signing_setup
    response = _start_signing(client, request_id)
    user = idp.user("ivy")
    back = sign_in_at_provider(response.location, idp.issuer, str(user["sub"]),
                               str(user["password"]))
    # The answer arrives 10 minutes after the password was entered (as if the provider had
    # answered from an old session, ignoring prompt=login): too old to sign with.
    clock.advance(timedelta(minutes=10))
    refused = client.get(local(back))
    assert refused.location == f"/signatures/requests/{request_id}/sign"
    page = client.get(refused.location).get_data(as_text=True)
    assert "did not ask for your password again" in page
    assert _payloads(svc, "signature.applied") == []
    (event,) = _payloads(svc, "user.sso_refused")
    assert event["provider"] == "test" and event["request_id"] == request_id
    assert "did not ask for your password again" in event["reason"]


@pytest.mark.req("FR-SSO-8")
def test_reauthentication_as_another_person_is_refused(
        client, svc, world, idp, signing_setup):
    ivy, doc, request_id = signing_setup
    response = _start_signing(client, request_id)
    sam = idp.user("sam")
    back = sign_in_at_provider(response.location, idp.issuer, str(sam["sub"]),
                               str(sam["password"]))
    refused = client.get(local(back))
    page = client.get(refused.location).get_data(as_text=True)
    assert "as a different person" in page
    assert _payloads(svc, "signature.applied") == []


@pytest.mark.req("AUD-6")
def test_replaying_the_log_rebuilds_the_sso_identities(client, svc, world, idp, signing_setup):
    from etmf.audit.service import replay_and_compare
    from etmf.sso.models import SsoIdentity

    with svc.db.read_session() as s:
        assert s.scalars(select(SsoIdentity)).all()
        assert replay_and_compare(s) == []
