"""Sign-in through a real OpenID provider: provisioning, role mapping, allowed domains,
ID token checks (nonce, audience, expiry, signature), local passwords off, sign-out."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from etmf.accounts.models import Membership, User
from etmf.audit.models import Event
from etmf.sso.config import ProviderConfig
from etmf.sso.oidc import OidcProvider, check_claims
from etmf.sso.provider import SsoRefused
from tests.conftest import PASSWORD, csrf_from
from tests.fixtures.oidc_provider import CLIENT_ID, sign_in_at_provider
from tests.integration.sso.conftest import local, sso_sign_in


def _events(svc, type_: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """Payloads of the events of one type, oldest first."""
    with svc.db.read_session() as s:
        return [json.loads(e.payload) for e in s.scalars(
            select(Event).where(Event.type == type_).order_by(Event.seq))]


def _current(svc, user_id: int) -> list[Membership]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return list(s.scalars(select(Membership).where(Membership.user_id == user_id,
                                                       Membership.revoked_at.is_(None))))


def _user(svc, email: str) -> User | None:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return s.scalar(select(User).where(User.email == email))


@pytest.mark.req("FR-SSO-1")
@pytest.mark.req("FR-SSO-2")
def test_sso_user_is_provisioned_and_mapped_to_investigator(client, svc, world, idp):
    response = sso_sign_in(client, idp, "ivy")
    assert response.status_code == 302 and response.location == "/"
    user = _user(svc, "ivy@hospital.example")
    assert user is not None and user.full_name == "Dr Ivy Investigator"
    assert user.password is None  # no local password: this account signs in at the provider
    with svc.db.read_session() as s:
        (membership,) = s.scalars(select(Membership).where(Membership.user_id == user.id))
        assert (membership.role, membership.study_id, membership.site_id) == (
            "investigator", world.study_id, world.site_ids["101"])
    (login,) = _events(svc, "user.sso_login")
    assert login["provider"] == "test" and login["subject"] == "ivy-0001"
    assert login["roles_granted"] == ["TST-001/investigator/101"]
    assert client.get("/").status_code == 200  # signed in here

    # A second sign-in finds the same account and grants nothing twice.
    client2 = client.application.test_client()
    assert sso_sign_in(client2, idp, "ivy").status_code == 302
    assert len(_events(svc, "user.created")) == 1 + 0
    assert _events(svc, "user.sso_login")[-1]["roles_granted"] == []


@pytest.mark.req("FR-SSO-3")
def test_user_whose_domain_is_not_allowed_gets_no_account(client, svc, world, idp):
    response = sso_sign_in(client, idp, "omar")
    assert response.status_code == 302 and response.location.endswith("/login")
    assert _user(svc, "omar@elsewhere.example") is None
    page = client.get("/login").get_data(as_text=True)
    assert "elsewhere.example cannot be used through Hospital Login" in page
    assert _events(svc, "user.sso_linked") == []


@pytest.mark.req("FR-SSO-4")
def test_answer_with_a_wrong_nonce_is_refused(client, svc, world, idp):
    start = client.get("/sso/test/login")
    with client.session_transaction() as session:
        pending = session["etmf_sso_pending"]
        pending["nonce"] = "not-the-nonce-we-sent"
        session["etmf_sso_pending"] = pending
    user = idp.user("ivy")
    back = sign_in_at_provider(start.location, idp.issuer, str(user["sub"]),
                               str(user["password"]))
    response = client.get(local(back))
    assert response.location.endswith("/login")
    assert "its nonce does not match" in client.get("/login").get_data(as_text=True)
    assert _user(svc, "ivy@hospital.example") is None


def _real_id_token(client, idp) -> str:  # type: ignore[no-untyped-def]
    assert sso_sign_in(client, idp, "sam").status_code == 302
    with client.session_transaction() as session:
        return str(session["etmf_sso"]["hint"])


def _provider(idp, **changes: object) -> OidcProvider:  # type: ignore[no-untyped-def]
    values: dict[str, object] = {"name": "test", "label": "Hospital Login",
                                 "issuer": idp.issuer, "client_id": CLIENT_ID}
    return OidcProvider(ProviderConfig(**{**values, **changes}))  # type: ignore[arg-type]



@pytest.mark.req("FR-SSO-4")
def test_real_id_token_for_another_audience_or_expired_or_other_nonce_is_refused(
        client, clock, world, idp):
    token = _real_id_token(client, idp)
    provider = _provider(idp)
    keys = provider.keys()
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    now = clock.now()
    # The genuine token passes with the right audience, nonce and time...
    assert provider.validate_id_token(token, nonce=claims["nonce"], now=now)["sub"] == "sam-0002"
    # ...and is refused for another client, once expired, and for another sign-in.
    with pytest.raises(SsoRefused, match="is meant for 'etmf', not for this server"):
        _provider(idp, client_id="another-client").validate_id_token(
            token, nonce=claims["nonce"], now=now)
    with pytest.raises(SsoRefused, match="it has expired"):
        provider.validate_id_token(token, nonce=claims["nonce"],
                                   now=now + timedelta(hours=2))
    with pytest.raises(SsoRefused, match="nonce does not match"):
        provider.validate_id_token(token, nonce="another-sign-in", now=now)
    with pytest.raises(SsoRefused, match="issued by"):
        _provider(idp, issuer="http://127.0.0.1:1").validate_id_token(
            token, nonce=claims["nonce"], now=now, keys=keys)


@pytest.mark.req("FR-SSO-4")
def test_token_signed_with_a_key_the_provider_does_not_publish_is_refused(world, clock, idp):
    provider = _provider(idp)
    forger = RSAKey.generate_key(2048, parameters={"kid": "forged"})
    now = int(clock.now().timestamp())
    forged = jwt.encode({"alg": "RS256", "kid": "forged"}, {
        "iss": idp.issuer, "aud": CLIENT_ID, "sub": "ivy-0001", "nonce": "n",
        "iat": now, "exp": now + 300, "email": "ivy@hospital.example"}, forger)
    with pytest.raises(SsoRefused, match="signature does not verify"):
        provider.validate_id_token(forged, nonce="n", now=clock.now())
    # The same claims under a key we trust pass: the refusal above was the signature.
    trusted = KeySet([forger])
    assert provider.validate_id_token(forged, nonce="n", now=clock.now(), keys=trusted)
    with pytest.raises(SsoRefused, match="is meant for"):
        check_claims(provider.config, {"iss": idp.issuer, "aud": "x", "sub": "s",
                                       "nonce": "n", "iat": now, "exp": now + 60},
                     nonce="n", now=clock.now())


@pytest.mark.req("FR-SSO-5")
def test_local_password_is_refused_for_a_domain_that_signs_in_with_sso(
        client, svc, world, idp):
    person = world.user("qc_reviewer", email="quinn@hospital.example")
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Hospital Login" in page
    response = client.post("/login", data={"email": person.email, "password": PASSWORD,
                                           "csrf_token": csrf_from(page)})
    assert response.status_code == 302 and response.location.endswith("/login")
    assert "sign in with Hospital Login, not with a password" in client.get(
        "/login").get_data(as_text=True)
    assert client.get("/").status_code == 302  # still signed out


@pytest.mark.req("FR-SSO-6")
def test_sign_out_ends_the_local_and_the_provider_session(client, svc, world, idp):
    sso_sign_in(client, idp, "sam")
    page = client.get("/").get_data(as_text=True)
    response = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    target = urlsplit(response.location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == idp.issuer + "/session/end"
    query = parse_qs(target.query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/login"]
    assert query["id_token_hint"][0].count(".") == 2
    assert client.get("/").status_code == 302  # the local session is over
    assert _events(svc, "user.logout")


@pytest.mark.req("FR-SSO-2")
def test_role_from_a_group_is_revoked_when_the_group_goes_away(client, svc, world, idp):
    """The provider's groups claim is the source of truth for the roles it granted: at the
    next sign-in without the group, that role is revoked (audited, with a reason); a role an
    administrator granted to the same person stays."""
    from etmf.accounts.services import grant_membership
    from etmf.sso.config import load_providers
    from etmf.sso.provider import Identity
    from etmf.sso.services import sign_in

    assert sso_sign_in(client, idp, "ivy").status_code == 302
    user = _user(svc, "ivy@hospital.example")
    assert user is not None
    with world.uow() as uow:  # an administrator adds a role by hand
        manual = grant_membership(uow, user_id=user.id, study_id=world.study_id,
                                  role="qc_reviewer")
        uow.commit()

    (config,) = load_providers(idp.providers_file)
    person = idp.user("ivy")
    without_group = Identity(provider=config.name, subject=str(person["sub"]),
                             email=str(person["email"]), name=str(person["name"]),
                             groups=(), auth_time=None)
    with world.uow("Ivy at sign-in") as uow:
        assert sign_in(uow, config, without_group) == user.id
        uow.commit()

    with svc.db.read_session() as s:
        roles = {(m.role, m.revoked_at is None, m.granted_via) for m in s.scalars(
            select(Membership).where(Membership.user_id == user.id))}
    assert roles == {("investigator", False, "sso:test"), ("qc_reviewer", True, None)}
    assert manual in {m.id for m in _current(svc, user.id)}
    last = _events(svc, "user.sso_login")[-1]
    assert last["roles_granted"] == []
    assert last["roles_revoked"] == ["TST-001/investigator/101"]
    (revoked,) = _events(svc, "membership.revoked")
    assert revoked["role"] == "investigator" and revoked["site_id"] == world.site_ids["101"]
    with svc.db.read_session() as s:
        event = s.scalars(select(Event).where(Event.type == "membership.revoked")).one()
        assert "no group of the person at hospital login" in (event.reason or "").lower()

    # The group comes back: the role is granted again, not the revoked row revived.
    with world.uow("Ivy at sign-in") as uow:
        sign_in(uow, config, Identity(provider=config.name, subject=str(person["sub"]),
                                      email=str(person["email"]), name=str(person["name"]),
                                      groups=("etmf:TST-001:investigator",), auth_time=None))
        uow.commit()
    assert _events(svc, "user.sso_login")[-1]["roles_granted"] == ["TST-001/investigator/101"]
    assert sorted(m.role for m in _current(svc, user.id)) == ["investigator", "qc_reviewer"]

    admin = world.user("admin")
    admin_client = client.application.test_client()
    token = csrf_from(admin_client.get("/login").get_data(as_text=True))
    assert admin_client.post("/login", data={"email": admin.email, "password": PASSWORD,
                                             "csrf_token": token}).status_code == 302
    page = admin_client.get(f"/admin/users/{user.id}")
    assert page.status_code == 200
    assert "from the test identity provider" in page.get_data(as_text=True)
