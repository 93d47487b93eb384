"""Write-once, content-addressed blob stores (local folder and S3), verified on every read.

Imports nothing of ours: ``etmf`` and ``ctms`` build on it, never the reverse.
"""

from storage.base import BlobRef, BlobStore, RetentionMode, SupportsRead, retention_deadline
from storage.errors import (
    BlobIntegrityError,
    BlobNotFound,
    InvalidReference,
    RetentionNotSupported,
    StorageError,
    StorageMisconfigured,
    StorageUnavailable,
)
from storage.factory import open_store
from storage.local import LocalStore
from storage.reader import BlobReader
from storage.s3 import S3Store

__all__ = [
    "BlobIntegrityError",
    "BlobNotFound",
    "BlobReader",
    "BlobRef",
    "BlobStore",
    "InvalidReference",
    "LocalStore",
    "RetentionMode",
    "RetentionNotSupported",
    "S3Store",
    "StorageError",
    "StorageMisconfigured",
    "StorageUnavailable",
    "SupportsRead",
    "open_store",
    "retention_deadline",
]
