"""Fixtures for the records tests: CLI runs against the test app, byte flips in the local
store, a second empty instance to restore into, and an upload through the web form."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.conftest import csrf_from, postgres_url


def run_cli(settings, *args: str) -> Result:  # type: ignore[no-untyped-def]
    """Run an `etmf` command against the instance of ``settings`` (its database too)."""
    from etmf.cli import main

    env = {"ETMF_DATABASE_URL": settings.database_url or None}
    return CliRunner().invoke(main, [*args, "--instance", str(settings.instance_path)],
                              env=env, catch_exceptions=False)


def local_blob_path(svc, sha256: str) -> Path:  # type: ignore[no-untyped-def]
    return svc.settings.blob_path / sha256[:2] / sha256[2:4] / sha256


def flip_stored_byte(svc, sha256: str, index: int = 100) -> None:  # type: ignore[no-untyped-def]
    """What bit rot or a tamperer with shell access does to a write-once file."""
    path = local_blob_path(svc, sha256)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)


@dataclass
class EmptyInstance:
    path: Path
    database_url: str


@pytest.fixture
def empty_instance(tmp_path: Path) -> Iterator[EmptyInstance]:
    """A second instance with a database of its own that holds nothing (not even a schema)."""
    folder = tmp_path / "restored"
    folder.mkdir()
    url = postgres_url()
    if url is None:
        yield EmptyInstance(folder, f"sqlite:///{folder / 'etmf.db'}")
        return
    name = f"etmf_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield EmptyInstance(folder, make_url(url).set(database=name)
                        .render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def upload_version(client, document_id: int, content: bytes, *, label: str,  # type: ignore[no-untyped-def]
                   filename: str = "new.txt", headers: dict[str, str] | None = None):
    """Upload new content for a document through its page's form."""
    page = client.get(f"/documents/{document_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    from etmf.bootstrap import services

    with client.application.app_context():
        from etmf.documents.models import Document

        with services().db.read_session() as s:
            version = s.get(Document, document_id).version
    return client.post(
        f"/documents/{document_id}/versions",
        data={"csrf_token": csrf_from(html), "version": str(version), "label": label,
              "file": (io.BytesIO(content), filename)},
        headers=headers or {}, content_type="multipart/form-data")

