"""Inspectors and auditors read and export the audit trail; nobody can change it (AUD-4/5)."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest

from etmf.documents import services as docs


def _rename(world, user, doc_id, title, reason="typo in title"):
    with world.uow(user.name, user.id) as uow:
        version = uow.session.get(docs.Document, doc_id).version
        docs.change_metadata(uow, world.access(user), doc_id, {"title": title},
                             expected_version=version, reason=reason)
        uow.commit()


@pytest.fixture
def trail(world):
    specialist = world.user("tmf_specialist", name="Sam Specialist")
    qc = world.user("qc_reviewer", name="Quinn Reviewer")
    auditor = world.user("auditor", name="Audrey Auditor")
    doc_id = world.document(specialist, title="Protcol v1", state="approved", qc=qc)
    _rename(world, specialist, doc_id, "Protocol v1")
    return specialist, qc, auditor, doc_id


@pytest.mark.req("AUD-4")
@pytest.mark.req("AUD-5")
def test_auditor_sees_old_and_new_values_of_a_change(trail, login):
    _specialist, _qc, auditor, doc_id = trail
    client = login(auditor)
    html = client.get(f"/audit/studies/1/document/{doc_id}").get_data(as_text=True)
    assert "title: Protcol v1 → Protocol v1" in html
    assert "typo in title" in html
    assert "Sam Specialist" in html and "Quinn Reviewer" in html


@pytest.mark.req("AUD-5")
def test_study_trail_filters_by_user_and_exports_csv_with_old_and_new(trail, login):
    specialist, _qc, auditor, _doc_id = trail
    client = login(auditor)
    page = client.get(f"/audit/studies/1?actor={specialist.id}").get_data(as_text=True)
    assert "Sam Specialist" in page
    assert "Quinn Reviewer" not in page.split("<tbody>")[1]
    response = client.get(f"/audit/studies/1?actor={specialist.id}&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    change = [r for r in rows
              if r["field"] == "title" and r["event_type"] == "document.metadata_changed"]
    assert change and change[0]["old_value"] == "Protcol v1"
    assert change[0]["new_value"] == "Protocol v1"
    assert change[0]["reason"] == "typo in title"
    assert {r["actor"] for r in rows} == {"Sam Specialist"}
    assert all(r["time_utc"].endswith("Z") for r in rows)


@pytest.mark.req("AUD-5")
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_pdf_export_is_readable(trail, login, tmp_path):
    _specialist, _qc, auditor, _doc_id = trail
    response = login(auditor).get("/audit/studies/1?format=pdf")
    assert response.status_code == 200
    pdf = tmp_path / "trail.pdf"
    pdf.write_bytes(response.data)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Audit trail of study TST-001" in text
    assert "Protcol v1 → Protocol v1" in text
    assert "All times are UTC" in text


def test_csv_cells_that_look_like_formulas_are_neutralised(world, login):
    specialist = world.user("tmf_specialist")
    auditor = world.user("auditor")
    world.document(specialist, title="=HYPERLINK(\"http://evil\")")
    rows = login(auditor).get("/audit/studies/1?format=csv").get_data(as_text=True)
    assert "'=HYPERLINK" in rows


@pytest.mark.req("ACC-2")
def test_roles_without_audit_rights_and_other_studies_are_refused(trail, world, login, app):
    specialist, *_ = trail
    assert login(specialist).get("/audit/studies/1").status_code == 403
    from etmf.studies.services import NewStudy, create_study

    with world.uow() as uow:
        other = create_study(uow, NewStudy(protocol_number="OTHER-1", title="Other",
                                           phase="I", sponsor="X"))
        uow.commit()
    outsider = world.user("auditor", study_id=other)
    client = app.test_client()
    from tests.conftest import PASSWORD, csrf_from

    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": outsider.email, "password": PASSWORD,
                                "csrf_token": token})
    assert client.get("/audit/studies/1").status_code == 404
    assert client.get("/audit/studies/1?format=csv").status_code == 404


def test_the_audit_trail_has_no_write_route(trail, login, app):
    *_, auditor, doc_id = trail
    client = login(auditor)
    for url in ("/audit/studies/1", f"/audit/studies/1/document/{doc_id}"):
        assert client.post(url).status_code in (400, 405)
    audit_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/audit")]
    assert audit_rules
    assert all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in audit_rules)
