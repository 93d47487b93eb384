"""Shared helpers for the storage tests: test data and failing streams."""

from __future__ import annotations

import hashlib
import io
import random

MIB = 1024 * 1024


def seeded_bytes(size: int, seed: int = 20240611) -> bytes:
    """Pseudo-random, incompressible, reproducible test content."""
    return random.Random(seed).randbytes(size)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_byte(data: bytes, index: int) -> bytes:
    """The same bytes with one byte changed, as a bit rot or a tamper would leave them."""
    changed = bytearray(data)
    changed[index] ^= 0xFF
    return bytes(changed)


class StreamBrokenError(Exception):
    """Raised by ``FailingStream``, as a dropped client upload would."""


class FailingStream(io.RawIOBase):
    """Serves ``good_bytes`` of data, then raises: a client upload that breaks midway."""

    def __init__(self, good_bytes: int) -> None:
        super().__init__()
        self._left = good_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            raise StreamBrokenError("the client went away in the middle of the upload")
        n = min(len(buffer), self._left)
        buffer[:n] = b"x" * n
        self._left -= n
        return n
