"""A second factor (TOTP) is required for roles that sign or approve, when configured (ACC-6)."""

from __future__ import annotations

import re

import pyotp
import pytest

from tests.conftest import csrf_from
from tests.integration.accounts.conftest import events_of, try_sign_in

# Flask-Security-Too 5.9's two-factor set-up form still passes SelectField choices as
# tuples, which WTForms 3.3 deprecates; nothing of ours can change that.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Passing SelectField choices as tuples is deprecated:DeprecationWarning")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"require_totp": True}


@pytest.mark.req("ACC-6")
def test_investigator_must_enrol_an_authenticator_and_then_use_it(world, client, svc):
    user = world.user("investigator", site="101")
    response = try_sign_in(client, user.email)
    assert response.status_code == 302
    assert "/tf-setup" in response.headers["Location"]
    assert client.get("/").status_code == 302  # not signed in yet
    page = client.get("/tf-setup").get_data(as_text=True)
    assert "Your role requires a second factor" in page
    page = client.post("/tf-setup", data={"setup": "authenticator",
                                          "csrf_token": csrf_from(page)}).get_data(as_text=True)
    key = re.search(r'data-testid="totp-key">([A-Z2-7-]+)<', page).group(1).replace("-", "")
    wrong = client.post("/tf-validate", data={"code": "000000", "csrf_token": csrf_from(page)})
    assert client.get("/").status_code == 302
    del wrong
    done = client.post("/tf-validate", data={"code": pyotp.TOTP(key).now(),
                                             "csrf_token": csrf_from(page)})
    assert done.status_code == 302
    assert client.get("/").status_code == 200
    types = [e.type for e in events_of(svc, "user", user.id)]
    assert "user.second_factor_changed" in types and "user.login" in types
    assert "user.login_failed" in types  # the wrong code counted towards the lockout


@pytest.mark.req("ACC-6")
def test_roles_that_do_not_sign_need_no_second_factor(world, client):
    user = world.user("monitor")
    response = try_sign_in(client, user.email)
    assert response.status_code == 302 and "/tf-" not in response.headers["Location"]
    assert client.get("/").status_code == 200
