"""The verifying reader on its own: what a consumer gets before and at a mismatch (REC-1)."""

from __future__ import annotations

import io
import shutil

import pytest

from storage import BlobIntegrityError, BlobReader
from tests.integration.storage.helpers import flip_byte, seeded_bytes, sha256_hex


def reader_over(data: bytes, digest: str, chunk_size: int = 4096) -> BlobReader:
    source = io.BytesIO(data)
    return BlobReader(
        digest, source.read, source.close, "test", size=len(data), chunk_size=chunk_size
    )


@pytest.mark.req("REC-1")
@pytest.mark.parametrize("read_size", [1, 100, 4095, 4096, 4097, 10_000, 20_000])
def test_corrupt_content_is_never_handed_out_in_full(read_size: int) -> None:
    good = seeded_bytes(20_000, seed=21)
    bad = flip_byte(good, len(good) - 1)
    served = bytearray()

    with reader_over(bad, sha256_hex(good)) as reader, pytest.raises(BlobIntegrityError):
        while piece := reader.read(read_size):
            served += piece

    assert len(served) < len(good)


@pytest.mark.req("REC-1")
def test_every_read_after_a_mismatch_is_refused_again() -> None:
    good = b"abc" * 1000
    reader = reader_over(flip_byte(good, 0), sha256_hex(good))
    with pytest.raises(BlobIntegrityError):
        reader.read()

    with pytest.raises(BlobIntegrityError):
        reader.read(10)


def test_intact_content_reads_the_same_by_read_readinto_iteration_and_copy() -> None:
    data = seeded_bytes(50_000, seed=22)
    digest = sha256_hex(data)

    with reader_over(data, digest) as reader:
        by_read = reader.read(7) + reader.read()
    with reader_over(data, digest) as reader:
        by_iteration = b"".join(reader)
        assert reader.verified
    with reader_over(data, digest) as reader:
        buffer = bytearray(len(data))
        view, filled = memoryview(buffer), 0
        while count := reader.readinto(view[filled:]):
            filled += count
    copy = io.BytesIO()
    with reader_over(data, digest) as reader:
        shutil.copyfileobj(reader, copy)

    assert by_read == by_iteration == bytes(buffer) == copy.getvalue() == data


def test_buffered_wrapper_sees_the_same_verified_bytes() -> None:
    data = seeded_bytes(9_000, seed=23)

    with io.BufferedReader(reader_over(data, sha256_hex(data), chunk_size=1000)) as buffered:
        assert buffered.read() == data


def test_closed_reader_refuses_reads_and_closes_its_source() -> None:
    data = b"x" * 10
    source = io.BytesIO(data)
    reader = BlobReader(sha256_hex(data), source.read, source.close, "test")

    reader.close()

    assert source.closed
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)
