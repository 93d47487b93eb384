"""Issue 9 follow-ups: import from the dry run report without a second upload (at once, or as
a background job), the imported history on the document page, ``approved_at`` carried over,
the API of exchange and inspection requests, labels and links."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from etmf.bootstrap import services
from etmf.documents.models import Document
from etmf.exchange.models import ImportedObject, ImportedPackage
from tests.conftest import csrf_from
from tests.integration.accounts.conftest import post_form, try_sign_in


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"jobs_runner": "inline"}


@pytest.fixture
def manager(world):  # type: ignore[no-untyped-def]
    author = world.user("tmf_specialist", name="Ada Author")
    qc = world.user("qc_reviewer", name="Quentin QC")
    world.document(author, title="Protocol", state="approved", qc=qc)
    return world.user("study_manager", name="Mia Manager")


def _package(client, study_id: int) -> bytes:  # type: ignore[no-untyped-def]
    response = client.get(f"/studies/{study_id}/exchange/export.zip")
    assert response.status_code == 200
    return response.get_data()


def _dry_run(client, study_id: int, data: bytes) -> str:  # type: ignore[no-untyped-def]
    page = client.get(f"/studies/{study_id}/exchange").get_data(as_text=True)
    html = client.post(f"/studies/{study_id}/exchange/import", data={
        "csrf_token": csrf_from(page), "mode": "dry_run",
        "file": (io.BytesIO(data), "package.zip")}).get_data(as_text=True)
    assert 'data-testid="import-checked"' in html, html
    return html


def _token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def _signed_in(app, user):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert try_sign_in(client, user.email).status_code == 302
    return client


def _imported_documents(svc) -> list[int]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return list(s.scalars(select(ImportedObject.document_id)))


@pytest.mark.req("FR-EXCH-2")
def test_the_dry_run_report_imports_the_kept_package_without_a_second_upload(
        world, manager, login, svc):
    client = login(manager)
    data = _package(client, world.study_id)
    html = _dry_run(client, world.study_id, data)
    response = client.post(f"/studies/{world.study_id}/exchange/import/checked", data={
        "csrf_token": csrf_from(html), "token": _token(html), "mode": "import"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="import-result"' in text
    assert "1 document(s), 1 version(s) imported" in text
    [doc_id] = _imported_documents(svc)
    with svc.db.read_session() as s:
        source = s.scalar(select(Document).where(Document.title == "Protocol",
                                                 Document.id != doc_id))
        copy = s.get(Document, doc_id)
        assert copy.approved_at is not None and copy.approved_at == source.approved_at
    # The document page shows the source's records, labelled as not ours.
    page = client.get(f"/documents/{doc_id}").get_data(as_text=True)
    assert 'data-testid="imported-history"' in page
    assert re.search(r"Imported history \(from etmf-[0-9a-f]+, not events of this server\)",
                     page)
    assert 'data-testid="imported-audit"' in page and "Document filed" in page
    # Our own audit trail names the import in words.
    from etmf.audit.views import describe_event
    from tests.integration.accounts.conftest import events_of

    [event] = events_of(svc, "document", doc_id)
    assert describe_event(event).action == "Document imported (EMS)"
    # The same token again: the package was imported, nothing changes.
    again = client.post(f"/studies/{world.study_id}/exchange/import/checked", data={
        "csrf_token": csrf_from(html), "token": _token(html), "mode": "import"})
    assert "0 document(s), 0 version(s) imported" in again.get_data(as_text=True)
    assert len(_imported_documents(svc)) == 1


def test_a_token_names_its_user_and_cannot_be_altered(world, manager, login, app):
    client = login(manager)
    html = _dry_run(client, world.study_id, _package(client, world.study_id))
    other = world.user("study_manager", name="Olga Other")
    other_client = _signed_in(app, other)
    page = other_client.get(f"/studies/{world.study_id}/exchange").get_data(as_text=True)
    refused = other_client.post(f"/studies/{world.study_id}/exchange/import/checked", data={
        "csrf_token": csrf_from(page), "token": _token(html), "mode": "import"})
    assert refused.status_code == 400
    assert "belongs to another user" in refused.get_data(as_text=True)
    altered = client.post(f"/studies/{world.study_id}/exchange/import/checked", data={
        "csrf_token": csrf_from(html), "token": _token(html)[:-2] + "xx", "mode": "import"})
    assert altered.status_code == 400 and "upload the package again" in \
        altered.get_data(as_text=True)


def test_a_large_import_runs_as_a_job_with_a_progress_bar(world, manager, login, svc):
    client = login(manager)
    html = _dry_run(client, world.study_id, _package(client, world.study_id))
    response = client.post(f"/studies/{world.study_id}/exchange/import/checked", data={
        "csrf_token": csrf_from(html), "token": _token(html), "mode": "import",
        "background": "1"})
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    job_url = response.headers["Location"].rstrip("/")
    job = client.get(job_url + ".json").get_json()
    assert job["status"] == "done", job
    assert job["percent"] == 100 and "Imported 1 document(s)" in job["message"]
    assert "<progress" in client.get(job_url).get_data(as_text=True)
    result = client.get(job_url + "/download").get_data(as_text=True)
    assert result.startswith("Imported 1 document(s) with 1 version(s)")
    assert len(_imported_documents(svc)) == 1
    with svc.db.read_session() as s:
        assert s.scalar(select(ImportedPackage.imported_by_name)) == "Mia Manager"


def test_packages_above_the_threshold_go_to_the_background_by_themselves(
        world, manager, login, monkeypatch):
    from etmf.exchange import staging

    monkeypatch.setattr(staging, "BACKGROUND_BYTES", 10)
    client = login(manager)
    html = _dry_run(client, world.study_id, _package(client, world.study_id))
    assert "required for a package this large" in html
    response = client.post(f"/studies/{world.study_id}/exchange/import/checked", data={
        "csrf_token": csrf_from(html), "token": _token(html), "mode": "import"})
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]


def test_the_study_page_links_to_inspection_and_exchange(world, manager, login, app,
                                                         make_inspector):
    html = login(manager).get(f"/studies/{world.study_id}").get_data(as_text=True)
    assert f"/studies/{world.study_id}/inspection" in html
    assert f"/studies/{world.study_id}/exchange" in html
    inspector, _grant = make_inspector()
    client = _signed_in(app, inspector)
    home = client.get("/").get_data(as_text=True)
    assert f'href="/studies/{world.study_id}/inspection"' in home
    study = client.get(f"/studies/{world.study_id}").get_data(as_text=True)
    assert f"/studies/{world.study_id}/exchange" not in study  # no export for inspectors


# --- the API --------------------------------------------------------------------------------


def _bearer(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = post_form(client, "/account/tokens", {"name": "ci", "days": 30},
                         page="/account/")
    token = re.search(r'data-testid="new-token">([^<]+)<', response.get_data(as_text=True))
    return {"Authorization": f"Bearer {token.group(1)}"}  # type: ignore[union-attr]


@pytest.mark.req("FR-EXCH-1")
def test_api_starts_an_export_job_and_dry_runs_a_package(world, manager, login, app):
    session = login(manager)
    auth = _bearer(session)
    api = app.test_client()
    started = api.post(f"/api/v1/studies/{world.study_id}/exchange/export-jobs",
                       json={"zones": ["02"]}, headers=auth)
    assert started.status_code == 202, started.json
    body = started.json
    assert body["status"] == "done" and body["job_url"] == f"/jobs/{body['id']}"
    status = api.get(body["status_url"], headers=auth)
    assert status.status_code == 200 and status.json["download_url"]
    assert api.post(f"/api/v1/studies/{world.study_id}/exchange/export-jobs",
                    json={"zones": "02"}, headers=auth).status_code == 400
    data = session.get(f"/jobs/{body['id']}/download").get_data()
    report = api.post(f"/api/v1/studies/{world.study_id}/exchange/dry-run", headers=auth,
                      data={"file": (io.BytesIO(data), "p.zip")},
                      content_type="multipart/form-data")
    assert report.status_code == 200, report.json
    assert report.json["ok"] is True and report.json["schema_errors"] == []
    assert report.json["objects"] == 1 and report.json["bad_files"] == []
    broken = api.post(f"/api/v1/studies/{world.study_id}/exchange/dry-run", headers=auth,
                      data={"file": (io.BytesIO(b"not a zip"), "p.zip")},
                      content_type="multipart/form-data")
    assert broken.json["ok"] is False and "not a readable zip" in broken.json["fatal"]
    anonymous = api.post(f"/api/v1/studies/{world.study_id}/exchange/dry-run",
                         data={"file": (io.BytesIO(data), "p.zip")},
                         content_type="multipart/form-data")
    assert anonymous.status_code == 401  # not the CSRF check's 400
    spec = api.get("/api/v1/openapi.json").json["paths"]
    assert "post" in spec["/studies/{study_id}/exchange/export-jobs"]
    assert "post" in spec["/studies/{study_id}/exchange/dry-run"]
    assert {"get", "post"} <= set(spec["/studies/{study_id}/inspection-requests"])
    assert "post" in spec["/inspection-requests/{request_id}/answer"]


@pytest.mark.req("FR-INSP-3")
def test_api_lists_raises_and_answers_inspection_requests(world, manager, login, app,
                                                         make_inspector):
    inspector, _grant = make_inspector()
    inspector_client = _signed_in(app, inspector)
    csrf = csrf_from(inspector_client.get(f"/studies/{world.study_id}/inspection")
                     .get_data(as_text=True))
    raised = inspector_client.post(
        f"/api/v1/studies/{world.study_id}/inspection-requests",
        json={"kind": "document", "subject": "Monitoring visit report",
              "text": "Please provide the report of visit 3."},
        headers={"X-CSRFToken": csrf})
    assert raised.status_code == 201, raised.json
    request = raised.json
    assert request["status"] == "open" and request["raised_by"] == "Ian Inspector"
    bad = inspector_client.post(f"/api/v1/studies/{world.study_id}/inspection-requests",
                                json={"kind": "gossip", "subject": "x", "text": "y"},
                                headers={"X-CSRFToken": csrf})
    assert bad.status_code == 400
    # The inspector cannot answer (read-only); the specialist can, with a token.
    assert inspector_client.post(f"/api/v1/inspection-requests/{request['id']}/answer",
                                 json={"answer": "x", "expected_version": 1},
                                 headers={"X-CSRFToken": csrf}).status_code == 403
    specialist = _bearer(_signed_in(app, world.user("tmf_specialist", name="Sam Specialist")))
    api = app.test_client()
    listed = api.get(f"/api/v1/studies/{world.study_id}/inspection-requests",
                     headers=specialist)
    assert [r["id"] for r in listed.json["requests"]] == [request["id"]]
    stale = api.post(f"/api/v1/inspection-requests/{request['id']}/answer",
                     json={"answer": "Attached.", "expected_version": 0}, headers=specialist)
    assert stale.status_code == 409
    answered = api.post(f"/api/v1/inspection-requests/{request['id']}/answer",
                        json={"answer": "Attached.", "expected_version": request["version"]},
                        headers=specialist)
    assert answered.status_code == 200, answered.json
    assert answered.json["status"] == "answered"
    assert answered.json["answered_by"] == "Sam Specialist"
    outsider = api.get("/api/v1/studies/999/inspection-requests", headers=specialist)
    assert outsider.status_code == 404


def test_services_are_importable(app):  # the blueprint registered, with its routes
    rules = {r.endpoint for r in app.url_map.iter_rules()}
    assert {"api_exchange.start_export_job", "exchange.import_checked"} <= rules
    assert services(app) is not None
