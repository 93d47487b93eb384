"""A read stream that verifies a blob's SHA-256 while it is read.

The reader keeps the next bytes one step ahead of the consumer: it hands bytes out only when it
knows more bytes follow them, or when it has reached the end and the digest matched. So the
final chunk is withheld when the hash does not match, and a consumer can never assemble a
complete copy of corrupt content (REC-1).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from storage.errors import BlobIntegrityError, StorageError

DEFAULT_CHUNK_SIZE = 1024 * 1024


class BlobReader(io.RawIOBase):
    """A verifying, read-only, non-seekable binary stream over one stored blob.

    Use it as a context manager; ``read(n)`` returns up to ``n`` bytes; iterating yields chunks
    of ``chunk_size`` bytes (not lines). ``BlobIntegrityError`` is raised by the read that
    reaches the end if the bytes do not hash to ``sha256``; every later read raises it again.
    """

    def __init__(
        self,
        sha256: str,
        read_source: Callable[[int], bytes],
        close_source: Callable[[], None],
        where: str,
        size: int | None = None,
        version_id: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__()
        self.sha256 = sha256
        self.size = size
        self.version_id = version_id
        self._read_source = read_source
        self._close_source = close_source
        self._where = where
        self._chunk_size = chunk_size
        self._hash = hashlib.sha256()
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._failure: StorageError | None = None

    @property
    def verified(self) -> bool:
        """True once the whole blob has been read and its digest matched."""
        return self._eof and self._failure is None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` verified-so-far bytes (all remaining bytes if ``size < 0``)."""
        self._check_usable()
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        self._fill(size)
        end = min(self._pos + size, len(self._buf))
        data = self._buf[self._pos : end]
        self._pos = end
        return data

    def readall(self) -> bytes:
        """Return every remaining byte, after the digest has been checked."""
        self._check_usable()
        pieces = [self._buf[self._pos :]]
        while not self._eof:
            chunk = self._next_source_chunk()
            if chunk:
                pieces.append(chunk)
        self._buf, self._pos = b"", 0
        return b"".join(pieces)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __iter__(self) -> BlobReader:
        return self

    def __next__(self) -> bytes:
        chunk = self.read(self._chunk_size)
        if not chunk:
            raise StopIteration
        return chunk

    def __enter__(self) -> BlobReader:
        return self

    def close(self) -> None:
        if not self.closed:
            try:
                self._close_source()
            finally:
                super().close()

    def _check_usable(self) -> None:
        if self.closed:
            raise ValueError(f"The reader of blob {self.sha256} is closed.")
        if self._failure is not None:
            raise self._failure

    def _fill(self, want: int) -> None:
        """Buffer more than ``want`` bytes, or everything up to the verified end."""
        available = len(self._buf) - self._pos
        if self._eof or available > want:
            return
        pieces = [self._buf[self._pos :]]
        while available <= want and not self._eof:
            chunk = self._next_source_chunk()
            pieces.append(chunk)
            available += len(chunk)
        self._buf, self._pos = b"".join(pieces), 0

    def _next_source_chunk(self) -> bytes:
        """Read, hash and return the next source chunk; at the end, verify (may raise)."""
        chunk = self._read_source(self._chunk_size)
        if chunk:
            self._hash.update(chunk)
            return chunk
        self._eof = True
        actual = self._hash.hexdigest()
        if actual != self.sha256:
            # Drop what is buffered so that not one more byte of the corrupt blob is served.
            self._buf, self._pos = b"", 0
            self._failure = BlobIntegrityError(self.sha256, actual, self._where)
            raise self._failure
        return b""
