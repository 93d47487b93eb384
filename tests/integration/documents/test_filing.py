"""Filing many files at once: each file checked on its own, one metadata row per file,
suggestions, duplicates, required fields; bad input refused with a reason (OPS-2)."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from etmf.documents.models import Document, DocumentVersion
from tests.conftest import csrf_from
from tests.integration.documents.conftest import file_rows, pdf, upload
from tests.unit.documents.factories import (
    docx_bytes,
    encrypted_pdf_bytes,
    write_deflate_bomb,
)

TRIAL = {"artifact": "032", "level": "trial", "document_date": "2026-03-01"}


def _documents(svc) -> list[Document]:
    with svc.db.read_session() as s:
        return list(s.scalars(select(Document).order_by(Document.id)))


def _versions(svc) -> int:
    with svc.db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(DocumentVersion)))


@pytest.fixture
def specialist_client(world, login):
    return login(world.user("tmf_specialist", name="Sam Specialist"))


@pytest.mark.req("OPS-2")
def test_three_files_in_one_go_get_one_row_each_with_suggestions(world, specialist_client,
                                                                  svc):
    response = upload(specialist_client, world.study_id, [
        (pdf("Clinical Trial Protocol", "Protocol of the clinical trial"), "Protocol_v3.pdf"),
        (pdf("CV", "Curriculum vitae of the investigator"), "Investigator_CV_Weber.pdf"),
        (docx_bytes(("Informed consent form for adults",)), "ICF_master.docx"),
    ])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('class="filing-row"') == 3
    assert "02.01.02 Protocol (" in html  # the top suggestion for the protocol, with a %
    assert "Curriculum Vitae" in html or "CV" in html
    assert _documents(svc) == []  # nothing filed before the rows are confirmed


@pytest.mark.req("FR-FILE-2")
@pytest.mark.req("OPS-2")
def test_each_row_is_filed_and_a_bad_row_is_refused_alone(world, specialist_client, svc):
    html = upload(specialist_client, world.study_id, [
        (pdf("Protocol", "one"), "Protocol.pdf"), (pdf("Amendment", "two"), "Amendment.pdf"),
    ]).get_data(as_text=True)
    response = file_rows(specialist_client, world.study_id, html, [
        dict(TRIAL, title="Protocol v3"),
        dict(TRIAL, title="Amendment 1", artifact="99.99.99"),
    ])
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&#39;99.99.99&#39; is not an artifact" in body
    assert [d.title for d in _documents(svc)] == ["Protocol v3"]
    assert "Protocol v3" in body  # listed as filed


def test_required_fields_are_named_per_artifact(world, specialist_client, svc):
    html = upload(specialist_client, world.study_id, [(pdf("CV", "cv"), "cv.pdf")]
                  ).get_data(as_text=True)
    response = file_rows(specialist_client, world.study_id, html, [
        {"artifact": "05.02.04", "level": "trial", "document_date": "", "title": "CV"}])
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "filed at site level, not trial level" in body
    assert "(document date) is required" in body
    assert "needs the person it is about" in body
    assert _documents(svc) == []


def test_filed_rows_can_go_to_qc_at_once(world, specialist_client, svc):
    html = upload(specialist_client, world.study_id, [(pdf("P", "p"), "P.pdf")]
                  ).get_data(as_text=True)
    response = file_rows(specialist_client, world.study_id, html, [dict(TRIAL, title="P")],
                         send_to_qc=True)
    assert response.status_code == 302
    assert [d.status for d in _documents(svc)] == ["in_qc"]


def test_a_zip_of_files_is_filed_file_by_file(world, specialist_client, svc):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("batch/Protocol.pdf", pdf("Protocol", "protocol text"))
        archive.writestr("batch/notes.txt", "Meeting notes of the trial team.")
        archive.writestr("batch/tool.exe", b"MZ" + bytes(200))
    response = upload(specialist_client, world.study_id, [(buffer.getvalue(), "batch.zip")])
    html = response.get_data(as_text=True)
    assert html.count('class="filing-row"') == 2
    assert "tool.exe" in html and "a Windows executable" in html
    assert "from batch.zip" in html


@pytest.mark.req("OPS-2")
def test_a_zip_with_a_path_trick_is_refused_whole(world, specialist_client, svc):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/passwd.txt", "x")
    response = upload(specialist_client, world.study_id, [(buffer.getvalue(), "trick.zip")])
    assert response.status_code == 400
    assert "points outside the document" in response.get_data(as_text=True)
    assert _versions(svc) == 0


@pytest.mark.req("FR-FILE-3")
def test_a_duplicate_is_flagged_with_a_link_to_the_existing_document(world, specialist_client):
    content = pdf("Protocol", "same bytes")
    spec = world.user("tmf_specialist")
    doc_id = world.document(spec, title="Existing protocol", content=content)
    html = upload(specialist_client, world.study_id, [(content, "again.pdf")]
                  ).get_data(as_text=True)
    assert "Duplicate: the same file" in html
    assert f'href="/documents/{doc_id}"' in html


def test_staging_tokens_cannot_be_forged_or_reused_by_someone_else(world, login, svc):
    first = login(world.user("tmf_specialist"))
    html = upload(first, world.study_id, [(pdf("P", "p"), "P.pdf")]).get_data(as_text=True)
    token_html = html
    other = world.app.test_client()
    from tests.conftest import PASSWORD

    intruder = world.user("tmf_specialist")
    page = other.get("/login").get_data(as_text=True)
    other.post("/login", data={"email": intruder.email, "password": PASSWORD,
                               "csrf_token": csrf_from(page)})
    own_csrf = csrf_from(other.get("/").get_data(as_text=True))
    response = file_rows(other, world.study_id, token_html, [dict(TRIAL, title="Stolen")],
                         csrf=own_csrf)
    assert response.status_code == 400
    assert "belongs to another filing" in response.get_data(as_text=True)
    assert _documents(svc) == []


# --- bad input: one test each ------------------------------------------------------------


@pytest.mark.req("FR-FILE-2")
@pytest.mark.req("OPS-2")
@pytest.mark.parametrize(("content", "name", "says"), [
    (encrypted_pdf_bytes(), "locked.pdf", "encrypted"),
    (pdf("Cut", "cut")[:400], "cut.pdf", "damaged"),
    (b"MZ\x90\x00" + bytes(300), "report.pdf", "a Windows executable"),
    (b"", "empty.pdf", "is empty"),
], ids=["encrypted-pdf", "truncated-pdf", "exe-renamed-pdf", "empty-file"])
def test_a_bad_file_is_refused_with_its_reason_and_the_good_one_is_kept(
        world, specialist_client, svc, content, name, says):
    response = upload(specialist_client, world.study_id,
                      [(content, name), (pdf("Good", "good"), "good.pdf")])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert name in html and says in html
    assert html.count('class="filing-row"') == 1
    assert file_rows(specialist_client, world.study_id, html,
                     [dict(TRIAL, title="Good")]).status_code == 302
    assert [d.title for d in _documents(svc)] == ["Good"]
    assert _versions(svc) == 1


@pytest.mark.req("OPS-2")
def test_a_docx_zip_bomb_is_refused_before_parsing(world, specialist_client, svc, tmp_path):
    bomb = tmp_path / "bomb.docx"
    write_deflate_bomb(bomb, 200)
    response = upload(specialist_client, world.study_id, [(bomb.read_bytes(), "bomb.docx")])
    assert response.status_code == 400
    assert "zip bomb" in response.get_data(as_text=True)
    assert _versions(svc) == 0


@pytest.fixture
def settings_overrides():
    return {"max_upload_mb": 1}


@pytest.mark.req("OPS-2")
def test_a_file_over_the_limit_gets_413_stating_the_limit(world, specialist_client, svc):
    big = pdf("Big", "x") + b"%" + bytes(1024 * 1024 + 10)
    response = upload(specialist_client, world.study_id, [(big, "big.pdf")])
    assert response.status_code == 413
    assert "limit of 1" in response.get_data(as_text=True)
    assert _versions(svc) == 0


@pytest.mark.parametrize("name", [
    "../../etc/passwd.pdf", "bad\x00\x07name\x1b.pdf", "ü" * 300 + ".pdf",
], ids=["dot-dot-slash", "control-characters", "300-unicode-chars"])
def test_strange_file_names_are_made_safe(world, specialist_client, svc, name):
    html = upload(specialist_client, world.study_id, [(pdf("N", "n"), name)]
                  ).get_data(as_text=True)
    assert file_rows(specialist_client, world.study_id, html,
                     [dict(TRIAL, title="Named")]).status_code == 302
    with svc.db.read_session() as s:
        stored = s.scalar(select(DocumentVersion.filename))
    assert "/" not in stored and ".." not in stored
    assert all(ord(c) >= 32 for c in stored)
    assert len(stored) <= 200 and stored.endswith(".pdf")


def test_html_and_script_in_metadata_are_shown_escaped(world, specialist_client, svc):
    html = upload(specialist_client, world.study_id, [(pdf("X", "x"), "x.pdf")]
                  ).get_data(as_text=True)
    evil = '<script>alert("x")</script><b>bold</b>'
    file_rows(specialist_client, world.study_id, html,
              [dict(TRIAL, title=evil, person="<img src=x onerror=alert(1)>")])
    doc = _documents(svc)[0]
    assert doc.title == evil  # stored as typed …
    page = specialist_client.get(f"/documents/{doc.id}").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page  # … shown escaped
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    listing = specialist_client.get(f"/studies/{world.study_id}/documents").get_data(
        as_text=True)
    assert "<script>alert" not in listing


@pytest.mark.parametrize(("value", "says"), [
    ("2027-01-01", "is in the future"),
    ("2026-02-30", "is not a date"),
    ("1890-05-05", "implausibly early"),
], ids=["future", "impossible", "too-early"])
def test_a_wrong_document_date_is_refused(world, specialist_client, svc, value, says):
    html = upload(specialist_client, world.study_id, [(pdf("D", "d"), "d.pdf")]
                  ).get_data(as_text=True)
    response = file_rows(specialist_client, world.study_id, html,
                         [dict(TRIAL, title="Dated", document_date=value)])
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    assert _documents(svc) == []


def test_an_unknown_artifact_number_is_refused(world, specialist_client, svc):
    html = upload(specialist_client, world.study_id, [(pdf("D", "d"), "d.pdf")]
                  ).get_data(as_text=True)
    response = file_rows(specialist_client, world.study_id, html,
                         [dict(TRIAL, title="Unknown", artifact="42.42.42")])
    assert response.status_code == 400
    assert "is not an artifact of the TMF Reference Model 3.3.1" in response.get_data(
        as_text=True)


def test_the_artifact_picker_finds_by_name_number_and_sub_artifact(world, specialist_client):
    by_name = specialist_client.get("/reference-model/artifacts?q=monitoring visit report").json
    assert by_name[0]["number"] == "05.04.03"
    by_number = specialist_client.get("/reference-model/artifacts?q=05.02.08").json
    assert by_number[0]["name"] == "Form FDA 1572"
    assert by_number[0]["dating_convention"]


def test_a_monitor_cannot_file(world, login):
    client = login(world.user("monitor", site="101"))
    assert client.get(f"/studies/{world.study_id}/file").status_code == 403


@pytest.mark.req("FR-FILE-1")
def test_a_specialist_files_a_document_classified_with_its_metadata(world, specialist_client,
                                                                    svc):
    from etmf.reference_model.model import load_reference_model

    html = upload(specialist_client, world.study_id, [
        (pdf("CV", "Curriculum vitae of Dr Hanna Weber"), "cv_weber.pdf")]).get_data(
        as_text=True)
    response = file_rows(specialist_client, world.study_id, html, [{
        "artifact": "05.02.04", "level": "site", "site_id": str(world.site_ids["101"]),
        "person": "Dr Hanna Weber", "title": "CV Dr Hanna Weber",
        "document_date": "2026-01-15", "expiry_date": "2028-01-15"}])
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    [doc] = _documents(svc)
    artifact = load_reference_model().artifact(doc.artifact_id)
    assert artifact.number == "05.02.04"
    assert (doc.study_id, doc.level, doc.site_id, doc.country_id) == (
        world.study_id, "site", world.site_ids["101"], world.country_ids["DE"])
    assert (doc.person, doc.title) == ("Dr Hanna Weber", "CV Dr Hanna Weber")
    assert (str(doc.document_date), str(doc.expiry_date)) == ("2026-01-15", "2028-01-15")
    page = specialist_client.get(f"/documents/{doc.id}").get_data(as_text=True)
    assert "05.02.04" in page and "Dr Hanna Weber" in page and "2028-01-15" in page
