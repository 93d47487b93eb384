"""open_store: the storage URL in settings picks and configures the store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from storage import LocalStore, S3Store, StorageMisconfigured, open_store
from tests.fixtures.s3server import S3Bucket


def test_plain_path_and_file_url_open_a_local_store(tmp_path: Path) -> None:
    by_path = open_store(str(tmp_path / "a"))
    by_url = open_store(f"file://{tmp_path}/b%20c")

    assert isinstance(by_path, LocalStore)
    assert by_path.describe() == f"local:{tmp_path / 'a'}"
    assert isinstance(by_url, LocalStore)
    assert by_url.describe() == f"local:{tmp_path / 'b c'}"


@pytest.mark.s3
def test_s3_url_opens_an_s3_store_on_the_bucket_and_prefix(s3_bucket: S3Bucket) -> None:
    store = open_store(
        f"s3://{s3_bucket.name}/trials/etmf", **s3_bucket.store_options(), retention_years=30
    )
    ref = store.put(io.BytesIO(b"via the factory"))

    assert isinstance(store, S3Store)
    assert store.retention_years == 30
    assert store.describe().startswith(f"s3://{s3_bucket.name}/trials/etmf/ at http://127.0.0.1:")
    assert s3_bucket.client.head_object(
        Bucket=s3_bucket.name, Key=f"trials/etmf/blobs/{ref.sha256}"
    )["ContentLength"] == len(b"via the factory")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/blobs", "Unknown storage URL"),
        ("file://otherhost/blobs", "remote host"),
        ("s3:///prefix-only", "names no bucket"),
    ],
)
def test_unusable_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(StorageMisconfigured, match=message):
        open_store(url)


def test_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageMisconfigured, match="endpoint_url"):
        open_store(str(tmp_path), endpoint_url="http://127.0.0.1:9")
