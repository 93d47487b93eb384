"""Exceptions raised by blob stores.

Every failure a caller can meet is one of these, each with a message a person can act on;
no raw OSError or botocore exception leaves the package.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by the storage package."""


class InvalidReference(StorageError, ValueError):
    """A blob reference is not a 64-character lowercase SHA-256 hex digest."""


class BlobNotFound(StorageError, LookupError):
    """No blob is stored under the given digest."""

    def __init__(self, sha256: str, where: str) -> None:
        super().__init__(f"No blob with SHA-256 {sha256} is stored in {where}.")
        self.sha256 = sha256


class BlobIntegrityError(StorageError):
    """The stored bytes do not hash to the digest they are stored under.

    The content is never handed out: the verifying reader raises before the last chunk.
    """

    def __init__(self, sha256: str, actual: str, where: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"Blob {sha256} in {where} is corrupt: its stored bytes hash to {actual}. "
            "The content was not served; restore it from a backup or an earlier version."
        )
        self.sha256 = sha256
        self.actual = actual

    @classmethod
    def unexpected_upload(cls, expected: str, actual: str, where: str) -> BlobIntegrityError:
        """The bytes given to ``put`` are not the ones the caller announced; nothing stored."""
        return cls(
            expected,
            actual,
            where,
            f"The bytes given for blob {expected} hash to {actual}; nothing was stored in "
            f"{where}. The copy is incomplete or altered.",
        )


class StorageUnavailable(StorageError):
    """The storage backend cannot be reached (server down, refused, timed out, disk gone)."""


class StorageMisconfigured(StorageError):
    """The backend answers but is not set up as required (missing bucket, no versioning...)."""


class RetentionNotSupported(StorageMisconfigured):
    """Retention or legal hold was asked of a store that cannot enforce it.

    Callers check ``store.supports_retention`` first; this error makes a forgotten check loud
    instead of silently leaving a final record unprotected.
    """
