"""The BlobStore contract, run against every implementation: LocalStore and S3Store.

S3Store runs against moto's standalone server over HTTP. Tampering goes around the store: for
the folder, a byte of the file is flipped in place; for S3 the object is overwritten with boto3,
which adds a new current version. Reads by bare digest read the current version, so both
backends must refuse the tampered bytes (REC-1).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage import (
    BlobIntegrityError,
    BlobNotFound,
    BlobStore,
    InvalidReference,
    LocalStore,
    S3Store,
)
from tests.integration.storage.helpers import (
    MIB,
    FailingStream,
    StreamBrokenError,
    flip_byte,
    seeded_bytes,
    sha256_hex,
)

S3_PART_SIZE = 5 * MIB  # S3's minimum, to keep the multipart test small


@dataclass
class Backend:
    """A store under test, and a way to change its stored bytes behind its back."""

    name: str
    store: BlobStore
    tamper: Callable[[str, bytes], None]


def _local_backend(tmp_path: Path) -> Backend:
    store = LocalStore(tmp_path / "blobs", chunk_size=64 * 1024)

    def tamper(digest: str, content: bytes) -> None:
        path = tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
        path.chmod(0o644)
        path.write_bytes(content)

    return Backend("local", store, tamper)


def _s3_backend(request: pytest.FixtureRequest) -> Backend:
    bucket: Any = request.getfixturevalue("s3_bucket")
    store = S3Store(bucket.name, "etmf", part_size=S3_PART_SIZE, **bucket.store_options())

    def tamper(digest: str, content: bytes) -> None:
        bucket.client.put_object(Bucket=bucket.name, Key=f"etmf/blobs/{digest}", Body=content)

    return Backend("s3", store, tamper)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path)
    return _s3_backend(request)


def read_all(store: BlobStore, ref: Any) -> bytes:
    with store.open(ref) as reader:
        return b"".join(reader)


def read_until_refused(
    store: BlobStore, digest: str, size: int
) -> tuple[bytes, BlobIntegrityError]:
    """Read in small pieces as a download would; return what was served and the refusal."""
    served = bytearray()
    with store.open(digest) as reader, pytest.raises(BlobIntegrityError) as refused:
        while piece := reader.read(size):
            served += piece
    return bytes(served), refused.value


def test_stored_bytes_read_back_identical_with_their_hash_and_size(backend: Backend) -> None:
    data = b"%PDF-1.7 protocol v3 signed page\n" * 100

    ref = backend.store.put(io.BytesIO(data))

    assert ref.sha256 == sha256_hex(data)
    assert ref.size == len(data)
    assert read_all(backend.store, ref) == data
    assert read_all(backend.store, ref.sha256) == data


def test_same_bytes_stored_twice_make_one_blob_and_the_same_reference(backend: Backend) -> None:
    data = b"informed consent form v2"

    first = backend.store.put(io.BytesIO(data))
    second = backend.store.put(io.BytesIO(data))

    assert second == first
    assert [ref.sha256 for ref in backend.store.iter_refs()] == [first.sha256]


def test_concurrent_puts_of_the_same_bytes_make_one_readable_blob(backend: Backend) -> None:
    data = seeded_bytes(256 * 1024, seed=7)
    threads_count = 8
    start_together = threading.Barrier(threads_count)
    refs: list[Any] = []
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            start_together.wait()
            refs.append(backend.store.put(io.BytesIO(data)))
        except BaseException as exc:  # reported below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert {(ref.sha256, ref.size) for ref in refs} == {(sha256_hex(data), len(data))}
    assert [ref.sha256 for ref in backend.store.iter_refs()] == [sha256_hex(data)]
    assert read_all(backend.store, sha256_hex(data)) == data


@pytest.mark.req("REC-1")
def test_flipped_byte_is_refused_on_read_and_the_content_never_served_whole(
    backend: Backend,
) -> None:
    data = seeded_bytes(300 * 1024, seed=1)
    ref = backend.store.put(io.BytesIO(data))
    backend.tamper(ref.sha256, flip_byte(data, len(data) // 2))

    served, refusal = read_until_refused(backend.store, ref.sha256, 4096)

    assert ref.sha256 in str(refusal)
    assert refusal.sha256 == ref.sha256
    assert len(served) < len(data)


@pytest.mark.req("REC-1")
def test_flipped_last_byte_is_refused_before_the_last_chunk_is_handed_out(
    backend: Backend,
) -> None:
    data = seeded_bytes(10_000, seed=2)
    ref = backend.store.put(io.BytesIO(data))
    backend.tamper(ref.sha256, flip_byte(data, len(data) - 1))

    served, _ = read_until_refused(backend.store, ref.sha256, 1000)

    assert len(served) <= len(data) - 1000
    with backend.store.open(ref.sha256) as reader, pytest.raises(BlobIntegrityError):
        reader.read()


@pytest.mark.req("REC-1")
def test_truncated_blob_is_refused_on_read(backend: Backend) -> None:
    data = seeded_bytes(50_000, seed=3)
    ref = backend.store.put(io.BytesIO(data))
    backend.tamper(ref.sha256, data[:-1])

    with pytest.raises(BlobIntegrityError, match=ref.sha256):
        read_all(backend.store, ref.sha256)


def test_exists_and_iter_refs_list_exactly_the_stored_blobs(backend: Backend) -> None:
    contents = [b"cv of the investigator", b"delegation log", b"lab normal ranges"]
    refs = {backend.store.put(io.BytesIO(content)) for content in contents}

    listed = set(backend.store.iter_refs())

    assert {(r.sha256, r.size) for r in listed} == {(r.sha256, r.size) for r in refs}
    assert all(backend.store.exists(ref.sha256) for ref in refs)
    assert not backend.store.exists(sha256_hex(b"never stored"))


def test_missing_blob_is_reported_as_not_found(backend: Backend) -> None:
    missing = sha256_hex(b"never stored")

    with pytest.raises(BlobNotFound, match=missing):
        backend.store.open(missing)


BAD_REFERENCES = [
    "../etc/passwd",
    "../../" + "a" * 58,
    "ab/cd/" + "a" * 58,
    "/" + "a" * 63,
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "A" * 64,
    "a" * 64 + "\n",
    "a" * 63 + "\x00",
    "",
]


def every_lookup(store: BlobStore, bad: str) -> list[Callable[[], object]]:
    """Each store method that takes a reference, called with ``bad``."""
    return [
        lambda: store.open(bad),
        lambda: store.exists(bad),
        lambda: store.quarantine(bad),
        lambda: store.set_legal_hold(bad, True),
        lambda: store.put(io.BytesIO(b"x"), expected_sha256=bad),
    ]


def test_invalid_references_are_refused_before_touching_storage(backend: Backend) -> None:
    for bad in BAD_REFERENCES:
        for action in every_lookup(backend.store, bad):
            with pytest.raises(InvalidReference, match="not a blob reference"):
                action()
    assert list(backend.store.iter_refs()) == []


def test_empty_stream_is_stored_as_the_empty_blob(backend: Backend) -> None:
    ref = backend.store.put(io.BytesIO(b""))

    assert ref.sha256 == hashlib.sha256(b"").hexdigest()
    assert ref.size == 0
    assert read_all(backend.store, ref) == b""


def test_multipart_sized_stream_round_trips_exactly(backend: Backend) -> None:
    data = seeded_bytes(11 * MIB, seed=11)

    ref = backend.store.put(io.BytesIO(data))

    assert ref.sha256 == sha256_hex(data)
    assert ref.size == len(data)
    with backend.store.open(ref) as reader:
        received = hashlib.sha256()
        for chunk in reader:
            received.update(chunk)
        assert reader.verified
    assert received.hexdigest() == ref.sha256
    assert [r.sha256 for r in backend.store.iter_refs()] == [ref.sha256]


def test_stream_failing_midway_stores_nothing(backend: Backend) -> None:
    with pytest.raises(StreamBrokenError):
        backend.store.put(FailingStream(good_bytes=6 * MIB))

    assert list(backend.store.iter_refs()) == []


def test_put_with_a_wrong_expected_digest_is_refused_and_stores_nothing(backend: Backend) -> None:
    announced = sha256_hex(b"the original")

    with pytest.raises(BlobIntegrityError, match="nothing was stored"):
        backend.store.put(io.BytesIO(b"a damaged copy"), expected_sha256=announced)

    assert list(backend.store.iter_refs()) == []


def test_quarantined_blob_is_no_longer_served(backend: Backend) -> None:
    keep = backend.store.put(io.BytesIO(b"referenced"))
    orphan = backend.store.put(io.BytesIO(b"unreferenced after a crash"))

    backend.store.quarantine(orphan.sha256)

    assert not backend.store.exists(orphan.sha256)
    with pytest.raises(BlobNotFound):
        backend.store.open(orphan.sha256)
    assert [r.sha256 for r in backend.store.iter_refs()] == [keep.sha256]


def test_healthy_store_passes_its_health_check_and_names_itself(backend: Backend) -> None:
    backend.store.health()

    assert backend.store.describe().startswith({"local": "local:/", "s3": "s3://"}[backend.name])
