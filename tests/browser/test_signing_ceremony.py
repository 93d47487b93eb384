"""An investigator opens a signature request from the e-mail, signs with the password, and
sees the validated signature; the next signer in sequence is then notified."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.integration.signing_workflow.conftest import enrol, new_request

pytestmark = pytest.mark.browser


@pytest.mark.req("SIG-1")
@pytest.mark.req("SIG-4")
@pytest.mark.req("SIG-7")
def test_investigator_signs_from_the_mail_and_the_next_signer_is_notified(
        world, svc, live_server, page):
    admin = world.user("admin", name="Alex Admin")
    manager = world.user("study_manager", name="Morgan Manager")
    qc = world.user("qc_reviewer", name="Quinn Reviewer")
    investigator = world.user("investigator", site="101", name="Dr Irene Investigator")
    for person in (manager, investigator):
        enrol(world, svc, admin, person)
    doc = world.document(manager, title="Protocol ONC-301 v3", state="approved", qc=qc)
    new_request(world, svc, manager, doc, [(investigator, "investigator_attestation"),
                                           (manager, "approval")])
    (mail,) = [m for m in svc.mailer.sent if investigator.email in m.to]
    path = re.search(r"https?://[^/\s]+(/signatures/requests/\d+/sign)", mail.body).group(1)

    page.goto(live_server.url + path)
    page.get_by_label("E-mail address").fill(investigator.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + path)
    assert page.get_by_test_id("meaning").inner_text() == "Investigator attestation"
    assert page.get_by_test_id("signer-name").inner_text() == "Dr Irene Investigator"
    assert page.locator("iframe.pdf").is_visible()
    page.get_by_label(re.compile("legally binding equivalent")).check()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(f"{live_server.url}/documents/{doc}")
    assert "You signed this document (Investigator attestation)" in page.get_by_role(
        "status").inner_text()
    assert page.get_by_test_id("signature-status").inner_text() == "VALID"
    assert page.get_by_test_id("signature-summary").inner_text().startswith(
        "Valid: signed by Dr Irene Investigator on 2026-11-26 09:30 UTC")
    assert any("/signatures/requests/" in m.body for m in svc.mailer.sent
               if manager.email in m.to)
