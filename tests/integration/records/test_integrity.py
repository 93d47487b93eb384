"""A stored file that changed is never served, is named by the scrub, and raises an alert
(REC-1); a crash between blob and database leaves one unreferenced blob, which reconcile
finds and never confuses with a referenced one (DESIGN.md invariant 2)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from etmf.audit.models import Event
from etmf.documents.models import Document, DocumentVersion
from storage.errors import BlobIntegrityError
from tests.conftest import make_pdf
from tests.integration.records.conftest import (
    flip_stored_byte,
    local_blob_path,
    run_cli,
    upload_version,
)

REFUSAL = "failed its integrity check; it was not served; your administrator has been alerted"


def _version(svc, doc_id: int, number: int = 1) -> DocumentVersion:
    with svc.db.read_session() as s:
        return s.scalar(select(DocumentVersion).where(DocumentVersion.document_id == doc_id,
                                                      DocumentVersion.number == number))


def _alerts(svc) -> list[Event]:
    with svc.db.read_session() as s:
        return list(s.scalars(select(Event).where(Event.type == "storage.integrity_alert")
                              .order_by(Event.seq)))


@pytest.fixture
def filed(world, svc):
    specialist = world.user("tmf_specialist", name="Sam Specialist")
    qc = world.user("qc_reviewer")
    content = make_pdf("Monitoring Plan", "The monitoring plan of the test study.")
    doc_id = world.document(specialist, title="Monitoring Plan", content=content,
                            state="approved", qc=qc)
    return specialist, doc_id, content


@pytest.mark.req("REC-1")
def test_a_sound_file_downloads_byte_for_byte(filed, login):
    specialist, doc_id, content = filed
    response = login(specialist).get(f"/documents/{doc_id}/versions/1/download")
    assert response.status_code == 200
    assert response.data == content


@pytest.mark.req("FR-STOR-1")
@pytest.mark.req("REC-1")
def test_a_flipped_byte_is_refused_named_by_verify_and_alerted(filed, svc, login, world):
    specialist, doc_id, content = filed
    admin = world.user("admin", email="admin@example.org")
    version = _version(svc, doc_id)
    flip_stored_byte(svc, version.sha256)

    response = login(specialist).get(f"/documents/{doc_id}/versions/1/download")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert REFUSAL in page
    assert "Monitoring Plan" in page and "version 1.0" in page
    assert content[:200] not in response.data and b"%PDF" not in response.data

    alerts = _alerts(svc)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.stream_type, alert.stream_id) == ("blob", version.sha256)
    assert (alert.actor_id, alert.actor_name) == (specialist.id, "Sam Specialist")
    assert '"problem":"corrupt"' in alert.payload and f'"document_id":{doc_id}' in alert.payload
    mailer = svc.mailer
    assert any(admin.email in m.to and "Monitoring Plan" in m.subject for m in mailer.sent)

    result = run_cli(svc.settings, "storage", "verify")
    assert result.exit_code == 1
    assert f"document {doc_id} “Monitoring Plan” version 1.0" in result.output
    assert "is corrupt" in result.output
    assert len(_alerts(svc)) == 2  # the scrub raises its own alert


@pytest.mark.req("REC-1")
def test_a_large_file_is_streamed_and_aborted_before_its_last_bytes(filed, svc, login,
                                                                     monkeypatch):
    import etmf.records.download as download

    specialist, doc_id, content = filed
    monkeypatch.setattr(download, "VERIFY_FIRST_LIMIT", 0)  # stream even this small file
    monkeypatch.setattr(download, "CHUNK", 256)
    flip_stored_byte(svc, _version(svc, doc_id).sha256, index=len(content) - 10)
    client = login(specialist)
    response = client.get(f"/documents/{doc_id}/versions/1/download", buffered=False)
    assert response.status_code == 200  # headers went out before the end was known
    received = b""
    with pytest.raises(BlobIntegrityError):
        for chunk in response.response:
            received += chunk
    assert len(received) < len(content)  # never the whole (corrupt) file
    assert len(_alerts(svc)) == 1


@pytest.mark.req("FR-STOR-1")
@pytest.mark.req("REC-1")
def test_a_missing_file_is_reported_and_alerted(filed, svc, login):
    specialist, doc_id, _content = filed
    path = local_blob_path(svc, _version(svc, doc_id).sha256)
    path.unlink()
    response = login(specialist).get(f"/documents/{doc_id}/versions/1/download")
    assert response.status_code == 500
    assert "is missing from storage; nothing was served" in response.get_data(as_text=True)
    assert '"problem":"missing"' in _alerts(svc)[0].payload
    result = run_cli(svc.settings, "storage", "verify")
    assert result.exit_code == 1
    assert f"document {doc_id} “Monitoring Plan” version 1.0" in result.output
    assert "is missing" in result.output


def test_verify_passes_on_sound_storage(filed, svc):
    result = run_cli(svc.settings, "storage", "verify")
    assert result.exit_code == 0, result.output
    assert "1 blobs (1 versions" in result.output
    assert "every file matches its SHA-256" in result.output
    assert _alerts(svc) == []


@pytest.mark.req("FR-STOR-2")
def test_database_failing_after_the_blob_write_leaves_one_unreferenced_blob(
        filed, svc, login, monkeypatch):
    from etmf.audit.store import UnitOfWork

    specialist, doc_id, _content = filed
    client = login(specialist)

    def database_gone(self):  # a fault in the database, after the blob was written
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(UnitOfWork, "commit", database_gone)
    response = upload_version(client, doc_id, b"Second version, never recorded.\n",
                              label="2.0")
    assert response.status_code == 503
    assert "Nothing was saved" in response.get_data(as_text=True)
    monkeypatch.undo()

    with svc.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(DocumentVersion)) == 1
        assert s.scalar(select(func.count()).select_from(Document)) == 1
    listing = run_cli(svc.settings, "storage", "reconcile")
    assert listing.exit_code == 0, listing.output
    assert "2 blobs in local:" in listing.output
    assert "1 referenced, 1 unreferenced." in listing.output

    moved = run_cli(svc.settings, "storage", "reconcile", "--quarantine")
    assert "1 quarantined" in moved.output
    again = run_cli(svc.settings, "storage", "reconcile")
    assert "1 blobs in local:" in again.output and "0 unreferenced" in again.output
    # The referenced file is untouched and still served.
    assert run_cli(svc.settings, "storage", "verify").exit_code == 0
    assert client.get(f"/documents/{doc_id}/versions/1/download").status_code == 200


@pytest.mark.req("FR-STOR-2")
def test_an_upload_that_succeeds_is_referenced(filed, svc, login):
    specialist, doc_id, _content = filed
    response = upload_version(login(specialist), doc_id, b"Second version.\n", label="2.0")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/documents/{doc_id}")
    result = run_cli(svc.settings, "storage", "reconcile")
    assert "2 referenced, 0 unreferenced." in result.output
