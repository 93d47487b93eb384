"""Peak memory of the server during a 1 GB upload over HTTP, beside the floor.

    python benchmarks/upload_memory.py [--size-mb 1024] [--instance DIR]

Starts `etmf serve` (gunicorn, one worker) on a fresh embedded instance, signs in, and
uploads SIZE MB as a new version of a document through the web form, streaming the request
body from a generator (the client holds 1 MB at a time). The worker's peak resident set
(VmHWM, reset through /proc/PID/clear_refs just before the upload) minus its resident set
before the upload is the growth caused by the upload; DESIGN.md invariant 2 allows a few
tens of MB (issue 4: at most 64 MB). The floor is the same measure for a bare process that
writes the same bytes to a file in 1 MB chunks. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ etmf upload benchmark\n"


def _chaos():  # type: ignore[no-untyped-def]
    """Reuse the instance builder and server wrapper of chaos/kill_uploads.py."""
    spec = importlib.util.spec_from_file_location("kill_uploads",
                                                  HERE.parent / "chaos" / "kill_uploads.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_uploads"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _block() -> bytes:
    return (LINE * (MB // len(LINE) + 1))[:MB]


class _Body:
    """A multipart body read in 1 MB pieces; ``len`` gives requests its Content-Length."""

    def __init__(self, boundary: str, fields: dict[str, str], size: int) -> None:
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            .encode() for k, v in fields.items())
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n').encode()
        self._parts = self._generate(head, size, f"\r\n--{boundary}--\r\n".encode())
        self._length = len(head) + size + len(f"\r\n--{boundary}--\r\n")
        self._pending = b""

    @staticmethod
    def _generate(head: bytes, size: int, tail: bytes) -> Iterator[bytes]:
        yield head
        block = _block()
        left = size
        while left:
            n = min(left, MB)
            yield block[:n]
            left -= n
        yield tail

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        while len(self._pending) < max(n, 1):
            piece = next(self._parts, None)
            if piece is None:
                break
            self._pending += piece
        if n < 0:
            n = len(self._pending)
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


def floor(size: int, folder: Path) -> int:
    """Peak RSS growth of this very process writing ``size`` bytes to a file."""
    import subprocess

    code = (
        "import os,sys\n"
        "def st():\n"
        "  d={}\n"
        "  for l in open('/proc/self/status'):\n"
        "    k,_,v=l.partition(':')\n"
        "    d[k]=int(v.split()[0])*1024 if k in ('VmRSS','VmHWM') else 0\n"
        "  return d\n"
        f"line={LINE!r}\n"
        "block=(line*(1048576//len(line)+1))[:1048576]\n"
        "open('/proc/self/clear_refs','w').write('5')\n"
        "before=st()['VmRSS']\n"
        f"left={size}\n"
        f"with open({str(folder / 'floor.bin')!r},'wb') as f:\n"
        "  while left:\n"
        "    n=min(left,1048576); f.write(block[:n]); left-=n\n"
        "  f.flush(); os.fsync(f.fileno())\n"
        "print(st()['VmHWM']-before)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    (folder / "floor.bin").unlink()
    return int(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--instance", type=Path, default=None)
    args = parser.parse_args(argv)
    size = args.size_mb * MB
    chaos = _chaos()
    instance = args.instance or Path(tempfile.mkdtemp(prefix="etmf-bench-upload-"))
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "settings.toml").write_text(f"max_upload_mb = {args.size_mb + 16}\n")
    doc_id = chaos.build_instance(instance)
    port = chaos._free_port()
    server = chaos.Server(instance, port, instance / "serve.log")
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        session = requests.Session()
        token = chaos._hidden(session.get(f"{base}/login").text, "csrf_token")
        session.post(f"{base}/login", data={"email": chaos.EMAIL, "password": chaos.PASSWORD,
                                             "csrf_token": token}, allow_redirects=False)
        page = session.get(f"{base}/documents/{doc_id}").text  # warms the worker up
        workers = _children(server.process.pid)
        before = {pid: _status(pid)["VmRSS"] for pid in workers}
        for pid in workers:
            _reset_peak(pid)
        boundary = "etmfbench" + os.urandom(8).hex()
        body = _Body(boundary, {"csrf_token": chaos._hidden(page, "csrf_token"),
                                "version": chaos._hidden(page, "version"), "label": "big"},
                     size)
        started = time.monotonic()
        r = session.post(f"{base}/documents/{doc_id}/versions", data=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                         allow_redirects=False, timeout=3600)
        elapsed = time.monotonic() - started
        growth = {pid: _status(pid)["VmHWM"] - before[pid] for pid in workers}
        status = r.status_code
        message = "" if status == 302 else re.sub(r"\s+", " ", r.text)[:300]
    finally:
        server.kill()
    bare = floor(size, instance)
    if args.instance is None:  # three copies of the upload: spool, intake, blob
        shutil.rmtree(instance, ignore_errors=True)
    worst = max(growth.values())
    print(f"upload of {args.size_mb} MB over HTTP: HTTP {status} in {elapsed:.1f} s "
          f"({args.size_mb / elapsed:.0f} MB/s) {message}")
    print(f"  server worker peak RSS growth: {worst / MB:.1f} MB "
          f"(per worker: {', '.join(f'{g / MB:.1f}' for g in growth.values())})")
    print(f"  floor (bare file write of the same bytes): {bare / MB:.1f} MB")
    print(f"  budget: 64 MB -> {'OK' if worst <= 64 * MB and status == 302 else 'OVER'}")
    return 0 if status == 302 and worst <= 64 * MB else 1


if __name__ == "__main__":
    sys.exit(main())
