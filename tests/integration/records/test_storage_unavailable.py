"""S3 stops in the middle of an upload: the person is told storage is unavailable and no
record points at a file that was never stored (DESIGN.md invariant 2)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import etmf.documents.upload as upload
from etmf.documents.models import Document, DocumentVersion
from tests.integration.records.conftest import upload_version


@pytest.fixture
def settings_overrides(s3_bucket):
    """The app of these tests stores its files in a bucket on moto's S3 server."""
    options = s3_bucket.store_options()
    return {"storage_backend": "s3", "s3_bucket": s3_bucket.name,
            "s3_endpoint_url": options["endpoint_url"], "s3_region": options["region"],
            "s3_access_key": options["access_key"], "s3_secret_key": options["secret_key"]}


@pytest.fixture
def s3_dies_during_the_upload(moto_server, monkeypatch):
    """Stop the S3 server once the upload has arrived and passed its checks, just as its
    bytes are about to be written; restart it afterwards for the other tests."""
    real = upload.inspect_upload

    def inspect_then_lose_storage(*args, **kwargs):
        checked = real(*args, **kwargs)
        moto_server.stop()
        return checked

    monkeypatch.setattr(upload, "inspect_upload", inspect_then_lose_storage)
    yield
    moto_server.start()


def _counts(svc) -> tuple[int, int]:
    with svc.db.read_session() as s:
        return (s.scalar(select(func.count()).select_from(Document)),
                s.scalar(select(func.count()).select_from(DocumentVersion)))


@pytest.fixture
def document(world):
    specialist = world.user("tmf_specialist")
    return specialist, world.document(specialist, title="Site Monitoring Plan")


@pytest.mark.req("FR-STOR-3")
@pytest.mark.parametrize("as_json", [False, True], ids=["page", "json"])
def test_s3_stopping_mid_upload_gives_503_and_stores_nothing(document, svc, login,
                                                             s3_dies_during_the_upload,
                                                             as_json):
    specialist, doc_id = document
    assert svc.blobs.describe().startswith("s3://")
    before = _counts(svc)
    client = login(specialist)
    headers = {"Accept": "application/json"} if as_json else {}
    response = upload_version(client, doc_id, b"Version two of the plan.\n", label="2.0",
                              headers=headers)
    assert response.status_code == 503
    if as_json:
        error = response.get_json()["error"]
        assert error["code"] == "storage_unavailable"
        assert "storage is unavailable" in error["title"].lower()
        assert "Nothing was saved" in error["message"]
    else:
        page = response.get_data(as_text=True)
        assert "Document storage is unavailable" in page
        assert "Nothing was saved" in page
    assert _counts(svc) == before  # no document, no version row


@pytest.mark.req("FR-STOR-3")
def test_s3_down_before_a_new_filing_leaves_no_document(world, svc, login, moto_server):
    from tests.conftest import csrf_from

    specialist = world.user("tmf_specialist")
    client = login(specialist)
    html = client.get(f"/studies/{world.study_id}/file").get_data(as_text=True)
    moto_server.stop()
    try:
        import io

        response = client.post(
            f"/studies/{world.study_id}/file",
            data={"csrf_token": csrf_from(html),
                  "files": (io.BytesIO(b"Minutes of the site initiation visit.\n"),
                            "siv-minutes.txt")},
            content_type="multipart/form-data")
    finally:
        moto_server.start()
    assert response.status_code == 503
    assert "Document storage is unavailable" in response.get_data(as_text=True)
    assert _counts(svc) == (0, 0)
