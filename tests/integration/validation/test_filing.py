"""The validation report filed into the study's TMF and signed through the signature
workflow: afterwards it is a signed record like any other, and validates the same way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from etmf.documents.models import Document, DocumentVersion
from etmf.errors import Forbidden
from etmf.reference_model.model import load_reference_model
from etmf.signing import pki
from etmf.signing.validation import validate_pdf
from etmf.validation.filing import ARTIFACTS, file_validation_report
from etmf.validation.iq import IqReport
from etmf.validation.matrix import build_matrix
from etmf.validation.report import ValidationReport, write_pdf
from tests.conftest import FROZEN_AT, PASSWORD
from tests.integration.signing_workflow.conftest import (
    blob_bytes,
    enrol,
    login_as,
    pdftotext,
    post_sign,
)

GENERATED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def report_pdf(tmp_path) -> bytes:  # type: ignore[no-untyped-def]
    tests = [{"nodeid": "tests/test_x.py::test_chain", "outcome": "passed",
              "requirements": ["AUD-3"], "start": "2026-11-26T08:59:00.000+00:00",
              "stop": "2026-11-26T08:59:01.000+00:00"}]
    report = ValidationReport(
        report_id="VAL-20261126-090000", generated_at=GENERATED, system="etmf test",
        instance="/srv/etmf", iq=IqReport(rows=[], distributions=[]), matrix=build_matrix(tests, scope=["AUD-3"]),
        partial="requirements AUD-3")
    path = tmp_path / "validation-report.pdf"
    write_pdf(report, path)
    return path.read_bytes()


@pytest.fixture
def people(world, svc):  # type: ignore[no-untyped-def]
    admin = world.user("admin", name="Alex Admin")
    lead = world.user("study_manager", name="Vera Validator")
    qa = world.user("study_manager", name="Quinn Assurance")
    for person in (lead, qa):
        enrol(world, svc, admin, person)
    return lead, qa


def _file(world, svc, by, pdf, zone="10", signers=()):  # type: ignore[no-untyped-def]
    with world.uow(by.name, by.id) as uow:
        filed = file_validation_report(
            uow, svc, world.access(by), study_id=world.study_id, pdf=pdf,
            report_id="VAL-20261126-090000", verdict="PASS", generated_at=GENERATED,
            zone=zone, signers=signers,
            link=lambda rid: f"http://etmf.test/signatures/requests/{rid}/sign")
        uow.commit()
    return filed


@pytest.mark.req("FR-VAL-4")
@pytest.mark.parametrize("zone", ["10", "01"])
def test_the_report_is_filed_in_the_configured_zone_under_its_artifact(
        world, svc, people, report_pdf, zone):
    lead, _qa = people
    filed = _file(world, svc, lead, report_pdf, zone=zone)
    with svc.db.read_session() as s:
        doc = s.get(Document, filed.document_id)
        version = s.get(DocumentVersion, doc.current_version_id)
    artifact = load_reference_model().artifact(doc.artifact_id)
    assert (artifact.number, doc.sub_artifact) == ARTIFACTS[zone]
    assert artifact.number.startswith(zone + ".") and doc.zone == zone
    assert artifact.name == {"10": "Validation Documentation",
                             "01": "Operational Oversight"}[zone]
    assert doc.status == "in_qc" and doc.level == "trial"
    assert doc.title == "Computer system validation report VAL-20261126-090000 (PASS)"
    assert str(doc.document_date) == "2026-11-26"
    assert blob_bytes(svc, version.sha256) == report_pdf
    assert filed.request_id is None


@pytest.mark.req("FR-VAL-4")
@pytest.mark.req("SIG-3")
def test_the_filed_report_signed_through_the_workflow_validates_like_any_record(
        app, world, svc, people, report_pdf, tmp_path):
    lead, qa = people
    svc.mailer.sent.clear()
    filed = _file(world, svc, lead, report_pdf, signers=[(lead.id, "author"),
                                                         (qa.id, "approval")])
    assert [m.to for m in svc.mailer.sent] == [(lead.email,)]  # sequential: the author first
    for who in (lead, qa):
        response = post_sign(login_as(app, who), filed.request_id, password=PASSWORD)
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]

    with svc.db.read_session() as s:
        versions = list(s.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id == filed.document_id).order_by(DocumentVersion.number)))
    original, signed = versions[0], versions[-1]
    assert len(versions) == 3 and signed.signed_from_version_id == versions[1].id
    data = blob_bytes(svc, signed.sha256)
    assert data.startswith(report_pdf)  # incremental: the report's bytes are untouched
    reports = validate_pdf(data, pki.trust_roots(svc), now=FROZEN_AT)
    assert [(r.signer_name, r.meaning, r.status) for r in reports] == [
        ("Vera Validator", "Authorship", "VALID"), ("Quinn Assurance", "Approval", "VALID")]
    assert validate_pdf(blob_bytes(svc, original.sha256), pki.trust_roots(svc),
                        now=FROZEN_AT) == []

    path = tmp_path / "signed-report.pdf"
    path.write_bytes(data)
    text = " ".join(pdftotext(path).split())
    assert "Computer system validation report (IQ/OQ)" in text
    assert "Electronically signed by: Vera Validator" in text
    assert "Electronically signed by: Quinn Assurance" in text
    page = login_as(app, qa).get(f"/documents/{filed.document_id}").get_data(as_text=True)
    assert "Valid: signed by Vera Validator" in page and ">VALID<" in page


def test_filing_needs_the_right_to_file_in_that_study(world, svc, report_pdf):
    monitor = world.user("monitor", site="101")
    with pytest.raises(Forbidden):
        _file(world, svc, monitor, report_pdf)
