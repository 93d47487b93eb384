"""LocalStore: content-addressed, write-once blobs in a local folder (the embedded default).

Layout under ``root``::

    ab/cd/abcd…(64 hex)   one read-only file (0o444) per blob, named by its SHA-256
    incoming/             temporary files of puts in progress (same filesystem, so links
                          and renames are atomic); a crash mid-put can leave a put-*.part
                          file here, safe to delete once no put is running
    quarantine/<digest>   blobs moved aside by ``quarantine`` (``etmf storage reconcile``)

A put streams into a temporary file under ``incoming/`` while hashing, fsyncs it, makes it
read-only, then hard-links it to its content path. ``link`` fails if the name exists, so an
existing blob is never overwritten, and concurrent puts of the same bytes simply find their
twin already in place. The folder entry is fsynced before ``put`` returns, so a database row
that references the blob never outlives it in a crash. Only a validated 64-hex digest ever
becomes part of a path.

Retention is not enforceable on a plain filesystem (an administrator can always delete a file):
``supports_retention`` is False and ``retain``/``set_legal_hold`` raise
``RetentionNotSupported``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

from storage.base import (
    BlobRef,
    RefLike,
    RetentionMode,
    SupportsRead,
    retention_deadline,
    split_ref,
    validate_digest,
)
from storage.errors import (
    BlobIntegrityError,
    BlobNotFound,
    RetentionNotSupported,
    StorageMisconfigured,
    StorageUnavailable,
)
from storage.reader import DEFAULT_CHUNK_SIZE, BlobReader

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
# Filesystems without hard links (some network and FUSE mounts) answer with one of these.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class LocalStore:
    """Blob store in a local folder. See the module docstring for layout and guarantees."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        retention_years: int = 25,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """Use ``root`` (created if missing) as the store's folder."""
        self.root = Path(os.path.abspath(root))
        self.retention_years = retention_years
        self.chunk_size = chunk_size
        self._incoming = self.root / "incoming"
        self._quarantine = self.root / "quarantine"
        with self._filesystem("create the storage folder"):
            self._incoming.mkdir(parents=True, exist_ok=True)

    @property
    def supports_retention(self) -> bool:
        """A folder cannot enforce retention: always False."""
        return False

    def describe(self) -> str:
        """Return ``local:<absolute path>``."""
        return f"local:{self.root}"

    def put(self, stream: SupportsRead, expected_sha256: str | None = None) -> BlobRef:
        """Store the stream under its SHA-256 (see ``BlobStore.put``); durable on return."""
        if expected_sha256 is not None:
            validate_digest(expected_sha256)
        with self._filesystem("create a temporary file"):
            fd, temp_name = tempfile.mkstemp(dir=self._incoming, prefix="put-", suffix=".part")
        temp_path = Path(temp_name)
        try:
            digest, size = self._write_hashing(fd, stream)
            if expected_sha256 is not None and digest != expected_sha256:
                raise BlobIntegrityError.unexpected_upload(expected_sha256, digest, self.describe())
            with self._filesystem(f"store blob {digest}"):
                os.chmod(temp_path, _READ_ONLY)
                self._link_into_place(temp_path, self._path(digest))
        finally:
            _remove_quietly(temp_path)
        return BlobRef(sha256=digest, size=size, version_id=None)

    def open(self, ref: RefLike) -> BlobReader:
        """Open a blob for a verifying read; ``BlobNotFound`` if it is not stored."""
        digest, _ = split_ref(ref)
        try:
            handle = open(self._path(digest), "rb", buffering=0)  # noqa: SIM115 - reader owns it
        except FileNotFoundError:
            raise BlobNotFound(digest, self.describe()) from None
        except OSError as exc:
            raise _unavailable(f"open blob {digest}", self.root, exc) from exc
        size = os.fstat(handle.fileno()).st_size

        def read_source(n: int) -> bytes:
            try:
                return handle.read(n) or b""
            except OSError as exc:
                raise _unavailable(f"read blob {digest}", self.root, exc) from exc

        return BlobReader(
            digest,
            read_source,
            handle.close,
            self.describe(),
            size=size,
            chunk_size=self.chunk_size,
        )

    def exists(self, ref: RefLike) -> bool:
        """Tell whether the blob's file is present."""
        digest, _ = split_ref(ref)
        with self._filesystem(f"look up blob {digest}"):
            return self._path(digest).is_file()

    def iter_refs(self) -> Iterator[BlobRef]:
        """Yield every blob in the content folders; stray files are ignored."""
        with self._filesystem("list blobs"):
            for top in _hex_dirs(self.root):
                for middle in _hex_dirs(top):
                    yield from self._refs_in(middle, top.name + middle.name)

    def retain(self, ref: RefLike, until: datetime, mode: RetentionMode | None = None) -> None:
        """Refuse: a folder cannot enforce retention."""
        split_ref(ref)
        raise self._no_retention()

    def retention_until(self, now: datetime) -> datetime:
        """The retention end a record finalised at ``now`` would get (for display only here)."""
        return retention_deadline(now, self.retention_years)

    def set_legal_hold(self, ref: RefLike, on: bool) -> None:
        """Refuse: a folder cannot enforce a legal hold."""
        split_ref(ref)
        raise self._no_retention()

    def quarantine(self, ref: RefLike) -> None:
        """Move the blob's file to ``quarantine/<digest>``: no longer served, never deleted."""
        digest, _ = split_ref(ref)
        source = self._path(digest)
        with self._filesystem(f"quarantine blob {digest}"):
            self._quarantine.mkdir(exist_ok=True)
            try:
                os.replace(source, self._quarantine / digest)
            except FileNotFoundError:
                raise BlobNotFound(digest, self.describe()) from None
            _fsync_dir(self._quarantine)
            _fsync_dir(source.parent)

    def health(self) -> None:
        """Check that the folder exists and a file can be created in it."""
        if not self.root.is_dir():
            raise StorageUnavailable(
                f"The storage folder {self.root} does not exist or is not a folder "
                "(is the volume mounted?)."
            )
        try:
            fd, name = tempfile.mkstemp(dir=self._incoming, prefix="health-")
        except OSError as exc:
            raise StorageMisconfigured(
                f"Cannot write in the storage folder {self.root}: {exc.strerror}. "
                "Check its permissions and free space."
            ) from exc
        os.close(fd)
        _remove_quietly(Path(name))

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def _write_hashing(self, fd: int, stream: SupportsRead) -> tuple[str, int]:
        """Copy the stream into ``fd`` while hashing; fsync; return digest and size.

        Errors raised by the caller's stream propagate unchanged; only our own writes are
        reported as storage errors.
        """
        hasher, size = hashlib.sha256(), 0
        with open(fd, "wb", buffering=0) as out:
            while chunk := stream.read(self.chunk_size):
                hasher.update(chunk)
                size += len(chunk)
                with self._filesystem("write a blob"):
                    _write_all(out.write, chunk)
            with self._filesystem("flush a blob to disk"):
                os.fsync(out.fileno())
        return hasher.hexdigest(), size

    def _link_into_place(self, temp_path: Path, final: Path) -> None:
        """Give the finished temporary file its content name without overwriting anything."""
        _make_dir_durably(final.parent.parent)
        _make_dir_durably(final.parent)
        try:
            os.link(temp_path, final)
        except FileExistsError:
            pass  # the same bytes are already stored: write-once, keep the existing file
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if not final.exists():  # no hard links here: a rename, racing only with twins
                os.replace(temp_path, final)
        _fsync_dir(final.parent)

    def _refs_in(self, folder: Path, prefix: str) -> Iterator[BlobRef]:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if len(name) == 64 and name.startswith(prefix) and entry.is_file():
                    try:
                        validate_digest(name)
                    except ValueError:
                        continue
                    yield BlobRef(sha256=name, size=entry.stat().st_size)

    def _no_retention(self) -> RetentionNotSupported:
        return RetentionNotSupported(
            f"The store {self.describe()} is a local folder and cannot enforce retention or "
            "legal hold. Use an S3 bucket with Object Lock for write-once final records."
        )

    @contextmanager
    def _filesystem(self, action: str) -> Iterator[None]:
        """Report operating-system failures of our own file operations as storage errors."""
        try:
            yield
        except OSError as exc:
            raise _unavailable(action, self.root, exc) from exc


def _unavailable(action: str, root: Path, exc: OSError) -> StorageUnavailable:
    reason = exc.strerror or str(exc)
    return StorageUnavailable(f"Could not {action} in the storage folder {root}: {reason}.")


def _write_all(write: Callable[[memoryview], int | None], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = write(view) or 0
        view = view[written:]


def _hex_dirs(folder: Path) -> Iterator[Path]:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.is_dir() and len(e.name) == 2]
    for name in names:
        if all(c in "0123456789abcdef" for c in name):
            yield folder / name


def _make_dir_durably(folder: Path) -> None:
    """Create ``folder`` if missing and fsync its parent so the new entry survives a crash."""
    try:
        folder.mkdir()
    except FileExistsError:
        return
    _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()
