"""Enrolment (SIG-8), revocation with a published CRL, decline and cancel, the validation
API, and that every signing record is rebuilt from the audit log (AUD-6)."""

from __future__ import annotations

import json

import pytest
from cryptography import x509

from etmf.errors import Conflict, InvalidTransition, ValidationError
from etmf.signing import service as signing
from etmf.signing.models import SigningCertificate, SigningProfile
from etmf.workflows.models import SignatureRequest
from tests.conftest import PASSWORD

from .conftest import events_of, login_as, post_sign, version_count


@pytest.mark.req("SIG-8")
def test_no_certificate_before_identity_check_and_acceptance_then_exactly_one(world, svc):
    admin = world.user("admin", name="Alex Admin")
    user = world.user("investigator", site="101", name="Dr Pat Signer")
    with world.uow(user.name, user.id) as uow, pytest.raises(
            InvalidTransition, match="must verify your identity"):
        signing.accept_statement(uow, svc, world.access(user), accepted=True)
    with world.uow(admin.name, admin.id) as uow:
        assert signing.record_identity_check(
            uow, svc, world.access(admin), user.id, method="video",
            document_seen="ID card 123") is None
        uow.commit()
    with svc.db.read_session() as s:
        assert signing.active_certificate(s, user.id) is None
    with world.uow(user.name, user.id) as uow:
        cert = signing.accept_statement(uow, svc, world.access(user), accepted=True)
        uow.commit()
    assert cert is not None
    with svc.db.read_session() as s:
        p = s.get(SigningProfile, user.id)
        assert p.identity_verified_by_name == "Alex Admin"
        assert "legally binding equivalent of my handwritten signature" in p.accepted_statement
        assert "Dr Pat Signer" in p.accepted_statement
        (issued,) = signing.certificates(s, user.id)
    assert "CN=Dr Pat Signer" in issued.subject
    with world.uow(user.name, user.id) as uow, pytest.raises(
            InvalidTransition, match="already accepted"):
        signing.accept_statement(uow, svc, world.access(user), accepted=True)


@pytest.mark.req("SIG-8")
def test_an_administrator_cannot_verify_their_own_identity(world, svc):
    from etmf.errors import Forbidden

    admin = world.user("admin")
    with world.uow(admin.name, admin.id) as uow, pytest.raises(Forbidden, match="own identity"):
        signing.record_identity_check(uow, svc, world.access(admin), admin.id,
                                      method="in_person", document_seen="Passport")


def test_identity_check_with_missing_or_wrong_fields_is_refused(world, svc):
    admin = world.user("admin")
    user = world.user("investigator", site="101")
    for fields, message in (({"method": "telepathy", "document_seen": "x"}, "not an identity"),
                            ({"method": "in_person", "document_seen": "  "}, "is required")):
        with world.uow(admin.name, admin.id) as uow, pytest.raises(ValidationError,
                                                                   match=message):
            signing.record_identity_check(uow, svc, world.access(admin), user.id, **fields)
    with svc.db.read_session() as s:
        assert s.get(SigningProfile, user.id) is None


def test_a_revoked_certificate_signs_nothing_and_the_crl_lists_it(
        app, world, svc, team, approved_doc, sequential_request, client):
    with svc.db.read_session() as s:
        cert = signing.active_certificate(s, team.investigator.id)
    with world.uow(team.admin.name, team.admin.id) as uow:
        signing.revoke_certificate(uow, svc, world.access(team.admin), cert.id,
                                   reason_code="key_compromise",
                                   reason="Password written on a sticky note")
        uow.commit()
    crl = x509.load_der_x509_crl(client.get("/pki/crl.der").data)
    assert crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16)) is not None
    assert b"BEGIN CERTIFICATE" in client.get("/pki/ca.pem").data
    before = version_count(svc, approved_doc)
    response = post_sign(login_as(app, team.investigator), sequential_request,
                         password=PASSWORD)
    assert response.status_code == 403
    assert "it was revoked" in response.get_data(as_text=True)
    assert version_count(svc, approved_doc) == before
    # A new certificate can then be issued by an administrator.
    with world.uow(team.admin.name, team.admin.id) as uow:
        new = signing.issue_new_certificate(uow, svc, world.access(team.admin),
                                            team.investigator.id)
        uow.commit()
    assert new.serial != cert.serial


def test_revocation_needs_a_reason(world, svc, team):
    from etmf.errors import ReasonRequired

    with svc.db.read_session() as s:
        cert = signing.active_certificate(s, team.qc.id)
    with world.uow(team.admin.name, team.admin.id) as uow, pytest.raises(ReasonRequired):
        signing.revoke_certificate(uow, svc, world.access(team.admin), cert.id,
                                   reason_code="superseded", reason="")
    with svc.db.read_session() as s:
        assert s.get(SigningCertificate, cert.id).revoked_at is None


@pytest.mark.req("FR-SIGN-2")
def test_a_signer_declines_with_a_reason_and_the_requester_is_told(
        app, svc, team, sequential_request):
    client = login_as(app, team.investigator)
    path = f"/signatures/requests/{sequential_request}/sign"
    from .conftest import csrf

    token = csrf(client, path)
    response = client.post(f"/signatures/requests/{sequential_request}/decline",
                           data={"csrf_token": token, "reason": "Wrong site address on p.2"})
    assert response.status_code == 302
    with svc.db.read_session() as s:
        req = s.get(SignatureRequest, sequential_request)
        assert (req.status, req.close_reason) == ("declined", "Wrong site address on p.2")
    assert any("declined" in m.subject and "Wrong site address" in m.body
               for m in svc.mailer.sent if team.manager.email in m.to)
    assert post_sign(client, sequential_request, password=PASSWORD).status_code == 409


@pytest.mark.req("FR-SIGN-2")
def test_cancel_needs_a_reason_and_a_stale_form_gets_409(world, svc, team, sequential_request):
    from etmf.errors import ReasonRequired
    from etmf.workflows.services import cancel

    access = world.access(team.manager)
    with world.uow(team.manager.name, team.manager.id) as uow, pytest.raises(ReasonRequired):
        cancel(uow, access, sequential_request, reason=" ", expected_version=1)
    with world.uow(team.manager.name, team.manager.id) as uow, pytest.raises(Conflict):
        cancel(uow, access, sequential_request, reason="Wrong document", expected_version=0)
    with world.uow(team.manager.name, team.manager.id) as uow:
        cancel(uow, access, sequential_request, reason="Wrong document", expected_version=1)
        uow.commit()
    with svc.db.read_session() as s:
        assert s.get(SignatureRequest, sequential_request).status == "cancelled"


def test_a_second_open_request_on_the_same_document_is_refused(world, svc, team, approved_doc,
                                                               sequential_request):
    from .conftest import new_request

    with pytest.raises(Conflict, match="already has an open signature request"):
        new_request(world, svc, team.manager, approved_doc, [(team.qc, "review")])


def test_request_form_with_bad_input_is_refused_readably(app, team, approved_doc):
    client = login_as(app, team.manager)
    from .conftest import csrf

    path = f"/documents/{approved_doc}/signature-requests/new"
    token = csrf(client, path)
    for data, message in (
            ({"signer_1": "abc", "meaning_1": "review"}, "is not a user of this server"),
            ({}, "Name at least one signer"),
            ({"signer_1": str(team.qc.id), "meaning_1": "blessing"}, "is not a signature meaning"),
            ({"signer_1": str(team.qc.id), "meaning_1": "review", "due_date": "tomorrow"},
             "is not a date"),
            ({"signer_1": str(team.qc.id), "meaning_1": "review", "due_date": "2020-01-01"},
             "is in the past")):
        response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), data


def test_the_api_returns_the_stored_validation_report(app, svc, team, approved_doc,
                                                      sequential_request):
    post_sign(login_as(app, team.investigator), sequential_request, password=PASSWORD)
    client = login_as(app, team.manager)
    body = client.get(f"/api/v1/documents/{approved_doc}/versions/2/signatures").get_json()
    assert body["overall"] == "VALID"
    (sig,) = body["signatures"]
    assert sig["signer_name"] == "Dr Irene Investigator"
    assert sig["meaning"] == "Investigator attestation"
    assert sig["level"] == "PAdES B-B"
    assert sig["signing_time"] == "2026-11-26T09:30:00+00:00"
    # Shown once, validated once: later views reuse the stored result, re-check adds one.
    client.get(f"/documents/{approved_doc}")
    assert len(events_of(svc, "signature.validated")) == 1
    client.get(f"/api/v1/documents/{approved_doc}/versions/2/signatures?recheck=1")
    assert len(events_of(svc, "signature.validated")) == 2
    missing = client.get(f"/api/v1/documents/{approved_doc}/versions/9/signatures")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"


@pytest.mark.req("AUD-6")
def test_replaying_the_log_rebuilds_every_signing_table(app, world, svc, team, approved_doc,
                                                        sequential_request):
    from etmf.audit.service import replay_and_compare

    post_sign(login_as(app, team.investigator), sequential_request, password="wrong-pass-1")
    post_sign(login_as(app, team.investigator), sequential_request, password=PASSWORD)
    login_as(app, team.manager).get(f"/documents/{approved_doc}")
    with svc.db.read_session() as s:
        cert = signing.active_certificate(s, team.qc.id)
    with world.uow(team.admin.name, team.admin.id) as uow:
        signing.revoke_certificate(uow, svc, world.access(team.admin), cert.id,
                                   reason_code="cessation_of_operation", reason="Left")
        uow.commit()
    assert events_of(svc, "signature.validated")
    assert json.loads(events_of(svc, "signature.applied")[0].payload)["level"] == "PAdES B-B"
    with svc.db.read_session() as s:
        assert replay_and_compare(s) == []
