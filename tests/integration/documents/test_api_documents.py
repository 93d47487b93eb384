"""The documents API (/api/v1): file with metadata, add a version, transition, download,
browse and search — with a bearer token, JSON errors and the same rules as the pages."""

from __future__ import annotations

import io
import re

import pytest

from tests.integration.accounts.conftest import post_form
from tests.integration.documents.conftest import pdf


def _token(client) -> str:  # type: ignore[no-untyped-def]
    response = post_form(client, "/account/tokens", {"name": "ci", "days": 30},
                         page="/account/")
    return re.search(r'data-testid="new-token">([^<]+)<',
                     response.get_data(as_text=True)).group(1)


@pytest.fixture
def api(world, login, app):
    specialist = world.user("tmf_specialist")
    qc = world.user("qc_reviewer")
    spec_auth = {"Authorization": f"Bearer {_token(login(specialist))}"}
    qc_client = app.test_client()
    from tests.conftest import PASSWORD, csrf_from

    page = qc_client.get("/login").get_data(as_text=True)
    qc_client.post("/login", data={"email": qc.email, "password": PASSWORD,
                                   "csrf_token": csrf_from(page)})
    qc_auth = {"Authorization": f"Bearer {_token(qc_client)}"}
    return app.test_client(), spec_auth, qc_auth


def _file(client, auth, study_id, **fields):  # type: ignore[no-untyped-def]
    data = {"artifact": "02.01.02", "title": "Protocol v3", "level": "trial",
            "document_date": "2026-03-01",
            "file": (io.BytesIO(pdf("Protocol", "capybara cohort")), "protocol.pdf"),
            **fields}
    return client.post(f"/api/v1/studies/{study_id}/documents", data=data, headers=auth,
                       content_type="multipart/form-data")


@pytest.mark.req("ACC-8")
def test_file_version_transition_download_browse_and_search(world, api, svc):
    client, spec, qc = api
    filed = _file(client, spec, world.study_id)
    assert filed.status_code == 201, filed.json
    doc = filed.json
    assert doc["status"] == "draft" and doc["versions"][0]["label"] == "1.0"
    moved = client.post(f"/api/v1/documents/{doc['id']}/transition", headers=spec,
                        json={"action": "submit_qc", "expected_version": doc["version"]})
    assert moved.status_code == 200 and moved.json["status"] == "in_qc"
    rejected = client.post(f"/api/v1/documents/{doc['id']}/transition", headers=qc,
                           json={"action": "reject", "expected_version": 2,
                                 "qc_issues": [{"category": "Other", "comment": "Blurred"}]})
    assert rejected.status_code == 200 and rejected.json["status"] == "draft"
    new = client.post(f"/api/v1/documents/{doc['id']}/versions", headers=spec,
                      data={"expected_version": "3", "kind": "minor",
                            "file": (io.BytesIO(pdf("Protocol", "v3.1")), "p31.pdf")},
                      content_type="multipart/form-data")
    assert new.status_code == 201
    assert [v["label"] for v in new.json["versions"]] == ["1.0", "1.1"]
    for version in new.json["versions"]:
        content = client.get(version["download_url"], headers=spec)
        assert content.status_code == 200 and content.data.startswith(b"%PDF")
    listing = client.get(f"/api/v1/studies/{world.study_id}/documents", headers=qc).json
    assert listing["total"] == 1
    tree = client.get(f"/api/v1/studies/{world.study_id}/tree", headers=qc).json
    assert tree["zones"][0]["sections"][0]["artifacts"][0]["number"] == "02.01.02"
    from etmf.documents import indexing

    assert indexing.flush(svc)
    found = client.get("/api/v1/search?q=protocol", headers=spec).json
    assert found["total"] == 1 and found["hits"][0]["document_id"] == doc["id"]


def test_api_errors_are_json_and_nothing_is_half_stored(world, api, svc):
    client, spec, qc = api
    bad = _file(client, spec, world.study_id, artifact="99.99.99")
    assert bad.status_code == 400
    assert "is not an artifact" in bad.json["error"]["message"]
    exe = _file(client, spec, world.study_id,
                file=(io.BytesIO(b"MZ" + bytes(100)), "x.pdf"))
    assert exe.status_code == 400 and "Windows executable" in exe.json["error"]["message"]
    assert client.get(f"/api/v1/studies/{world.study_id}/documents", headers=spec
                      ).json["total"] == 0
    doc = _file(client, spec, world.study_id).json
    stale = client.post(f"/api/v1/documents/{doc['id']}/transition", headers=spec,
                        json={"action": "submit_qc", "expected_version": 7})
    assert stale.status_code == 409 and stale.json["error"]["code"] == "conflict"
    unauth = client.get(f"/api/v1/documents/{doc['id']}")
    assert unauth.status_code == 401
    not_qc = client.post(f"/api/v1/documents/{doc['id']}/transition", headers=spec,
                         json={"action": "approve", "expected_version": 1})
    assert not_qc.status_code == 403


def test_the_openapi_document_lists_the_document_operations(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/studies/{study_id}/documents", "/documents/{document_id}/transition",
            "/documents/{document_id}/versions", "/search",
            "/studies/{study_id}/tree"} <= set(paths)


def _stored_blobs(svc) -> set[str]:  # type: ignore[no-untyped-def]
    return {ref.sha256 for ref in svc.blobs.iter_refs()}


@pytest.mark.req("ACC-8")
def test_the_filing_answer_is_the_stored_document_and_fills_a_waiting_placeholder(
        world, api, svc):
    from etmf.tracking import services as tracking
    from etmf.tracking.services import Scope

    client, spec, _qc = api
    filed = _file(client, spec, world.study_id, person="Dr Ada", expiry_date="2027-03-01")
    assert filed.status_code == 201
    assert filed.json == client.get(f"/api/v1/documents/{filed.json['id']}",
                                    headers=spec).json  # the answer is what a read sees
    manager = world.user("study_manager")
    with world.uow(manager.name, manager.id) as uow:
        tracking.add_entry(uow, world.access(manager), world.study_id, Scope("trial"),
                           "02.01.03", milestone="01")
        assert tracking.create_placeholders(uow, world.access(manager), world.study_id) == 1
        uow.commit()
    waiting = client.get(f"/api/v1/studies/{world.study_id}/documents?status=placeholder",
                         headers=spec).json
    filled = _file(client, spec, world.study_id, artifact="02.01.03", title="Amendment 1")
    assert filled.status_code == 201
    assert filled.json["id"] in [d["id"] for d in waiting["documents"]]
    assert (filled.json["status"], filled.json["title"]) == ("draft", "Amendment 1")
    assert [v["number"] for v in filled.json["versions"]] == [1]
    assert filled.json == client.get(f"/api/v1/documents/{filled.json['id']}",
                                     headers=spec).json


@pytest.mark.req("ACC-2")
def test_filing_into_a_study_without_a_part_in_it_is_refused_before_the_file_is_stored(
        world, api, app, svc):
    from etmf.accounts.services import create_api_token
    from etmf.studies.services import NewStudy, create_study

    client, specialist, _qc = api
    monitor = world.user("monitor")  # may read the study, not file into it
    with app.app_context(), world.uow() as uow:
        other = create_study(uow, NewStudy(protocol_number="OTH-9", title="Other",
                                           phase="I", sponsor="S"))
        monitor_token = create_api_token(uow, monitor.id, "ci", 30)
        uow.commit()
    monitor_auth = {"Authorization": f"Bearer {monitor_token}"}
    before = _stored_blobs(svc)
    for auth, study_id, status in ((specialist, other, 404), (specialist, 999, 404),
                                   (monitor_auth, world.study_id, 403)):
        refused = _file(client, auth, study_id,
                        file=(io.BytesIO(pdf("Secret", f"never stored {study_id}")), "s.pdf"))
        assert refused.status_code == status, refused.json
        assert refused.json["error"]["status"] == status
    assert _stored_blobs(svc) == before
