"""Functions for the bounded runner's tests to run in a worker (kept free of heavy imports)."""

from __future__ import annotations


def allocate(size: int) -> int:
    """Allocate ``size`` bytes and report how many were obtained."""
    return len(bytearray(size))
