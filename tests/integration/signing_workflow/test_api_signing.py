"""Signing through the JSON API: with a personal API token or the browser session, the
password (and TOTP code where enrolled) is still required in the body of every signature."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD

from .conftest import events_of, login_as, version_count


def _token(world, user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from etmf.accounts.services import create_api_token

    with world.uow(user.name, user.id) as uow:
        token = create_api_token(uow, user.id, "signing-ci", 30)
        uow.commit()
    return {"Authorization": f"Bearer {token}"}


def _url(request_id: int) -> str:
    return f"/api/v1/signatures/requests/{request_id}/sign"


@pytest.mark.req("SIG-4")
@pytest.mark.req("SIG-5")
def test_a_token_signs_only_with_the_password_in_the_body(app, world, svc, team, approved_doc,
                                                         sequential_request):
    client, auth = app.test_client(), _token(world, team.investigator)
    url = _url(sequential_request)
    before = version_count(svc, approved_doc)

    refusals = [
        ({"confirm": True}, 400, "Enter your password to sign"),
        ({"password": "wrong-password-1", "confirm": True}, 401, "Nothing was signed"),
        ({"password": PASSWORD}, 400, "Confirm the meaning"),
        ({"password": PASSWORD, "confirm": True, "signer_id": team.manager.id}, 400,
         "you always sign as yourself"),
        ({"password": 123456, "confirm": True}, 400, "must be strings"),
    ]
    for body, status, words in refusals:
        response = client.post(url, json=body, headers=auth)
        assert response.status_code == status, (body, response.get_json())
        assert words in response.get_json()["error"]["message"]
    assert client.post(url, data="password=x", headers=auth).status_code == 400
    anonymous = client.post(url, json={"password": PASSWORD, "confirm": True})
    assert anonymous.status_code in (400, 401)  # no token: a session call without CSRF
    assert version_count(svc, approved_doc) == before
    assert events_of(svc, "signature.applied") == []
    assert len(events_of(svc, "signature.auth_failed")) == 1

    # The next signer may not sign before the investigator, token or not.
    early = client.post(url, json={"password": PASSWORD, "confirm": True},
                        headers=_token(world, team.manager))
    assert early.status_code == 409
    assert "Dr Irene Investigator signs before you" in early.get_json()["error"]["message"]

    ok = client.post(url, json={"password": PASSWORD, "confirm": True}, headers=auth)
    assert ok.status_code == 201, ok.get_json()
    body = ok.get_json()
    assert (body["document_id"], body["version"]) == (approved_doc, before + 1)
    assert (body["meaning"], body["level"]) == ("Investigator attestation", "PAdES B-B")
    (applied,) = events_of(svc, "signature.applied")
    assert applied.actor_id == team.investigator.id
    assert json.loads(applied.payload)["auth_method"] == "password"


def test_a_session_also_needs_the_password_and_a_csrf_token(app, svc, team, approved_doc,
                                                            sequential_request):
    client = login_as(app, team.investigator)
    url = _url(sequential_request)
    no_csrf = client.post(url, json={"password": PASSWORD, "confirm": True})
    assert no_csrf.status_code in (400, 403)
    html = client.get(f"/signatures/requests/{sequential_request}/sign").get_data(as_text=True)
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    headers = {"X-CSRFToken": csrf}
    missing = client.post(url, json={"confirm": True}, headers=headers)
    assert missing.status_code == 400
    assert events_of(svc, "signature.applied") == []
    ok = client.post(url, json={"password": PASSWORD, "confirm": True}, headers=headers)
    assert ok.status_code == 201, ok.get_json()


def test_someone_who_cannot_see_the_request_gets_404(app, world, team, sequential_request):
    outsider = world.user("investigator", site="201", name="Dr Other Site")
    response = app.test_client().post(_url(sequential_request),
                                      json={"password": PASSWORD, "confirm": True},
                                      headers=_token(world, outsider))
    assert response.status_code == 404


def test_the_operation_is_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/signatures/requests/{request_id}/sign"]["post"]
    assert operation["operationId"] == "signRequest"
    assert "password" in operation["requestBody"]["content"]["application/json"]["schema"][
        "required"]
