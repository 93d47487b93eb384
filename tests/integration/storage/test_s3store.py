"""S3Store behaviour beyond the shared contract: bucket checks, outages, Object Lock, uploads.

All against moto's standalone server over HTTP (tests.fixtures.s3server).
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from storage import (
    BlobIntegrityError,
    RetentionMode,
    RetentionNotSupported,
    S3Store,
    StorageMisconfigured,
    StorageUnavailable,
)
from tests.fixtures.s3server import MotoServer, S3Bucket, create_bucket
from tests.integration.storage.helpers import (
    MIB,
    FailingStream,
    StreamBrokenError,
    flip_byte,
    seeded_bytes,
    sha256_hex,
)

pytestmark = pytest.mark.s3

PART = 5 * MIB
FAR_FUTURE = datetime(2099, 12, 31, tzinfo=UTC)  # a fixed date beyond any test run


def make_store(bucket: S3Bucket, **options: Any) -> S3Store:
    return S3Store(bucket.name, "etmf", **{"part_size": PART, **bucket.store_options(), **options})


def keys_under(bucket: S3Bucket, prefix: str) -> list[str]:
    listing = bucket.client.list_object_versions(Bucket=bucket.name, Prefix=prefix)
    return [v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])]


def open_multipart_uploads(bucket: S3Bucket) -> list[Any]:
    uploads: list[Any] = bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
    return uploads


def delete_version(bucket: S3Bucket, ref: Any) -> None:
    bucket.client.delete_object(
        Bucket=bucket.name, Key=f"etmf/blobs/{ref.sha256}", VersionId=ref.version_id
    )


def lock_of(bucket: S3Bucket, ref: Any) -> Any:
    # HEAD rather than GetObjectRetention, which moto's server answers with a 500.
    return bucket.client.head_object(
        Bucket=bucket.name, Key=f"etmf/blobs/{ref.sha256}", VersionId=ref.version_id
    )


def test_bucket_without_versioning_is_refused_with_how_to_enable_it(
    moto_server: MotoServer,
) -> None:
    bucket = create_bucket(moto_server, versioning=False)

    with pytest.raises(StorageMisconfigured) as refused:
        S3Store(bucket.name, **bucket.store_options())

    assert (
        f"aws s3api put-bucket-versioning --bucket {bucket.name} "
        "--versioning-configuration Status=Enabled"
    ) in str(refused.value)


def test_missing_bucket_is_refused_by_name(moto_server: MotoServer) -> None:
    with pytest.raises(StorageMisconfigured, match="'no-such-bucket' does not exist"):
        S3Store("no-such-bucket", **moto_server.store_options())


def test_stopped_server_is_reported_unavailable_and_a_restarted_empty_one_misconfigured(
    moto_server: MotoServer,
) -> None:
    bucket = create_bucket(moto_server)
    store = make_store(bucket)
    ref = store.put(io.BytesIO(b"site activation letter"))

    moto_server.stop()  # the bucket fixtures restart it should this test fail midway

    for action in (
        lambda: store.put(io.BytesIO(b"another letter")),
        lambda: store.open(ref),
        lambda: store.exists(ref),
        lambda: list(store.iter_refs()),
        store.health,
        lambda: make_store(bucket),
    ):
        with pytest.raises(StorageUnavailable, match="cannot be reached"):
            action()

    moto_server.start()  # moto keeps its state in memory: the bucket is gone
    with pytest.raises(StorageMisconfigured, match="does not exist"):
        store.health()


def test_server_that_never_answers_is_reported_unavailable_not_waited_on() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections in the kernel, never answers a request
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"

        with pytest.raises(StorageUnavailable, match="cannot be reached"):
            S3Store(
                "any-bucket",
                endpoint_url=endpoint,
                access_key="k",
                secret_key="s",
                read_timeout=0.3,
                max_attempts=1,
            )


def test_stored_object_carries_the_sha256_checksum_for_the_server_to_check(
    s3_bucket: S3Bucket,
) -> None:
    data = b"monitoring visit report"
    ref = make_store(s3_bucket).put(io.BytesIO(data))

    head = s3_bucket.client.head_object(
        Bucket=s3_bucket.name, Key=f"etmf/blobs/{ref.sha256}", ChecksumMode="ENABLED"
    )

    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.req("REC-1")
def test_overwritten_object_is_refused_by_digest_but_its_recorded_version_reads_intact(
    s3_bucket: S3Bucket,
) -> None:
    store = make_store(s3_bucket)
    data = seeded_bytes(100_000, seed=5)
    ref = store.put(io.BytesIO(data))
    s3_bucket.client.put_object(
        Bucket=s3_bucket.name, Key=f"etmf/blobs/{ref.sha256}", Body=flip_byte(data, 0)
    )

    with pytest.raises(BlobIntegrityError, match=ref.sha256), store.open(ref.sha256) as reader:
        reader.read()
    with store.open(ref) as reader:
        assert reader.read() == data
        assert reader.version_id == ref.version_id


def test_large_upload_leaves_no_staging_object_or_open_upload(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket)
    data = seeded_bytes(PART + 123, seed=9)

    first = store.put(io.BytesIO(data))
    again = store.put(io.BytesIO(data))  # already stored: the upload is aborted, not copied

    assert again.sha256 == first.sha256
    assert keys_under(s3_bucket, "etmf/staging/") == []
    assert keys_under(s3_bucket, "etmf/blobs/") == [f"etmf/blobs/{first.sha256}"]
    assert open_multipart_uploads(s3_bucket) == []


def test_broken_large_upload_leaves_no_open_multipart_upload(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket)

    with pytest.raises(StreamBrokenError):
        store.put(FailingStream(good_bytes=PART + 1))

    assert open_multipart_uploads(s3_bucket) == []
    assert keys_under(s3_bucket, "etmf/") == []


def test_blob_above_the_copy_threshold_is_copied_in_parts_and_reads_back(
    s3_bucket: S3Bucket,
) -> None:
    store = make_store(s3_bucket, copy_threshold=PART, copy_part_size=PART)
    data = seeded_bytes(PART + 1, seed=13)

    ref = store.put(io.BytesIO(data))

    with store.open(ref) as reader:
        assert sha256_hex(reader.read()) == sha256_hex(data)
    assert keys_under(s3_bucket, "etmf/staging/") == []


def test_without_conditional_writes_the_same_bytes_still_make_one_blob(
    s3_bucket: S3Bucket,
) -> None:
    store = make_store(s3_bucket, conditional_writes=False)

    first = store.put(io.BytesIO(b"protocol synopsis"))
    second = store.put(io.BytesIO(b"protocol synopsis"))

    assert second == first
    assert len(keys_under(s3_bucket, "etmf/blobs/")) == 1


def test_quarantine_keeps_every_version_behind_a_delete_marker(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket)
    ref = store.put(io.BytesIO(b"orphan"))

    store.quarantine(ref)

    copy = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=f"etmf/quarantine/{ref.sha256}")
    assert copy["Body"].read() == b"orphan"
    with store.open(ref) as reader:  # the recorded version is still there
        assert reader.read() == b"orphan"
    assert not store.exists(ref.sha256)


def test_bucket_without_object_lock_refuses_retention_rather_than_ignoring_it(
    s3_bucket: S3Bucket,
) -> None:
    store = make_store(s3_bucket)
    ref = store.put(io.BytesIO(b"final approved protocol"))

    assert store.supports_retention is False
    with pytest.raises(RetentionNotSupported, match="Object Lock"):
        store.retain(ref, FAR_FUTURE)
    with pytest.raises(RetentionNotSupported):
        store.set_legal_hold(ref, True)


@pytest.mark.req("REC-3")
def test_compliance_locked_version_cannot_be_deleted_through_the_s3_api(
    object_lock_bucket: S3Bucket,
) -> None:
    store = make_store(object_lock_bucket)
    ref = store.put(io.BytesIO(b"final signed investigator brochure"))
    assert store.supports_retention is True

    store.retain(ref, FAR_FUTURE)

    with pytest.raises(ClientError) as refused:
        delete_version(object_lock_bucket, ref)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    lock = lock_of(object_lock_bucket, ref)
    assert lock["ObjectLockMode"] == "COMPLIANCE"
    assert lock["ObjectLockRetainUntilDate"] == FAR_FUTURE
    with store.open(ref) as reader:
        assert reader.read() == b"final signed investigator brochure"


@pytest.mark.req("REC-3")
def test_governance_retention_can_be_chosen_per_call(object_lock_bucket: S3Bucket) -> None:
    store = make_store(object_lock_bucket, object_lock_mode="COMPLIANCE")
    ref = store.put(io.BytesIO(b"draft kept for a while"))

    store.retain(ref, FAR_FUTURE, RetentionMode.GOVERNANCE)

    assert lock_of(object_lock_bucket, ref)["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ClientError):
        delete_version(object_lock_bucket, ref)


@pytest.mark.req("REC-3")
def test_legal_hold_blocks_deletion_until_lifted(object_lock_bucket: S3Bucket) -> None:
    store = make_store(object_lock_bucket)
    ref = store.put(io.BytesIO(b"record under litigation"))

    store.set_legal_hold(ref, True)
    with pytest.raises(ClientError) as refused:
        delete_version(object_lock_bucket, ref)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    store.set_legal_hold(ref, False)
    delete_version(object_lock_bucket, ref)
    assert not store.exists(ref)


def test_retention_until_counts_calendar_years_from_the_given_time(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket)
    custom = make_store(s3_bucket, retention_years=10)

    assert store.retention_until(datetime(2024, 2, 29, 12, tzinfo=UTC)) == datetime(
        2049, 2, 28, 12, tzinfo=UTC
    )
    assert custom.retention_until(datetime(2024, 6, 1, tzinfo=UTC)) == datetime(
        2034, 6, 1, tzinfo=UTC
    )


def test_part_size_below_the_s3_minimum_is_refused(s3_bucket: S3Bucket) -> None:
    with pytest.raises(StorageMisconfigured, match="at least"):
        make_store(s3_bucket, part_size=MIB)
