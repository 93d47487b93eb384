"""The signing ceremony: re-authentication at every signature, the signer is always the
signed-in user, order and authority are enforced, and what is printed is what is recorded."""

from __future__ import annotations

import json
from io import BytesIO

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from etmf.accounts.models import User as UserRow
from etmf.documents.models import Document, DocumentVersion
from etmf.signing.validation import validate_pdf
from etmf.workflows.models import SignatureRequest
from tests.conftest import FROZEN_AT, PASSWORD

from .conftest import (
    blob_bytes,
    events_of,
    login_as,
    new_request,
    pdftotext,
    post_sign,
    version_count,
)


def _current(svc, document_id: int) -> DocumentVersion:
    with svc.db.read_session() as s:
        doc = s.get(Document, document_id)
        return s.get(DocumentVersion, doc.current_version_id)


@pytest.mark.req("SIG-1")
@pytest.mark.req("SIG-2")
@pytest.mark.req("SIG-4")
def test_signed_pdf_shows_name_utc_time_and_meaning_as_recorded(
        app, svc, team, approved_doc, sequential_request, tmp_path):
    original = _current(svc, approved_doc)
    client = login_as(app, team.investigator)
    response = post_sign(client, sequential_request, password=PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]

    signed = _current(svc, approved_doc)
    assert signed.signed_from_version_id == original.id
    assert signed.number == original.number + 1
    data = blob_bytes(svc, signed.sha256)
    path = tmp_path / "signed.pdf"
    path.write_bytes(data)
    text = " ".join(pdftotext(path).split())
    assert "Electronically signed by: Dr Irene Investigator" in text
    assert "Date and time: 2026-11-26 09:30:00 UTC" in text
    assert "Meaning: Investigator attestation" in text

    sig = PdfFileReader(BytesIO(data)).embedded_signatures[0].sig_object
    assert str(sig["/Name"]) == "Dr Irene Investigator"
    assert str(sig["/Reason"]) == "Investigator attestation"
    assert str(sig["/M"]).startswith("D:20261126093000")
    assert str(sig["/Prop_AuthType"]) == "password"
    assert int(sig["/Prop_AuthTime"]) == 0

    (event,) = events_of(svc, "signature.applied")
    payload = json.loads(event.payload)
    assert payload["printed_name"] == "Dr Irene Investigator"
    assert payload["meaning_text"] == "Investigator attestation"
    assert payload["signed_at"] == FROZEN_AT.isoformat()
    assert payload["result_sha256"] == signed.sha256
    assert payload["signed_sha256"] == original.sha256
    assert event.actor_id == team.investigator.id


def _refused(svc, approved_doc, before: int) -> None:
    assert version_count(svc, approved_doc) == before
    assert events_of(svc, "signature.applied") == []


@pytest.mark.req("SIG-4")
def test_a_signed_in_session_without_the_password_signs_nothing(
        app, svc, team, approved_doc, sequential_request):
    client = login_as(app, team.investigator)
    before = version_count(svc, approved_doc)
    response = post_sign(client, sequential_request)
    assert response.status_code == 400
    assert "Enter your password to sign" in response.get_data(as_text=True)
    _refused(svc, approved_doc, before)


@pytest.mark.req("SIG-4")
@pytest.mark.req("ACC-5")
def test_a_wrong_password_signs_nothing_counts_toward_lockout_and_is_audited(
        app, svc, team, approved_doc, sequential_request):
    client = login_as(app, team.investigator)
    before = version_count(svc, approved_doc)
    response = post_sign(client, sequential_request, password="not-my-password-1")
    assert response.status_code == 401
    assert "Nothing was signed" in response.get_data(as_text=True)
    _refused(svc, approved_doc, before)
    (failed,) = events_of(svc, "signature.auth_failed")
    assert failed.actor_id == team.investigator.id
    assert json.loads(failed.payload)["request_id"] == sequential_request
    with svc.db.read_session() as s:
        assert s.get(UserRow, team.investigator.id).failed_logins == 1


@pytest.mark.req("ACC-5")
def test_repeated_wrong_passwords_at_signing_lock_the_account(
        app, svc, team, approved_doc, sequential_request):
    client = login_as(app, team.investigator)
    for _ in range(svc.settings.lockout_attempts):
        post_sign(client, sequential_request, password="not-my-password-1")
    with svc.db.read_session() as s:
        assert s.get(UserRow, team.investigator.id).locked_at is not None


@pytest.mark.req("SIG-5")
@pytest.mark.parametrize("field", ["user_id", "signer", "email", "on_behalf_of"])
def test_a_parameter_naming_a_signer_is_refused(app, svc, team, approved_doc,
                                                 sequential_request, field):
    client = login_as(app, team.manager)  # manager tries to sign as the investigator
    before = version_count(svc, approved_doc)
    response = post_sign(client, sequential_request, password=PASSWORD,
                         **{field: str(team.investigator.id)})
    assert response.status_code == 400
    assert "you always sign as yourself" in response.get_data(as_text=True)
    _refused(svc, approved_doc, before)


@pytest.mark.req("SIG-5")
def test_someone_who_is_not_a_signer_cannot_sign(app, svc, team, approved_doc,
                                                  sequential_request):
    client = login_as(app, team.qc)
    before = version_count(svc, approved_doc)
    response = client.post(f"/signatures/requests/{sequential_request}/sign",
                           data={"password": PASSWORD, "confirm": "yes"})
    # Not a signer and no right to request signatures: the request is hidden from them.
    assert response.status_code in (400, 404)
    _refused(svc, approved_doc, before)


@pytest.mark.req("SIG-7")
def test_signing_out_of_order_is_refused_with_who_signs_first(app, svc, team, approved_doc,
                                                              sequential_request):
    client = login_as(app, team.manager)
    before = version_count(svc, approved_doc)
    response = post_sign(client, sequential_request, password=PASSWORD)
    assert response.status_code == 409
    assert ("It is not your turn to sign yet: Dr Irene Investigator signs before you"
            in response.get_data(as_text=True))
    _refused(svc, approved_doc, before)


@pytest.mark.req("SIG-6")
def test_a_draft_cannot_be_sent_for_signature(world, svc, team):
    from etmf.errors import InvalidTransition

    draft = world.document(team.manager, title="Draft plan")
    with pytest.raises(InvalidTransition, match="only documents In QC or Approved"):
        new_request(world, svc, team.manager, draft, [(team.investigator, "review")])


@pytest.mark.req("SIG-6")
def test_a_request_is_not_signable_once_its_document_is_withdrawn(
        app, world, svc, team, approved_doc, sequential_request):
    from etmf.documents import services as docs

    with world.uow(team.manager.name, team.manager.id) as uow:
        doc = uow.session.get(Document, approved_doc)
        docs.transition(uow, world.access(team.manager), approved_doc, "withdraw",
                        expected_version=doc.version, reason="Replaced by v4")
        uow.commit()
    client = login_as(app, team.investigator)
    before = version_count(svc, approved_doc)
    response = post_sign(client, sequential_request, password=PASSWORD)
    assert response.status_code == 409
    assert "only documents In QC or Approved can be signed" in response.get_data(as_text=True)
    _refused(svc, approved_doc, before)


@pytest.mark.req("SIG-6")
def test_a_role_without_signing_rights_cannot_be_named(world, svc, team, approved_doc):
    from etmf.errors import Forbidden

    monitor = world.user("monitor", site="101", name="Mona Monitor")
    with pytest.raises(Forbidden, match="Mona Monitor has no signing rights"):
        new_request(world, svc, team.manager, approved_doc, [(monitor, "review")])


@pytest.mark.req("SIG-6")
def test_a_meaning_the_role_does_not_allow_is_refused(world, svc, team, approved_doc):
    from etmf.errors import Forbidden

    with pytest.raises(Forbidden, match="may not sign with the meaning “Approval”"):
        new_request(world, svc, team.manager, approved_doc, [(team.investigator, "approval")])


@pytest.mark.req("SIG-6")
def test_an_investigator_of_another_site_cannot_sign_a_site_document(world, svc, team):
    from etmf.errors import Forbidden

    doc = world.document(team.manager, title="Site 102 log", level="site", site="102",
                         state="approved", qc=team.qc)
    with pytest.raises(Forbidden, match="no signing rights"):
        new_request(world, svc, team.manager, doc, [(team.investigator, "review")])


@pytest.mark.req("FR-SIGN-1")
@pytest.mark.req("SIG-3")
@pytest.mark.req("SIG-7")
def test_next_signer_is_notified_and_signs_incrementally_keeping_the_first_valid(
        app, svc, team, approved_doc, sequential_request):
    from etmf.signing import pki

    original = _current(svc, approved_doc)
    post_sign(login_as(app, team.investigator), sequential_request, password=PASSWORD)
    mails = [m for m in svc.mailer.sent if team.manager.email in m.to]
    assert mails and f"/signatures/requests/{sequential_request}/sign" in mails[-1].body
    first = _current(svc, approved_doc)
    response = post_sign(login_as(app, team.manager), sequential_request, password=PASSWORD)
    assert response.status_code == 302
    second = _current(svc, approved_doc)
    assert second.signed_from_version_id == first.id
    assert first.signed_from_version_id == original.id
    assert len({original.sha256, first.sha256, second.sha256}) == 3

    roots = pki.trust_roots(svc)
    reports = validate_pdf(blob_bytes(svc, second.sha256), roots, now=FROZEN_AT)
    assert [(r.signer_name, r.status) for r in reports] == [
        ("Dr Irene Investigator", "VALID"), ("Morgan Manager", "VALID")]
    # Each version holds exactly the signatures made up to it; none inherits later ones.
    assert validate_pdf(blob_bytes(svc, original.sha256), roots, now=FROZEN_AT) == []
    assert len(validate_pdf(blob_bytes(svc, first.sha256), roots, now=FROZEN_AT)) == 1
    with svc.db.read_session() as s:
        assert s.get(SignatureRequest, sequential_request).status == "completed"
        statuses = dict(s.execute(select(DocumentVersion.number, DocumentVersion.status).where(
            DocumentVersion.document_id == approved_doc)).all())
    assert statuses == {1: "superseded", 2: "superseded", 3: "approved"}
    assert any("completed" in m.subject for m in svc.mailer.sent
               if team.manager.email in m.to)


@pytest.mark.req("FR-SIGN-3")
@pytest.mark.req("SIG-9")
def test_without_a_tsa_the_document_page_says_b_b_and_valid(app, svc, team, approved_doc,
                                                            sequential_request):
    post_sign(login_as(app, team.investigator), sequential_request, password=PASSWORD)
    page = login_as(app, team.manager).get(f"/documents/{approved_doc}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "PAdES B-B" in html
    assert "Valid: signed by Dr Irene Investigator on 2026-11-26 09:30 UTC" in html
    assert ">VALID<" in html


@pytest.mark.req("SIG-8")
def test_a_signer_whose_identity_was_never_verified_cannot_sign(app, world, svc, team,
                                                                approved_doc):
    newcomer = world.user("investigator", site="101", name="Dr New Comer")
    request_id = new_request(world, svc, team.manager, approved_doc,
                             [(newcomer, "investigator_attestation")])
    before = version_count(svc, approved_doc)
    response = post_sign(login_as(app, newcomer), request_id, password=PASSWORD)
    assert response.status_code == 403
    assert "an administrator must first record that your identity was verified" in \
        response.get_data(as_text=True)
    _refused(svc, approved_doc, before)


def test_a_word_document_is_refused_with_a_clear_message(world, svc, team, monkeypatch):
    from etmf.demo import make_docx
    from etmf.signing import rendition

    monkeypatch.setattr(rendition, "soffice_path", lambda: None)  # no LibreOffice here
    from etmf.documents import services as docs
    from etmf.errors import ValidationError

    stored = world.store_file(make_docx("Plan", "Body"), "plan.docx",
                              "application/vnd.openxmlformats-officedocument"
                              ".wordprocessingml.document")
    access = world.access(team.manager)
    with world.uow(team.manager.name, team.manager.id) as uow:
        doc_id = docs.file_document(uow, access, docs.FileDocument(
            study_id=world.study_id, artifact="02.01.02", title="Plan", file=stored))
        docs.transition(uow, access, doc_id, "submit_qc", expected_version=1)
        uow.commit()
    with pytest.raises(ValidationError, match="upload a PDF rendition"):
        new_request(world, svc, team.manager, doc_id, [(team.qc, "review")])


@pytest.mark.req("FR-SIGN-1")
def test_parallel_signers_are_all_notified_at_once_and_sign_in_any_order(
        world, app, svc, team, approved_doc):
    svc.mailer.sent.clear()
    request_id = new_request(world, svc, team.manager, approved_doc,
                             [(team.manager, "approval"), (team.investigator,
                                                           "investigator_attestation")],
                             ordering="parallel")
    told = {to for m in svc.mailer.sent if "Signature requested" in m.subject for to in m.to}
    assert told == {team.manager.email, team.investigator.email}
    link = f"/signatures/requests/{request_id}/sign"
    assert all(link in m.body for m in svc.mailer.sent if "Signature requested" in m.subject)
    # The second-named signer signs first: no order is imposed.
    assert post_sign(login_as(app, team.investigator), request_id,
                     password=PASSWORD).status_code == 302
    assert post_sign(login_as(app, team.manager), request_id,
                     password=PASSWORD).status_code == 302
    with svc.db.read_session() as s:
        request = s.get(SignatureRequest, request_id)
        assert request.status == "completed"
        assert [(x.printed_name, x.meaning) for x in request.signers] == [
            ("Morgan Manager", "approval"),
            ("Dr Irene Investigator", "investigator_attestation")]


@pytest.mark.req("SIG-10")
def test_the_printed_signed_record_shows_every_signature_manifestation(
        app, svc, team, approved_doc, sequential_request, tmp_path):
    import subprocess

    post_sign(login_as(app, team.investigator), sequential_request, password=PASSWORD)
    post_sign(login_as(app, team.manager), sequential_request, password=PASSWORD)
    signed = _current(svc, approved_doc)
    data = blob_bytes(svc, signed.sha256)

    # Every stamp is an annotation flagged Print, and neither Hidden nor NoView.
    from pypdf import PdfReader

    widgets = [annot.get_object() for page in PdfReader(BytesIO(data)).pages
               for annot in page.get("/Annots") or ()
               if annot.get_object().get("/FT") == "/Sig"]
    assert len(widgets) == 2
    for widget in widgets:
        flags = int(widget.get("/F", 0))
        assert flags & 4 and not flags & (2 | 32), flags

    # Print it (poppler renders in printing mode for PDF output) and read what was printed.
    source = tmp_path / "signed.pdf"
    source.write_bytes(data)
    printed = tmp_path / "printed.pdf"
    subprocess.run(["pdftocairo", "-pdf", str(source), str(printed)], check=True,
                   capture_output=True, timeout=60)
    text = " ".join(pdftotext(printed).split())
    for name, meaning in (("Dr Irene Investigator", "Investigator attestation"),
                          ("Morgan Manager", "Approval")):
        assert f"Electronically signed by: {name}" in text
        assert f"Meaning: {meaning}" in text
    assert text.count("Date and time: 2026-11-26 09:30:00 UTC") == 2
    # The downloaded copy a user prints is the signed record itself, byte for byte.
    download = login_as(app, team.qc).get(
        f"/documents/{approved_doc}/versions/{signed.number}/download")
    assert download.status_code == 200 and download.data == data
