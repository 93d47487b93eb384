"""The blob store contract: what every backend promises, and the reference it hands back.

A blob is stored under the SHA-256 of its bytes and never changes afterwards (write-once,
content-addressed). Storing the same bytes twice yields one blob and the same digest.
Every read re-hashes the bytes and refuses a mismatch before the last chunk is handed out,
so no consumer ever holds a complete but corrupt copy (REC-1).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.errors import InvalidReference
from storage.reader import BlobReader

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobRef:
    """What a store returns for a stored blob.

    ``version_id`` is the backend's version of the object (S3 version id) or ``None`` where the
    backend has no versions (local folder). Keep it with the digest: reading by the full ref
    reads exactly that version.
    """

    sha256: str
    size: int
    version_id: str | None = None

    def __post_init__(self) -> None:
        validate_digest(self.sha256)
        if self.size < 0:
            raise InvalidReference(f"A blob size cannot be negative (got {self.size}).")


class RetentionMode(enum.StrEnum):
    """S3 Object Lock modes: COMPLIANCE cannot be shortened or removed by anyone, GOVERNANCE
    can be by a principal with the bypass permission."""

    COMPLIANCE = "COMPLIANCE"
    GOVERNANCE = "GOVERNANCE"


class SupportsRead(Protocol):
    """Any binary stream: an open file, ``io.BytesIO``, an upload's stream, a socket file."""

    def read(self, size: int = -1, /) -> bytes: ...


RefLike = BlobRef | str
"""Methods that locate a blob take a full ``BlobRef`` or a bare digest string."""


def validate_digest(sha256: object) -> str:
    """Return ``sha256`` if it is a 64-character lowercase hex digest, else raise.

    This is the only thing that ever becomes part of a path or object key, so path tricks
    (``../etc/passwd``, separators, NUL bytes) cannot reach the filesystem or the bucket.
    """
    if not isinstance(sha256, str) or _SHA256_HEX.fullmatch(sha256) is None:
        shown = repr(sha256) if len(repr(sha256)) <= 80 else repr(sha256)[:77] + "..."
        raise InvalidReference(
            f"{shown} is not a blob reference: expected 64 lowercase hexadecimal characters "
            "(a SHA-256 digest)."
        )
    return sha256


def split_ref(ref: RefLike) -> tuple[str, str | None]:
    """Return the validated digest and the version id (``None`` for a bare digest)."""
    if isinstance(ref, BlobRef):
        return validate_digest(ref.sha256), ref.version_id
    return validate_digest(ref), None


def retention_deadline(now: datetime, years: int) -> datetime:
    """Return the moment ``years`` calendar years after ``now`` (29 February → 28 February).

    Callers pass their own clock's time: the storage package never reads the wall clock.
    """
    if now.tzinfo is None:
        raise ValueError("retention_deadline needs a timezone-aware time (UTC).")
    try:
        return now.replace(year=now.year + years)
    except ValueError:  # 29 February into a non-leap year
        return now.replace(year=now.year + years, day=28)


class BlobStore(Protocol):
    """Write-once, content-addressed blob storage, verified on every read.

    Contract (the same tests run it against every implementation):

    * ``put(stream)`` reads the stream to its end in bounded memory, stores the bytes under
      their SHA-256 and returns a ``BlobRef``. The blob is durable when ``put`` returns, so a
      database row may reference it. The same bytes stored twice (also concurrently) give one
      blob and an equal digest and size. If ``expected_sha256`` is given and the bytes differ,
      ``BlobIntegrityError`` is raised and nothing is stored. A stream that fails midway
      leaves nothing behind.
    * ``open(ref)`` returns a ``BlobReader`` (a context manager, ``read(n)``, iterable in
      chunks) that hashes as it reads and raises ``BlobIntegrityError`` at the end, before the
      last bytes are handed out, if the bytes do not match. ``BlobNotFound`` if absent.
    * ``exists(ref)`` tells whether a blob is stored; ``iter_refs()`` yields every stored blob
      (in no particular order).
    * ``retain(ref, until, mode)`` and ``set_legal_hold(ref, on)`` make a final record
      undeletable where the backend can enforce it (``supports_retention``); elsewhere they
      raise ``RetentionNotSupported``.
    * ``quarantine(ref)`` moves an unreferenced blob out of the content space (for
      ``etmf storage reconcile``); what "moves" means per backend is documented there.
    * ``health()`` returns ``None`` or raises ``StorageUnavailable``/``StorageMisconfigured``.
    * ``describe()`` names the store for people ("local:/srv/blobs", "s3://b/p at URL").

    Every method taking a reference refuses anything but a 64-hex digest with
    ``InvalidReference``; an unreachable backend raises ``StorageUnavailable``.
    """

    @property
    def supports_retention(self) -> bool:
        """True when ``retain`` and ``set_legal_hold`` are enforced by the backend."""
        ...

    def put(self, stream: SupportsRead, expected_sha256: str | None = None) -> BlobRef:
        """Store the stream's bytes under their SHA-256 and return the reference."""
        ...

    def open(self, ref: RefLike) -> BlobReader:
        """Open a blob for reading; the reader verifies the digest as it is read."""
        ...

    def exists(self, ref: RefLike) -> bool:
        """Tell whether a blob with this digest is stored."""
        ...

    def iter_refs(self) -> Iterator[BlobRef]:
        """Yield a reference for every stored blob."""
        ...

    def retain(self, ref: RefLike, until: datetime, mode: RetentionMode | None = None) -> None:
        """Forbid deletion or overwrite of this blob until ``until`` (UTC)."""
        ...

    def retention_until(self, now: datetime) -> datetime:
        """The configured retention end (default 25 years) for a record finalised at ``now``."""
        ...

    def set_legal_hold(self, ref: RefLike, on: bool) -> None:
        """Place or lift a legal hold, which forbids deletion regardless of retention."""
        ...

    def quarantine(self, ref: RefLike) -> None:
        """Move an unreferenced blob aside so that it is no longer served."""
        ...

    def health(self) -> None:
        """Raise ``StorageUnavailable`` or ``StorageMisconfigured`` if the store cannot work."""
        ...

    def describe(self) -> str:
        """Name the store for logs and messages."""
        ...
