"""A Word version is rendered to PDF with LibreOffice headless, filed as a new version that
points to the Word one, and signed; without LibreOffice a PDF rendition must be uploaded."""

from __future__ import annotations

import io
import json

import docx
import pytest

from etmf.documents.models import Document, DocumentVersion
from etmf.errors import ValidationError
from etmf.signing import rendition
from etmf.signing.validation import validate_pdf
from tests.conftest import PASSWORD

from .conftest import (
    blob_bytes,
    csrf,
    events_of,
    login_as,
    new_request,
    pdftotext,
    post_sign,
    version_count,
)

needs_soffice = pytest.mark.skipif(rendition.soffice_path() is None,
                                   reason="LibreOffice (soffice) is not installed")


def _docx(text: str) -> bytes:
    document = docx.Document()
    document.add_heading("Site Signature Log ONC-301", level=1)
    document.add_paragraph(text)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Name", "Role"
    table.cell(1, 0).text, table.cell(1, 1).text = "Dr Irene Investigator", "PI"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _word_doc_in_qc(world, team) -> int:  # type: ignore[no-untyped-def]
    from etmf.documents import services as docs

    stored = world.store_file(_docx("Delegation of duties for site 101."), "log.docx",
                              rendition.DOCX_MIME)
    access = world.access(team.manager)
    with world.uow(team.manager.name, team.manager.id) as uow:
        doc_id = docs.file_document(uow, access, docs.FileDocument(
            study_id=world.study_id, artifact="02.01.02", title="Signature log",
            file=stored))
        docs.transition(uow, access, doc_id, "submit_qc", expected_version=1)
        uow.commit()
    return doc_id


def _versions(svc, document_id: int) -> list[DocumentVersion]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return list(s.query(DocumentVersion).filter_by(document_id=document_id)
                    .order_by(DocumentVersion.number))


@needs_soffice
@pytest.mark.req("SIG-1")
def test_a_word_document_is_rendered_filed_and_signed(app, world, svc, team, tmp_path):
    from etmf.audit.service import replay_and_compare

    doc_id = _word_doc_in_qc(world, team)
    client = login_as(app, team.manager)
    path = f"/documents/{doc_id}/signature-requests/new"
    assert "rendered to PDF with LibreOffice" in client.get(path).get_data(as_text=True)
    response = client.post(path, data={"csrf_token": csrf(client, path),
                                       "signer_1": str(team.manager.id),
                                       "meaning_1": "review", "ordering": "sequential"})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]

    word, pdf = _versions(svc, doc_id)
    assert (word.mime, word.status) == (rendition.DOCX_MIME, "superseded")
    assert (pdf.mime, pdf.status, pdf.filename) == ("application/pdf", "in_qc", "log.pdf")
    assert pdf.signed_from_version_id is None
    assert f"PDF rendition of version {word.number} (log.docx)" in pdf.note
    (filed,) = events_of(svc, "signature.rendition_filed")
    data = json.loads(filed.payload)
    assert (data["version_id"], data["rendered_from_version_id"]) == (pdf.id, word.id)
    assert data["rendered_from_sha256"] == word.sha256
    assert data["converter"].startswith("LibreOffice")
    (created,) = events_of(svc, "signature_request.created")
    assert json.loads(created.payload)["version_id"] == pdf.id
    rendered = tmp_path / "rendered.pdf"
    rendered.write_bytes(blob_bytes(svc, pdf.sha256))
    assert "Delegation of duties for site 101." in pdftotext(rendered)

    signed = post_sign(client, int(created.stream_id), password=PASSWORD)
    assert signed.status_code == 302, signed.get_data(as_text=True)[:3000]
    *_, result = _versions(svc, doc_id)
    assert result.signed_from_version_id == pdf.id
    data = blob_bytes(svc, result.sha256)
    (report,) = validate_pdf(data, [svc_ca(svc)])
    assert report.intact and report.meaning == "Review"
    out = tmp_path / "signed.pdf"
    out.write_bytes(data)
    text = " ".join(pdftotext(out).split())
    assert "Delegation of duties for site 101." in text
    assert "Electronically signed by: Morgan Manager" in text
    with svc.db.read_session() as s:
        assert s.get(Document, doc_id).current_version_id == result.id
        assert replay_and_compare(s) == []


def svc_ca(svc):  # type: ignore[no-untyped-def]
    from etmf.signing import pki

    return pki.authority(svc).certificate


def test_without_libreoffice_a_pdf_rendition_is_asked_for(app, world, svc, team, monkeypatch):
    monkeypatch.setattr(rendition.shutil, "which", lambda name: None)
    doc_id = _word_doc_in_qc(world, team)
    before = version_count(svc, doc_id)
    client = login_as(app, team.manager)
    path = f"/documents/{doc_id}/signature-requests/new"
    page = client.get(path).get_data(as_text=True)
    assert "has no LibreOffice to render it: upload a PDF rendition" in page
    response = client.post(path, data={"csrf_token": csrf(client, path),
                                       "signer_1": str(team.manager.id), "meaning_1": "review"})
    assert response.status_code == 400
    assert "upload a PDF rendition as a new version" in response.get_data(as_text=True)
    with pytest.raises(ValidationError, match="upload a PDF rendition"):
        new_request(world, svc, team.manager, doc_id, [(team.manager, "review")])
    assert version_count(svc, doc_id) == before
    assert events_of(svc, "signature_request.created") == []


@needs_soffice
def test_a_conversion_that_runs_too_long_is_stopped_with_a_clear_message():
    with pytest.raises(rendition.RenditionFailed, match="did not finish .* within 0 seconds"):
        rendition.word_to_pdf(_docx("Slow"), timeout=0)
