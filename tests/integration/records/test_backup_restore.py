"""Backup, restore into an empty instance, verify: every checksum matches, the audit chain
comes back byte for byte with the recorded head, and the restored server serves the
documents (REC-4). A damaged backup or a non-empty target is refused before anything is
written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from etmf.audit.models import Event
from etmf.audit.service import create_checkpoint
from etmf.bootstrap import shutdown
from tests.conftest import FROZEN_AT, PASSWORD, csrf_from, make_pdf
from tests.integration.records.conftest import run_cli


def _events(svc_or_engine_session) -> list[tuple]:
    with svc_or_engine_session.db.read_session() as s:
        return [(e.seq, e.type, e.payload, e.actor_name, e.occurred_at, e.prev_hash, e.hash)
                for e in s.scalars(select(Event).order_by(Event.seq))]


@pytest.fixture
def source(world, svc):
    """An instance with approved documents, two versions of one, and a checkpoint."""
    specialist = world.user("tmf_specialist", email="sam@example.org", name="Sam Specialist")
    qc = world.user("qc_reviewer")
    contents = {}
    for title in ("Protocol v2", "Investigator Brochure", "Site Monitoring Plan"):
        contents[title] = make_pdf(title, f"The text of the {title}.")
        world.document(specialist, title=title, content=contents[title], state="approved",
                       qc=qc)
    with svc.db.read_session() as session:
        create_checkpoint(session, svc.settings, svc.clock.now())
    return specialist, contents


def _restored_app(instance, database_url):  # type: ignore[no-untyped-def]
    from etmf import create_app
    from etmf.bootstrap import services
    from etmf.clock import FrozenClock
    from etmf.settings import load_settings

    app = create_app(load_settings(overrides={
        "instance_path": str(instance), "database_url": database_url, "testing": True,
        "log_level": "WARNING", "jobs_runner": "inline"}, environ={}))
    services(app).clock = FrozenClock(FROZEN_AT)
    return app


@pytest.mark.req("REC-4")
def test_backup_restore_verify_round_trip(source, svc, tmp_path, empty_instance):
    specialist, contents = source
    backup = tmp_path / "backup-1"
    made = run_cli(svc.settings, "backup", "create", str(backup))
    assert made.exit_code == 0, made.output
    manifest = json.loads((backup / "manifest.json").read_text())
    events = _events(svc)
    assert manifest["audit_head"] == {"seq": events[-1][0], "hash": events[-1][-1]}
    assert len(manifest["blobs"]) == 3 and len(manifest["checkpoints"]) == 1

    restored = run_cli(_target_settings(empty_instance), "backup", "restore", str(backup))
    assert restored.exit_code == 0, restored.output
    assert "every checksum matches" in restored.output
    assert f"head {events[-1][0]} {events[-1][-1][:16]}" in restored.output

    app = _restored_app(empty_instance.path, empty_instance.database_url)
    try:
        from etmf.bootstrap import services

        target = services(app)
        assert _events(target) == events  # byte for byte: never re-chained
        verified = run_cli(target.settings, "audit", "verify")
        assert verified.exit_code == 0, verified.output
        assert "Checkpoints: 1 verified." in verified.output
        assert run_cli(target.settings, "storage", "verify").exit_code == 0

        client = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        signed_in = client.post("/login", data={"email": specialist.email,
                                                "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 302
        from etmf.documents.models import Document

        with target.db.read_session() as s:
            docs = {d.title: d.id for d in s.scalars(select(Document))}
        for title, content in contents.items():
            response = client.get(f"/documents/{docs[title]}/versions/1/download")
            assert response.status_code == 200
            assert response.data == content
    finally:
        shutdown(app)


def _target_settings(empty_instance):  # type: ignore[no-untyped-def]
    from etmf.settings import load_settings

    return load_settings(overrides={"instance_path": str(empty_instance.path),
                                    "database_url": empty_instance.database_url},
                         environ={})


def _target_is_empty(empty_instance) -> None:
    app = _restored_app(empty_instance.path, empty_instance.database_url)
    from etmf.bootstrap import services

    target = services(app)
    try:
        from sqlalchemy import inspect

        if "audit_events" in inspect(target.db.engine).get_table_names():
            assert _events(target) == []
        assert list(target.blobs.iter_refs()) == []
    finally:
        shutdown(app)


@pytest.mark.req("REC-4")
def test_restore_refuses_a_blob_that_does_not_match_the_manifest(source, svc, tmp_path,
                                                                 empty_instance):
    backup = tmp_path / "backup-2"
    assert run_cli(svc.settings, "backup", "create", str(backup)).exit_code == 0
    manifest = json.loads((backup / "manifest.json").read_text())
    blob = backup / manifest["blobs"][1]["path"]
    data = bytearray(blob.read_bytes())
    data[50] ^= 0x01
    blob.write_bytes(bytes(data))

    refused = run_cli(_target_settings(empty_instance), "backup", "restore", str(backup))
    assert refused.exit_code == 1
    assert f"blob {manifest['blobs'][1]['path']}" in refused.output
    assert "does not match" in refused.output or "but the manifest records" in refused.output
    assert "Nothing was restored" in refused.output
    _target_is_empty(empty_instance)


@pytest.mark.req("REC-4")
def test_restore_refuses_an_altered_manifest_checksum(source, svc, tmp_path, empty_instance):
    backup = tmp_path / "backup-3"
    assert run_cli(svc.settings, "backup", "create", str(backup)).exit_code == 0
    path = backup / "manifest.json"
    manifest = json.loads(path.read_text())
    name = next(iter(manifest["database"]["files"]))
    manifest["database"]["files"][name] = "0" * 64
    path.write_text(json.dumps(manifest))
    refused = run_cli(_target_settings(empty_instance), "backup", "restore", str(backup))
    assert refused.exit_code == 1
    assert f"database file {name}" in refused.output
    assert "Nothing was restored" in refused.output
    _target_is_empty(empty_instance)


def test_restore_refuses_an_instance_that_has_records(source, svc, tmp_path):
    backup = tmp_path / "backup-4"
    assert run_cli(svc.settings, "backup", "create", str(backup)).exit_code == 0
    before = _events(svc)
    refused = run_cli(svc.settings, "backup", "restore", str(backup))
    assert refused.exit_code == 1
    assert "restored into an empty instance only" in refused.output
    assert _events(svc) == before


def test_backup_refuses_an_existing_folder_and_a_corrupt_blob(source, svc, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("keep me")
    result = run_cli(svc.settings, "backup", "create", str(taken))
    assert result.exit_code == 1
    assert "is not an empty folder" in result.output
    assert (taken / "something").read_text() == "keep me"

    from etmf.documents.models import DocumentVersion
    from tests.integration.records.conftest import flip_stored_byte

    with svc.db.read_session() as s:
        digest = s.scalars(select(DocumentVersion.sha256)).first()
    flip_stored_byte(svc, digest)
    result = run_cli(svc.settings, "backup", "create", str(tmp_path / "bad"))
    assert result.exit_code == 1
    assert f"Blob {digest} could not be backed up" in result.output
    assert not any(p.name.startswith("bad") for p in Path(tmp_path).iterdir())
