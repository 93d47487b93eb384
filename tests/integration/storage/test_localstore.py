"""LocalStore behaviour beyond the shared contract: files on disk, temp files, refusals."""

from __future__ import annotations

import io
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import (
    BlobRef,
    LocalStore,
    RetentionNotSupported,
    StorageUnavailable,
)
from tests.integration.storage.helpers import FailingStream, StreamBrokenError, sha256_hex


def blob_path(root: Path, digest: str) -> Path:
    return root / digest[:2] / digest[2:4] / digest


def test_blob_is_filed_under_its_digest_and_read_only_once_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    ref = store.put(io.BytesIO(b"ethics committee approval"))

    path = blob_path(tmp_path, ref.sha256)
    assert path.read_bytes() == b"ethics committee approval"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    if os.geteuid() != 0:  # root writes through permission bits
        with pytest.raises(PermissionError):
            path.open("r+b").close()


def test_storing_the_same_bytes_again_never_replaces_the_existing_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ref = store.put(io.BytesIO(b"signed CV"))
    first_inode = blob_path(tmp_path, ref.sha256).stat().st_ino

    store.put(io.BytesIO(b"signed CV"))

    assert blob_path(tmp_path, ref.sha256).stat().st_ino == first_inode


def test_failed_put_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, chunk_size=1024)

    with pytest.raises(StreamBrokenError):
        store.put(FailingStream(good_bytes=10_000))

    assert list((tmp_path / "incoming").iterdir()) == []
    assert list(store.iter_refs()) == []


def test_successful_puts_leave_no_temporary_file_behind(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    for n in range(3):
        store.put(io.BytesIO(b"page %d" % n))

    assert list((tmp_path / "incoming").iterdir()) == []


def test_stray_files_in_the_store_folder_are_not_listed_as_blobs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ref = store.put(io.BytesIO(b"real blob"))
    (tmp_path / "ab" / "cd").mkdir(parents=True)
    (tmp_path / "ab" / "cd" / "notes.txt").write_text("not a blob")
    (tmp_path / "ab" / "cd" / ("ef" * 32)).write_text("digest not matching its folder")
    (tmp_path / "README").write_text("operator notes")

    assert list(store.iter_refs()) == [BlobRef(ref.sha256, ref.size)]


def test_quarantine_moves_the_file_aside_and_keeps_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ref = store.put(io.BytesIO(b"orphan from a crashed upload"))

    store.quarantine(ref)

    assert (tmp_path / "quarantine" / ref.sha256).read_bytes() == b"orphan from a crashed upload"
    assert not blob_path(tmp_path, ref.sha256).exists()


def test_retention_and_legal_hold_are_refused_not_silently_ignored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ref = store.put(io.BytesIO(b"final record"))

    assert store.supports_retention is False
    with pytest.raises(RetentionNotSupported, match="cannot enforce retention"):
        store.retain(ref, datetime(2050, 1, 1, tzinfo=UTC))
    with pytest.raises(RetentionNotSupported):
        store.set_legal_hold(ref, True)


def test_missing_store_folder_fails_the_health_check(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "volume")
    (tmp_path / "volume" / "incoming").rmdir()
    (tmp_path / "volume").rmdir()

    with pytest.raises(StorageUnavailable, match="is the volume mounted"):
        store.health()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through folder permissions")
def test_unwritable_store_folder_reports_the_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "incoming").chmod(0o555)
    try:
        with pytest.raises(StorageUnavailable, match=str(tmp_path)):
            store.put(io.BytesIO(b"x"))
    finally:
        (tmp_path / "incoming").chmod(0o755)


def test_store_describes_itself_by_its_absolute_folder(tmp_path: Path) -> None:
    assert LocalStore(tmp_path).describe() == f"local:{tmp_path}"
    assert sha256_hex(b"") in str(blob_path(tmp_path, sha256_hex(b"")))
