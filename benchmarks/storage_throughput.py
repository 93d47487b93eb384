"""Blob store throughput and memory: LocalStore and S3Store beside their floors.

For 100 KB and 10 MB blobs, the median upload time of N runs through each store is printed
next to the floor on the same machine in the same run: a bare file write + fsync for the
folder, a bare boto3 ``put_object`` of the same bytes for S3. Then, in a fresh subprocess per
backend (so that earlier work does not hide the peak), the growth of peak RSS while streaming
one large upload (default 256 MB) that is never held in memory.

S3 runs against moto's standalone server on loopback (started here) unless --endpoint-url
points at another S3-compatible server; moto keeps objects in its own memory, so its figures
say more about our overhead than about S3.

    .venv/bin/python benchmarks/storage_throughput.py [--runs 7] [--large-mb 256]

Not part of the test run.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import LocalStore, S3Store  # noqa: E402
from tests.fixtures.s3server import MotoServer, create_bucket  # noqa: E402

KB = 1000
MB = 1000 * 1000
SIZES = [("100 KB", 100 * KB), ("10 MB", 10 * MB)]


class GeneratedStream(io.RawIOBase):
    """``size`` pseudo-random bytes produced on demand: the source never sits in memory."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__()
        self._left = size
        self._block = random.Random(seed).randbytes(1024 * 1024)
        self._counter = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        # Overrides RawIOBase.read, which would allocate a buffer of the full requested size
        # and so charge the source's memory to the store being measured.
        n = min(size if size >= 0 else self._left, self._left, len(self._block))
        if n <= 0:
            return b""
        self._counter += 1
        self._left -= n
        # Stamp each block with a counter so that no two blocks (and no two runs) are equal.
        return (self._counter.to_bytes(8, "big") + self._block[8:n])[:n]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def median_seconds(action: Callable[[int], None], runs: int) -> float:
    """Median wall time of ``action(run_number)`` over ``runs`` runs, after one warm-up."""
    action(-1)
    times = []
    for run in range(runs):
        start = time.perf_counter()
        action(run)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def local_rows(size: int, runs: int, scratch: Path) -> tuple[float, float]:
    store = LocalStore(scratch / "store")
    payloads = {run: random.Random(size + run).randbytes(size) for run in range(-1, runs)}

    def through_store(run: int) -> None:
        store.put(io.BytesIO(payloads[run]))

    def floor(run: int) -> None:
        with open(scratch / f"floor-{size}-{run}", "wb") as out:
            out.write(payloads[run])
            out.flush()
            os.fsync(out.fileno())

    return median_seconds(through_store, runs), median_seconds(floor, runs)


def s3_rows(size: int, runs: int, store: S3Store, client: Any) -> tuple[float, float]:
    payloads = {run: random.Random(size + run + 1000).randbytes(size) for run in range(-1, runs)}

    def through_store(run: int) -> None:
        store.put(io.BytesIO(payloads[run]))

    def floor(run: int) -> None:
        client.put_object(Bucket=store.bucket, Key=f"floor/{size}/{run}", Body=payloads[run])

    return median_seconds(through_store, runs), median_seconds(floor, runs)


def rss_child(backend: str, size: int, options: dict[str, Any]) -> None:
    """Run in a subprocess: stream one large upload, print peak RSS growth and time."""
    if backend == "local":
        store: Any = LocalStore(options["root"])
    else:
        store = S3Store(options["bucket"], "bench", **options["s3"])
    warm = GeneratedStream(1024 * 1024, seed=1)  # first put warms imports and pools
    store.put(warm)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ref = store.put(GeneratedStream(size, seed=2))
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert ref.size == size
    # A second upload under tracemalloc: the peak of Python allocations during one put,
    # which RSS growth can hide when earlier freed memory is reused.
    tracemalloc.start()
    store.put(GeneratedStream(size, seed=3))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{(after - before) / 1024:.1f} {seconds:.3f} {traced_peak / 2**20:.1f}")


def measure_rss(backend: str, size: int, options: dict[str, Any]) -> tuple[float, float, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--rss-child", backend, str(size), repr(options)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(output[0]), float(output[1]), float(output[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--large-mb", type=int, default=256)
    parser.add_argument("--endpoint-url", help="an S3-compatible server instead of moto")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        backend, size, options = args.rss_child
        rss_child(backend, int(size), eval(options))  # noqa: S307 - our own repr from the parent
        return

    with tempfile.TemporaryDirectory(prefix="storage-bench-") as scratch_name:
        scratch = Path(scratch_name)
        server = MotoServer(scratch / "moto.log")
        if args.endpoint_url:
            server.endpoint_url = args.endpoint_url
        else:
            server.start()
        try:
            run_all(args, scratch, server)
        finally:
            server.stop()


def run_all(args: argparse.Namespace, scratch: Path, server: MotoServer) -> None:
    bucket = create_bucket(server)
    store = S3Store(bucket.name, "bench", **server.store_options())
    print(f"median of {args.runs} runs; MB = 10^6 bytes; {os.cpu_count()} CPUs")
    print(
        f"{'backend':<8}{'size':>8}{'store ms':>10}{'store MB/s':>12}"
        f"{'floor ms':>10}{'floor MB/s':>12}{'store/floor':>13}"
    )
    for label, size in SIZES:
        for backend, (ours, floor) in (
            ("local", local_rows(size, args.runs, scratch)),
            ("s3", s3_rows(size, args.runs, store, bucket.client)),
        ):
            print(
                f"{backend:<8}{label:>8}{ours * 1000:>10.1f}{size / MB / ours:>12.1f}"
                f"{floor * 1000:>10.1f}{size / MB / floor:>12.1f}{ours / floor:>13.2f}"
            )
    large = args.large_mb * MB
    print(f"\nstreamed upload of {args.large_mb} MB (fresh process each):")
    print(
        f"{'backend':<8}{'peak RSS growth MiB':>22}{'traced peak MiB':>17}{'seconds':>10}"
        f"{'MB/s':>8}"
    )
    for backend, options in (
        ("local", {"root": str(scratch / "large")}),
        ("s3", {"bucket": bucket.name, "s3": server.store_options()}),
    ):
        growth, seconds, traced = measure_rss(backend, large, options)
        print(
            f"{backend:<8}{growth:>22.1f}{traced:>17.1f}{seconds:>10.2f}"
            f"{large / MB / seconds:>8.1f}"
        )


if __name__ == "__main__":
    main()
