"""Receiving a file: spool to disk, check it, write the blob. The database comes after.

Order matters (DESIGN.md invariant 2): the blob is written and verified before the
transaction that references it, so a crash leaves at most an unreferenced blob.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from etmf.documents.intake import RejectedFile, inspect_upload
from etmf.documents.services import StoredFile
from etmf.errors import BadUpload, UploadTooLarge

ALLOWED_TYPES = frozenset(
    {
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/plain",
        "image/png",
        "image/jpeg",
        "image/tiff",
    }
)
CHUNK = 1024 * 1024


@contextmanager
def spooled(stream: BinaryIO, directory: Path, max_bytes: int) -> Iterator[Path]:
    """Copy an upload stream to a private temporary file, refusing it past ``max_bytes``."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    path = Path(name)
    try:
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise UploadTooLarge(
                        f"The file is larger than the limit of {max_bytes // (1024 * 1024)} MB."
                    )
                out.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)


def receive_file(
    blobs, stream: BinaryIO, filename: str, *, tmp_dir: Path, max_bytes: int,  # type: ignore[no-untyped-def]
) -> StoredFile:
    """Check an uploaded file and write it to blob storage; returns what to record."""
    with spooled(stream, tmp_dir, max_bytes) as path:
        return store_checked(blobs, path, filename, max_bytes=max_bytes)


def store_checked(blobs, path: Path, filename: str, *, max_bytes: int) -> StoredFile:  # type: ignore[no-untyped-def]
    """Run the intake checks on a spooled file, then write it to blob storage."""
    try:
        checked = inspect_upload(
            path, filename, max_bytes=max_bytes, allowed_types=ALLOWED_TYPES
        )
    except RejectedFile as exc:
        if exc.code == "too_large":
            raise UploadTooLarge(exc.message) from None
        raise BadUpload(exc.message, detail={"reason": exc.code}) from None
    with path.open("rb") as fh:
        ref = blobs.put(fh)
    if ref.sha256 != checked.sha256:  # the file changed between check and store
        raise BadUpload("The file changed while it was being stored; upload it again.")
    return StoredFile(
        sha256=ref.sha256, size=ref.size, mime=checked.detected.mime,
        filename=checked.filename, page_count=checked.page_count,
    )

