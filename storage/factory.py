"""Open a blob store from a URL, as configured in settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from storage.base import BlobStore
from storage.errors import StorageMisconfigured
from storage.local import LocalStore
from storage.s3 import S3Store

_S3_OPTIONS = {
    "endpoint_url",
    "region",
    "access_key",
    "secret_key",
    "session_token",
    "object_lock_mode",
    "retention_years",
    "part_size",
    "copy_part_size",
    "copy_threshold",
    "conditional_writes",
    "connect_timeout",
    "read_timeout",
    "max_attempts",
    "chunk_size",
}
_LOCAL_OPTIONS = {"retention_years", "chunk_size"}


def open_store(url: str, **options: Any) -> BlobStore:
    """Return the store a URL names.

    ``file:///abs/path`` or a plain path gives a ``LocalStore``; ``s3://bucket/prefix`` gives an
    ``S3Store`` (options: endpoint_url, region, access_key, secret_key, object_lock_mode,
    retention_years, and the tuning options of ``S3Store``). Options that do not apply, or an
    unknown scheme, raise ``StorageMisconfigured`` so a typo in settings is caught at start-up.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        _check_options(options, _S3_OPTIONS, url)
        if not parts.netloc:
            raise StorageMisconfigured(
                f"The storage URL {url!r} names no bucket: s3://bucket/prefix"
            )
        return S3Store(parts.netloc, unquote(parts.path).strip("/"), **options)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageMisconfigured(
                f"The storage URL {url!r} names a remote host; use file:///absolute/path."
            )
        _check_options(options, _LOCAL_OPTIONS, url)
        return LocalStore(unquote(parts.path), **options)
    if parts.scheme == "" or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):
        _check_options(options, _LOCAL_OPTIONS, url)
        if not url.strip():
            raise StorageMisconfigured("The storage location is empty: give a folder or a URL.")
        return LocalStore(Path(url).expanduser(), **options)
    raise StorageMisconfigured(
        f"Unknown storage URL {url!r}: use a folder path, file:///absolute/path or "
        "s3://bucket/prefix."
    )


def _check_options(options: dict[str, Any], allowed: set[str], url: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise StorageMisconfigured(
            f"Storage option(s) {', '.join(unknown)} do not apply to {url!r}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
