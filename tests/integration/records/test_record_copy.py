"""A complete copy of one record (REC-2): metadata, every version byte for byte, every
signature validated and the audit trail, readable (PDF) and electronic (JSON), checkable."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile

import pytest
from sqlalchemy import select

from etmf.audit.models import Event
from etmf.documents.models import DocumentVersion
from tests.conftest import PASSWORD, csrf_from, make_pdf
from tests.integration.records.conftest import flip_stored_byte
from tests.integration.signing_workflow.conftest import (
    enrol,
    login_as,
    new_request,
    post_sign,
)


@pytest.fixture
def signed_record(world, svc, app):  # type: ignore[no-untyped-def]
    """An approved protocol, its metadata corrected with a reason, then signed."""
    admin = world.user("admin", name="Alex Admin")
    manager = world.user("study_manager", name="Morgan Manager")
    qc = world.user("qc_reviewer", name="Quinn Reviewer")
    enrol(world, svc, admin, manager)
    doc_id = world.document(manager, title="Protocol ONC-301 v3", state="approved", qc=qc,
                            content=make_pdf("Protocol", "Randomised, double-blind."))
    client = login_as(app, manager)
    page = client.get(f"/documents/{doc_id}/edit").get_data(as_text=True)
    assert client.post(f"/documents/{doc_id}/edit", data={
        "csrf_token": csrf_from(page), "version": "3", "title": "Protocol ONC-301 v3.0",
        "reason": "Version number as on the cover page"}).status_code == 302
    request_id = new_request(world, svc, manager, doc_id, [(manager, "approval")])
    assert post_sign(client, request_id, password=PASSWORD).status_code == 302
    return doc_id, manager, client


def _pdftotext(data: bytes, tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "record.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return " ".join(out.split())


@pytest.mark.req("REC-2")
def test_a_record_is_copied_with_metadata_versions_signatures_and_audit_trail(
        signed_record, svc, tmp_path):
    doc_id, manager, client = signed_record
    response = client.get(f"/documents/{doc_id}/copy")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert f"record-TST-001-{doc_id}-" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    assert {"record.json", "record.pdf", "SHA256SUMS"} <= names

    # Every file of the copy is listed with its checksum, and matches it.
    sums = archive.read("SHA256SUMS").decode("ascii").splitlines()
    assert len(sums) == len(names) - 1
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name

    # Electronic form: metadata, each version byte for byte, signatures, audit trail.
    record = json.loads(archive.read("record.json"))
    assert record["format"] == "etmf-record-export-v1"
    assert record["exported_by"] == "Morgan Manager"
    meta = record["document"]
    assert (meta["study"], meta["title"], meta["artifact_number"], meta["status"]) == (
        "TST-001", "Protocol ONC-301 v3.0", "02.01.02", "approved")
    with svc.db.read_session() as s:
        stored = {v.number: v.sha256 for v in s.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id == doc_id))}
    assert {v["number"]: v["sha256"] for v in record["versions"]} == stored
    for v in record["versions"]:
        assert hashlib.sha256(archive.read(v["file"])).hexdigest() == v["sha256"]
    signed = next(v for v in record["versions"] if v["signed_from_version"] == 1)
    assert signed["current"] and signed["number"] == 2
    [signatures] = record["signatures"]
    assert (signatures["version"], signatures["overall"]) == (2, "VALID")
    [sig] = signatures["signatures"]
    assert (sig["signer_name"], sig["meaning"], sig["status"]) == (
        "Morgan Manager", "Approval", "VALID")
    types = [e["type"] for e in record["audit_trail"]]
    for expected in ("document.filed", "document.transitioned", "document.metadata_changed",
                     "signature_request.created", "signature.applied",
                     "document.version_added"):
        assert expected in types, expected
    with svc.db.read_session() as s:
        hashes = {e.seq: e.hash for e in s.scalars(select(Event))}
    assert all(hashes[e["seq"]] == e["hash"] for e in record["audit_trail"])
    changed = next(e for e in record["audit_trail"] if e["type"] == "document.metadata_changed")
    assert changed["reason"] == "Version number as on the cover page"
    assert changed["occurred_at"].endswith("+00:00")

    # Human-readable form: the same facts in a PDF.
    text = _pdftotext(archive.read("record.pdf"), tmp_path)
    assert "Record copy: Protocol ONC-301 v3.0" in text
    assert "02.01.02" in text and "All times are UTC" in text
    for sha in stored.values():  # printed in two halves, to fit the column
        assert f"{sha[:32]} {sha[32:]}" in text
    assert "Morgan Manager" in text and "Approval" in text and "VALID" in text
    assert "Protocol ONC-301 v3 → Protocol ONC-301 v3.0" in text
    assert "Version number as on the cover page" in text


@pytest.mark.req("REC-2")
@pytest.mark.req("REC-1")
def test_no_copy_is_made_of_a_record_whose_file_fails_its_check(signed_record, svc):
    doc_id, _manager, client = signed_record
    with svc.db.read_session() as s:
        first = s.scalar(select(DocumentVersion.sha256).where(
            DocumentVersion.document_id == doc_id, DocumentVersion.number == 1))
    flip_stored_byte(svc, first)
    response = client.get(f"/documents/{doc_id}/copy")
    assert response.status_code == 500
    assert "failed its integrity check" in response.get_data(as_text=True)
    assert response.mimetype != "application/zip"
    with svc.db.read_session() as s:
        assert s.scalar(select(Event).where(Event.type == "storage.integrity_alert"))


def test_the_document_page_offers_the_copy_only_to_audit_readers(signed_record, world, app):
    doc_id, _manager, client = signed_record
    assert 'data-testid="record-copy"' in client.get(f"/documents/{doc_id}").get_data(
        as_text=True)
    specialist = login_as(app, world.user("tmf_specialist"))
    page = specialist.get(f"/documents/{doc_id}").get_data(as_text=True)
    assert 'data-testid="record-copy"' not in page
    assert specialist.get(f"/documents/{doc_id}/copy").status_code == 403
