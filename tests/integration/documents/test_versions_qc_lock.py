"""Versions, metadata with history, withdrawal, QC issues, study lock, placeholders and
signposts, concurrency; everything rebuilt from the log (AUD-6)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from etmf.audit.service import verify_all
from etmf.documents.models import Document, DocumentVersion, QcIssue
from tests.conftest import csrf_from
from tests.integration.documents.conftest import pdf, post_multipart


def _doc(svc, doc_id: int) -> Document:
    with svc.db.read_session() as s:
        return s.get(Document, doc_id)


def _form(client, path: str, **data):  # type: ignore[no-untyped-def]
    page = client.get(path.rsplit("/", 1)[0] if not path.endswith("/edit") else path)
    return client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                   **data})


def _post(client, doc_id: int, path: str, **data):  # type: ignore[no-untyped-def]
    page = client.get(f"/documents/{doc_id}").get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_from(page), **data})


def _new_version(client, doc_id: int, content: bytes, name: str, **fields):  # type: ignore[no-untyped-def]
    page = client.get(f"/documents/{doc_id}").get_data(as_text=True)
    return post_multipart(client, f"/documents/{doc_id}/versions",
                          {"csrf_token": csrf_from(page), "file": (io.BytesIO(content), name),
                           **{k: str(v) for k, v in fields.items()}})


@pytest.fixture
def people(world):
    return {"specialist": world.user("tmf_specialist", name="Sam Specialist"),
            "qc": world.user("qc_reviewer", name="Quinn Reviewer"),
            "manager": world.user("study_manager", name="Morgan Manager")}


@pytest.mark.req("REC-6")
def test_new_versions_keep_every_earlier_version_downloadable(world, people, login, svc):
    spec, qc = people["specialist"], people["qc"]
    doc_id = world.document(spec, title="Protocol", content=pdf("Protocol", "first edition"),
                            state="approved", qc=qc)
    client = login(spec)
    response = _new_version(client, doc_id, pdf("Protocol", "second edition"), "p2.pdf",
                            version=3, kind="minor", note="typo fixed")
    assert response.status_code == 302
    response = _new_version(client, doc_id, pdf("Protocol", "third edition"), "p3.pdf",
                            version=4, kind="major")
    assert response.status_code == 302
    with svc.db.read_session() as s:
        labels = [v.label for v in s.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id == doc_id).order_by(DocumentVersion.number))]
    assert labels == ["1.0", "1.1", "2.0"]
    page = client.get(f"/documents/{doc_id}").get_data(as_text=True)
    assert "typo fixed" in page
    for number in range(1, len(labels) + 1):
        download = client.get(f"/documents/{doc_id}/versions/{number}/download")
        assert download.status_code == 200
        assert download.data.startswith(b"%PDF")


@pytest.mark.req("FR-LIFE-1")
@pytest.mark.req("REC-6")
@pytest.mark.req("OPS-1")
def test_approving_a_new_version_supersedes_the_old_one(world, people, login, svc):
    spec, qc = people["specialist"], people["qc"]
    doc_id = world.document(spec, title="IB", state="approved", qc=qc)
    client = login(spec)
    assert _new_version(client, doc_id, pdf("IB", "edition 8"), "ib8.pdf", version=3,
                        kind="major").status_code == 302
    assert _post(client, doc_id, f"/documents/{doc_id}/transition", action="submit_qc",
                 version=4).status_code == 302
    reviewer = world.app.test_client()
    from tests.conftest import PASSWORD

    page = reviewer.get("/login").get_data(as_text=True)
    reviewer.post("/login", data={"email": qc.email, "password": PASSWORD,
                                  "csrf_token": csrf_from(page)})
    assert _post(reviewer, doc_id, f"/documents/{doc_id}/transition", action="approve",
                 version=5).status_code == 302
    with svc.db.read_session() as s:
        statuses = [(v.label, v.status) for v in s.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id == doc_id).order_by(DocumentVersion.number))]
    assert statuses == [("1.0", "superseded"), ("2.0", "approved")]


@pytest.mark.req("AUD-4")
def test_metadata_of_a_final_document_needs_a_reason_and_shows_old_to_new(world, people,
                                                                         login, svc):
    doc_id = world.document(people["specialist"], title="Old title", state="approved",
                            qc=people["qc"])
    client = login(people["specialist"])
    page = client.get(f"/documents/{doc_id}/edit").get_data(as_text=True)
    no_reason = client.post(f"/documents/{doc_id}/edit", data={
        "csrf_token": csrf_from(page), "version": "3", "title": "New title"})
    assert no_reason.status_code == 400
    assert "A reason is required" in no_reason.get_data(as_text=True)
    assert _doc(svc, doc_id).title == "Old title"
    ok = client.post(f"/documents/{doc_id}/edit", data={
        "csrf_token": csrf_from(page), "version": "3", "title": "New title",
        "reason": "Title did not match the cover page"})
    assert ok.status_code == 302
    detail = client.get(f"/documents/{doc_id}").get_data(as_text=True)
    assert "title: Old title → New title" in detail
    assert "Title did not match the cover page" in detail


def test_a_concurrent_edit_gets_a_readable_409(world, people, login, svc):
    doc_id = world.document(people["specialist"], title="Shared")
    client = login(people["specialist"])
    page = client.get(f"/documents/{doc_id}/edit").get_data(as_text=True)
    first = client.post(f"/documents/{doc_id}/edit", data={
        "csrf_token": csrf_from(page), "version": "1", "title": "First edit"})
    second = client.post(f"/documents/{doc_id}/edit", data={
        "csrf_token": csrf_from(page), "version": "1", "title": "Second edit"})
    assert first.status_code == 302
    assert second.status_code == 409
    body = second.get_data(as_text=True)
    assert "changed by someone else" in body and "Reload the page" in body
    assert _doc(svc, doc_id).title == "First edit"


@pytest.mark.req("AUD-1")
def test_withdrawing_needs_a_reason(world, people, login, svc):
    doc_id = world.document(people["specialist"], title="Old plan", state="approved",
                            qc=people["qc"])
    client = login(people["manager"])
    refused = _post(client, doc_id, f"/documents/{doc_id}/transition", action="withdraw",
                    version=3)
    assert refused.status_code == 400
    assert _post(client, doc_id, f"/documents/{doc_id}/transition", action="withdraw",
                 version=3, reason="Replaced by the new plan").status_code == 302
    assert _doc(svc, doc_id).status == "obsolete"


@pytest.mark.req("FR-LIFE-2")
@pytest.mark.req("OPS-1")
def test_qc_rejection_needs_issues_that_must_be_answered_before_resubmission(
        world, people, login, svc):
    spec, qc = people["specialist"], people["qc"]
    doc_id = world.document(spec, title="FDA 1572", state="in_qc")
    reviewer = login(qc)
    no_issue = _post(reviewer, doc_id, f"/documents/{doc_id}/transition", action="reject",
                     version=2)
    assert no_issue.status_code == 400
    assert "at least one QC issue" in no_issue.get_data(as_text=True)
    assert _post(reviewer, doc_id, f"/documents/{doc_id}/transition", action="reject",
                 version=2, **{"issue-0-category": "Missing signature or date",
                               "issue-0-comment": "Section 9 is not signed"}
                 ).status_code == 302
    assert _doc(svc, doc_id).status == "draft"
    qc_list = reviewer.get(f"/studies/{world.study_id}/qc-issues").get_data(as_text=True)
    assert "Section 9 is not signed" in qc_list and "1 open QC issue" in qc_list

    filer = world.app.test_client()
    from tests.conftest import PASSWORD

    page = filer.get("/login").get_data(as_text=True)
    filer.post("/login", data={"email": spec.email, "password": PASSWORD,
                               "csrf_token": csrf_from(page)})
    blocked = _post(filer, doc_id, f"/documents/{doc_id}/transition", action="submit_qc",
                    version=3)
    assert blocked.status_code == 409
    assert "Answer every open QC issue" in blocked.get_data(as_text=True)
    with svc.db.read_session() as s:
        issue_id = s.scalar(select(QcIssue.id))
    assert _post(filer, doc_id, f"/qc-issues/{issue_id}/answer", version=3,
                 response="Signed page uploaded as version 2").status_code == 302
    assert _post(filer, doc_id, f"/documents/{doc_id}/transition", action="submit_qc",
                 version=4).status_code == 302
    assert _doc(svc, doc_id).status == "in_qc"
    assert "0 open QC issues" in filer.get(
        f"/studies/{world.study_id}/qc-issues").get_data(as_text=True)


@pytest.mark.req("REC-3")
def test_a_locked_study_is_read_only_until_an_admin_unlocks_it_with_a_reason(
        world, people, login, svc):
    doc_id = world.document(people["specialist"], title="Draft plan")
    admin = login(world.user("admin"))
    page = admin.get("/studies/archive").get_data(as_text=True)
    assert "TST-001" in page
    no_reason = admin.post(f"/studies/{world.study_id}/lock",
                           data={"csrf_token": csrf_from(page), "version": "1"})
    assert no_reason.status_code == 400
    assert admin.post(f"/studies/{world.study_id}/lock", data={
        "csrf_token": csrf_from(page), "version": "1", "reason": "Trial closed, TMF archived"
    }).status_code == 302
    spec = world.app.test_client()
    from tests.conftest import PASSWORD

    login_page = spec.get("/login").get_data(as_text=True)
    spec.post("/login", data={"email": people["specialist"].email, "password": PASSWORD,
                              "csrf_token": csrf_from(login_page)})
    detail = spec.get(f"/documents/{doc_id}").get_data(as_text=True)
    assert "is locked (archived): this document is read-only" in detail
    refused = _post(spec, doc_id, f"/documents/{doc_id}/transition", action="submit_qc",
                    version=1)
    assert refused.status_code == 409
    assert "locked" in refused.get_data(as_text=True)
    page = admin.get("/studies/archive").get_data(as_text=True)
    assert admin.post(f"/studies/{world.study_id}/unlock", data={
        "csrf_token": csrf_from(page), "version": "2", "reason": "Late document found"
    }).status_code == 302
    assert _post(spec, doc_id, f"/documents/{doc_id}/transition", action="submit_qc",
                 version=1).status_code == 302


def test_only_administrators_lock_studies(world, people, login):
    client = login(people["manager"])
    assert client.get("/studies/archive").status_code == 403


@pytest.mark.req("REC-7")
def test_placeholders_and_signposts_are_browsable_like_documents(world, people, login, svc):
    client = login(people["specialist"])
    page = client.get(f"/studies/{world.study_id}/records/new").get_data(as_text=True)
    response = client.post(f"/studies/{world.study_id}/records/new", data={
        "csrf_token": csrf_from(page), "kind": "signpost", "artifact": "05.04.03",
        "title": "Monitoring visit 2 report", "level": "site",
        "site_id": str(world.site_ids["101"]), "system": "CTMS Veeva",
        "location": "Study ONC-301 / Site 101 / Visits"})
    assert response.status_code == 302
    signpost_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    response = client.post(f"/studies/{world.study_id}/records/new", data={
        "csrf_token": csrf_from(page), "kind": "placeholder", "artifact": "02.01.06",
        "title": "Insurance certificate 2027", "level": "trial"})
    placeholder_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    # A monitor (approved documents only) sees where records are, too.
    monitor = world.app.test_client()
    from tests.conftest import PASSWORD

    mon = world.user("monitor", site="101")
    lp = monitor.get("/login").get_data(as_text=True)
    monitor.post("/login", data={"email": mon.email, "password": PASSWORD,
                                 "csrf_token": csrf_from(lp)})
    listing = monitor.get(f"/studies/{world.study_id}/documents").get_data(as_text=True)
    assert "Monitoring visit 2 report" in listing and "Held elsewhere" in listing
    assert "Insurance certificate 2027" in listing and "Expected (placeholder)" in listing
    detail = monitor.get(f"/documents/{signpost_id}").get_data(as_text=True)
    assert "CTMS Veeva · Study ONC-301 / Site 101 / Visits" in detail
    tree = monitor.get(f"/studies/{world.study_id}").get_data(as_text=True)
    assert "Held elsewhere" in tree
    # The expected file arrives: the placeholder becomes a draft with version 1.0.
    assert _new_version(client, placeholder_id, pdf("Insurance", "certificate"), "ins.pdf",
                        version=1).status_code == 302
    assert _doc(svc, placeholder_id).status == "draft"


@pytest.mark.req("AUD-6")
def test_replaying_the_log_rebuilds_documents_issues_and_locks(world, people, login, svc):
    spec, qc = people["specialist"], people["qc"]
    doc_id = world.document(spec, title="Replay me", state="in_qc")
    reviewer = login(qc)
    _post(reviewer, doc_id, f"/documents/{doc_id}/transition", action="reject", version=2,
          **{"issue-0-category": "Other", "issue-0-comment": "Blurred scan"})
    from etmf.audit.store import Actor, unit_of_work
    from etmf.documents import indexing
    from etmf.documents import services as docs

    with unit_of_work(svc.db, svc.clock, Actor(spec.id, spec.name)) as uow:
        docs.create_signpost(uow, world.access(spec), docs.NewRecord(
            study_id=world.study_id, artifact="02.01.02", title="Wet ink pages",
            system="Paper archive", location="Box 7"))
        uow.commit()
    indexing.indexing_for(svc).schedule([doc_id])
    assert indexing.flush(svc)
    with svc.db.read_session() as session:
        report = verify_all(session, svc.settings, replay=True)
    assert report.replayed
    assert report.replay_differences == []


@pytest.mark.req("FR-LIFE-3")
def test_a_withdrawn_document_stays_retrievable_with_its_reason(world, people, login, svc):
    doc_id = world.document(people["specialist"], title="Old plan", state="approved",
                            qc=people["qc"], content=pdf("Old plan", "superseded plan text"))
    client = login(people["manager"])
    refused = _post(client, doc_id, f"/documents/{doc_id}/transition", action="withdraw",
                    version=3, reason="  ")
    assert refused.status_code == 400 and _doc(svc, doc_id).status == "approved"
    assert _post(client, doc_id, f"/documents/{doc_id}/transition", action="withdraw",
                 version=3, reason="Replaced by the new plan").status_code == 302
    assert _doc(svc, doc_id).status == "obsolete"
    page = client.get(f"/documents/{doc_id}")
    assert page.status_code == 200
    assert "Replaced by the new plan" in page.get_data(as_text=True)
    download = client.get(f"/documents/{doc_id}/versions/1/download")
    assert download.status_code == 200
    with svc.db.read_session() as s:
        stored = s.scalar(select(DocumentVersion.sha256).where(
            DocumentVersion.document_id == doc_id))
    import hashlib

    assert hashlib.sha256(download.data).hexdigest() == stored
