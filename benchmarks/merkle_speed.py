"""How fast is an audit-log tree head? Run: ``python benchmarks/merkle_speed.py [LEAVES]``.

Computes the RFC 9162 tree head over LEAVES (default 1,000,000) random 32-byte leaves, the shape
of the audit log's event hashes, and compares it with the floor: one plain hashlib SHA-256 per
leaf. A tree head needs 2n - 1 hashes of 33-65 bytes, so a ratio near 0.4-0.5 means the Python
loop adds little over the hashing itself. Reports the median of a few runs (the machines are
noisy), and the best run, which is the better guide when other work shares the cores.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable

from etmf.audit.merkle import tree_head

RUNS = 5


def sha256_floor(leaves: list[bytes]) -> None:
    """One SHA-256 per leaf and nothing else: the least any tree head could cost."""
    sha256 = hashlib.sha256
    for leaf in leaves:
        sha256(leaf).digest()


def rates(work: Callable[[list[bytes]], object], leaves: list[bytes]) -> tuple[float, float]:
    """Median and best leaves per second over RUNS runs."""
    seconds = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work(leaves)
        seconds.append(time.perf_counter() - start)
    return len(leaves) / statistics.median(seconds), len(leaves) / min(seconds)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    leaves = [os.urandom(32) for _ in range(count)]
    tree, tree_best = rates(tree_head, leaves)
    floor, floor_best = rates(sha256_floor, leaves)
    print(f"leaves:                 {count:,} ({RUNS} runs each)")
    print(f"tree head:              {tree:,.0f} leaves/s median, {tree_best:,.0f} best")
    print(f"plain SHA-256 per leaf: {floor:,.0f} leaves/s median, {floor_best:,.0f} best")
    print(f"ratio tree/floor:       {tree / floor:.2f} median, {tree_best / floor_best:.2f} best")


if __name__ == "__main__":
    main()
