"""An SSO user signs in through a real OpenID provider, is mapped to investigator on the
study by their groups, opens a signature request, re-enters the password at the provider
and signs; the signature and the audit event name the provider and a fresh auth_time.
Signing out ends the provider session too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from etmf.accounts.models import Membership
from etmf.accounts.models import User as UserRow
from etmf.audit.models import Event
from tests.conftest import User
from tests.fixtures.oidc_provider import RunningProvider, start_provider
from tests.integration.signing_workflow.conftest import enrol, new_request

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    with start_provider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture
def settings_overrides(idp: RunningProvider) -> dict[str, object]:
    return {"oidc_providers_file": str(idp.providers_file)}


def _at_provider(page, idp: RunningProvider, password: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_url(re.compile(re.escape(idp.issuer) + "/interaction/"))
    page.get_by_label("User name").fill("ivy-0001")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


@pytest.mark.req("FR-SSO-1")
@pytest.mark.req("FR-SSO-7")
@pytest.mark.req("FR-SSO-6")
def test_sso_investigator_signs_after_reentering_the_password_at_the_provider(
        world, svc, clock, live_server, page, idp):
    clock.set(datetime.now(UTC).replace(microsecond=0))  # the provider's clock is real
    password = str(idp.user("ivy")["password"])

    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Sign in with Hospital Login").click()
    _at_provider(page, idp, password)
    page.wait_for_url(live_server.url + "/")

    with svc.db.read_session() as s:
        row = s.scalar(select(UserRow).where(UserRow.email == "ivy@hospital.example"))
        roles = [(m.role, m.site_id) for m in s.scalars(
            select(Membership).where(Membership.user_id == row.id))]
    assert roles == [("investigator", world.site_ids["101"])]
    ivy = User(id=row.id, email=row.email, name=row.full_name, role="investigator")
    admin = world.user("admin", name="Alex Admin")
    manager = world.user("study_manager", name="Morgan Manager")
    qc = world.user("qc_reviewer", name="Quinn Reviewer")
    enrol(world, svc, admin, ivy)
    doc = world.document(manager, title="Protocol TST-001 v2", state="approved", qc=qc)
    request_id = new_request(world, svc, manager, doc, [(ivy, "investigator_attestation")])

    page.goto(f"{live_server.url}/signatures/requests/{request_id}/sign")
    assert page.get_by_test_id("signer-name").inner_text() == "Dr Ivy Investigator"
    page.get_by_label(re.compile("legally binding equivalent")).check()
    page.get_by_role("button", name="Re-enter password at Hospital Login and sign").click()
    # The provider asks for the password again although Ivy has a session there.
    _at_provider(page, idp, password)
    page.wait_for_url(f"{live_server.url}/documents/{doc}")
    status = page.get_by_role("status").inner_text()
    assert "You signed this document (Investigator attestation)" in status
    assert "after re-entering your password at Hospital Login" in status
    assert page.get_by_test_id("signature-status").inner_text() == "VALID"

    with svc.db.read_session() as s:
        applied = json.loads(s.scalar(select(Event.payload).where(
            Event.type == "signature.applied")))
    assert applied["auth_method"] == "OIDC:test"
    assert applied["identity_provider"] == "test" and applied["subject"] == "ivy-0001"
    auth_time = datetime.fromisoformat(applied["provider_auth_time"])
    assert abs((clock.now() - auth_time).total_seconds()) <= 120
    report = page.request.get(
        f"{live_server.url}/api/v1/documents/{doc}/versions/2/signatures").json()
    assert report["signatures"][0]["auth_type"] == "OIDC:test"

    # Signing out ends both sessions: the next sign-in asks for the password again.
    page.get_by_role("button", name=re.compile("Sign out")).click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + "/login"))
    page.get_by_role("link", name="Sign in with Hospital Login").click()
    page.wait_for_url(re.compile(re.escape(idp.issuer) + "/interaction/"))
    assert page.get_by_test_id("prompt").inner_text() == "login"
