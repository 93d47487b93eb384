"""Signing when the signer has an authenticator (TOTP) enrolled: the password AND a current
code are required with every signature; a missing or wrong code signs nothing (SIG-4)."""

from __future__ import annotations

import json
import time
from io import BytesIO

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from etmf.accounts.models import User as UserRow
from tests.conftest import PASSWORD, csrf_from

from .conftest import blob_bytes, events_of, post_sign, version_count

# Flask-Security-Too 5.9's two-factor forms still pass SelectField choices as tuples.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Passing SelectField choices as tuples is deprecated:DeprecationWarning")


def _enrol_authenticator(app, world, user) -> str:  # type: ignore[no-untyped-def]
    """Give ``user`` an authenticator secret, as the two-factor set-up page does."""
    with app.app_context():
        secret = app.extensions["security"].totp_factory.generate_totp_secret()
    with world.uow(user.name, user.id) as uow:
        row = uow.session.get(UserRow, user.id)
        row.tf_primary_method, row.tf_totp_secret = "authenticator", secret
        uow.emit("user", user.id, "user.second_factor_changed",
                 {"fields": ["tf_primary_method", "tf_totp_secret"]})
        uow.commit()
    return secret


def _code(app, secret: str) -> str:  # type: ignore[no-untyped-def]
    with app.app_context():
        return str(app.extensions["security"].totp_factory.generate_totp_password(secret))


def _next_code(app, secret: str) -> str:  # type: ignore[no-untyped-def]
    """The code of the next 30-second step (inside the accepted window): what a signer who
    just used the current code to sign in waits for."""
    with app.app_context():
        factory = app.extensions["security"].totp_factory
        return str(factory._totp.from_source(secret).generate(time.time() + 30).token)


def _sign_in_with_code(app, user, secret: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": token})
    assert "/tf-" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    done = client.post("/tf-validate", data={"code": _code(app, secret),
                                             "csrf_token": csrf_from(page)})
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    assert client.get("/").status_code == 200
    return client


@pytest.mark.req("SIG-4")
def test_with_totp_enrolled_the_code_is_needed_at_every_signature(app, world, svc, team,
                                                                  approved_doc,
                                                                  sequential_request):
    secret = _enrol_authenticator(app, world, team.investigator)
    client = _sign_in_with_code(app, team.investigator, secret)
    before = version_count(svc, approved_doc)

    page = client.get(f"/signatures/requests/{sequential_request}/sign").get_data(as_text=True)
    assert 'name="totp"' in page

    missing = post_sign(client, sequential_request, password=PASSWORD)
    assert missing.status_code == 400
    assert "Enter the code from your authenticator app as well" in missing.get_data(
        as_text=True)
    wrong = post_sign(client, sequential_request, password=PASSWORD, totp="000000")
    assert wrong.status_code == 401
    assert "Nothing was signed" in wrong.get_data(as_text=True)
    no_password = post_sign(client, sequential_request, totp=_code(app, secret))
    assert no_password.status_code == 400
    assert version_count(svc, approved_doc) == before
    assert events_of(svc, "signature.applied") == []
    assert len(events_of(svc, "signature.auth_failed")) == 1  # the wrong code, audited

    ok = post_sign(client, sequential_request, password=PASSWORD,
                   totp=_next_code(app, secret))  # sign-in consumed the current one
    assert ok.status_code == 302, ok.get_data(as_text=True)[:3000]
    (applied,) = events_of(svc, "signature.applied")
    payload = json.loads(applied.payload)
    assert payload["auth_method"] == "password+totp"
    data = blob_bytes(svc, payload["result_sha256"])
    sig = PdfFileReader(BytesIO(data)).embedded_signatures[0].sig_object
    assert str(sig["/Prop_AuthType"]) == "password+totp"


@pytest.mark.req("SIG-4")
def test_an_authenticator_code_works_once(app, world, svc, team, approved_doc,
                                          sequential_request):
    """The code typed to sign in cannot be replayed to sign, and the code a signature used
    cannot be used again, neither to sign nor to sign in (its step is recorded in the log)."""
    secret = _enrol_authenticator(app, world, team.investigator)
    used_at_login = _code(app, secret)
    client = _sign_in_with_code(app, team.investigator, secret)
    replay = post_sign(client, sequential_request, password=PASSWORD, totp=used_at_login)
    assert replay.status_code == 401
    assert "each code works once" in replay.get_data(as_text=True)
    assert events_of(svc, "signature.applied") == []

    fresh = _next_code(app, secret)
    assert post_sign(client, sequential_request, password=PASSWORD,
                     totp=fresh).status_code == 302
    (used,) = events_of(svc, "user.totp_used")
    assert json.loads(used.payload)["purpose"] == "signature"
    with svc.db.read_session() as s:
        assert s.get(UserRow, team.investigator.id).tf_totp_last_step == json.loads(
            used.payload)["step"]

    other = app.test_client()
    token = csrf_from(other.get("/login").get_data(as_text=True))
    response = other.post("/login", data={"email": team.investigator.email,
                                          "password": PASSWORD, "csrf_token": token})
    page = other.get(response.headers["Location"]).get_data(as_text=True)
    again = other.post("/tf-validate", data={"code": fresh, "csrf_token": csrf_from(page)})
    assert "That code is not valid" in again.get_data(as_text=True)
    assert other.get("/").status_code == 302  # not signed in
