"""Builds the configured blob store (the storage package knows nothing of our settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.factory import open_store

if TYPE_CHECKING:
    from etmf.bootstrap import Services
    from etmf.settings import Settings


def make_blob_store(settings: Settings):  # type: ignore[no-untyped-def]
    if settings.storage_backend == "local":
        return open_store(str(settings.blob_path))
    prefix = settings.s3_prefix.strip("/")
    url = f"s3://{settings.s3_bucket}/{prefix}" if prefix else f"s3://{settings.s3_bucket}"
    return open_store(
        url,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key or None,
        object_lock_mode=settings.object_lock_mode,
        retention_years=settings.retention_years,
    )


def blob_store(svc: Services):  # type: ignore[no-untyped-def]
    store = svc.extras.get("blobs")
    if store is None:
        store = svc.extras["blobs"] = make_blob_store(svc.settings)
    return store
