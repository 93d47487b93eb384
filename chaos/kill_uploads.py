"""Upload continuously while the server is killed with SIGKILL and restarted.

    python chaos/kill_uploads.py [--cycles 50] [--instance DIR] [--seed N]

Builds a fresh instance (SQLite and local blob store, the embedded default) with a study,
a TMF specialist and one document; starts `etmf serve` (gunicorn) on a free loopback port;
a client thread signs in and uploads new versions of the document through the web form
without pause, while the main thread kills the whole server (master and workers, SIGKILL)
at a random moment after each acknowledged upload and starts it again, CYCLES times.

Then, with the server stopped, it checks DESIGN.md invariant 2 end to end:

* every acknowledged upload (HTTP 302 to the document page) exists as a version with the
  exact SHA-256 of the bytes sent, and its blob is stored and verifies;
* no version row lacks its blob;
* `etmf storage verify` and `etmf audit verify` pass;

and prints the counts. Exit status 0 when all hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

PASSWORD = "Chaos-Monkey-Uploads-2026"
EMAIL = "chaos.specialist@example.org"
READY_TIMEOUT_S = 60.0


@dataclass
class Tally:
    attempted: int = 0
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (label, sha256)
    failed: int = 0  # connection dropped or refused: the server was being killed
    refused: dict[int, int] = field(default_factory=dict)  # unexpected HTTP statuses
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked_event: threading.Event = field(default_factory=threading.Event)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    env["ETMF_INSTANCE_PATH"] = str(instance)
    env["ETMF_LOG_LEVEL"] = "WARNING"
    return env


def _etmf(*args: str) -> list[str]:
    return [sys.executable, "-c", "from etmf.cli import main; main()", *args]


def build_instance(instance: Path) -> int:
    """A study, a TMF specialist and one document, built through the services."""
    from etmf import create_app
    from etmf.accounts.access import Access, Grant
    from etmf.accounts.services import NewUser, create_user, grant_membership
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.documents import services as docs
    from etmf.keys import ensure_system_keys
    from etmf.migrate import upgrade
    from etmf.settings import load_settings
    from etmf.studies.services import NewStudy, create_study

    app = create_app(load_settings(overrides={"instance_path": str(instance),
                                              "log_level": "WARNING"}, environ={}))
    svc = services(app)
    try:
        upgrade(svc.db.engine)
        ensure_system_keys(svc.settings)
        with app.app_context(), unit_of_work(svc.db, svc.clock, Actor.system("chaos")) as uow:
            study_id = create_study(uow, NewStudy(protocol_number="CHAOS-1",
                                                  title="Uploads under SIGKILL", phase="I",
                                                  sponsor="Chaos"))
            user = create_user(uow, NewUser(email=EMAIL, full_name="Casey Chaos",
                                            password=PASSWORD))
            grant_membership(uow, user_id=user.id, study_id=study_id, role="tmf_specialist")
            uow.commit()
        ref = svc.blobs.put(_content_stream(b"Initial plan.\n"))
        access = Access(user_id=user.id, name="Casey Chaos",
                        grants=(Grant(study_id, None, "tmf_specialist"),))
        with unit_of_work(svc.db, svc.clock, Actor(user.id, "Casey Chaos")) as uow:
            doc_id = docs.file_document(uow, access, docs.FileDocument(
                study_id=study_id, artifact="01.01.02", title="Trial Management Plan",
                file=docs.StoredFile(sha256=ref.sha256, size=ref.size, mime="text/plain",
                                     filename="plan.txt")))
            uow.commit()
        return doc_id
    finally:
        svc.db.dispose()


def _content_stream(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


class Server:
    """`etmf serve` in its own process group, so one SIGKILL takes master and workers."""

    def __init__(self, instance: Path, port: int, log_path: Path) -> None:
        self.instance, self.port, self.log_path = instance, port, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                _etmf("serve", "--instance", str(self.instance),
                      "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "2"),
                env=_clean_env(self.instance), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etmf serve exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError(f"etmf serve did not answer within {READY_TIMEOUT_S:.0f} s")

    def kill(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None


def uploader(base: str, doc_id: int, tally: Tally, stop: threading.Event,
             cycle: list[int], rng: random.Random) -> None:
    """Sign in and upload new versions until told to stop; count what was acknowledged."""
    session = requests.Session()
    signed_in = False
    n = 0
    while not stop.is_set():
        try:
            if not signed_in:
                page = session.get(f"{base}/login", timeout=10).text
                token = _hidden(page, "csrf_token")
                r = session.post(f"{base}/login", data={"email": EMAIL, "password": PASSWORD,
                                                        "csrf_token": token},
                                 allow_redirects=False, timeout=10)
                signed_in = r.status_code == 302
                continue
            page = session.get(f"{base}/documents/{doc_id}", timeout=10)
            if "/login" in page.url:
                signed_in = False
                continue
            token, version = _hidden(page.text, "csrf_token"), _hidden(page.text, "version")
            n += 1
            label = f"c{cycle[0]}-{n}"
            body = (f"Chaos upload {label} {uuid.uuid4()}\n".encode()
                    * rng.randint(1, 8000))
            digest = hashlib.sha256(body).hexdigest()
            with tally.lock:
                tally.attempted += 1
            r = session.post(f"{base}/documents/{doc_id}/versions",
                             data={"csrf_token": token, "version": version, "label": label},
                             files={"file": (f"{label}.txt", body, "text/plain")},
                             allow_redirects=False, timeout=30)
            if r.status_code == 302 and r.headers.get("Location", "").endswith(
                    f"/documents/{doc_id}"):
                with tally.lock:
                    tally.acknowledged.append((label, digest))
                tally.acked_event.set()
            else:
                with tally.lock:
                    tally.refused[r.status_code] = tally.refused.get(r.status_code, 0) + 1
        except (requests.RequestException, ValueError):
            with tally.lock:
                tally.failed += 1
            time.sleep(0.02)  # the server is down: do not spin while it restarts


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html)
    if not match:
        raise ValueError(f"no {name} in the page")
    return match.group(1)


def check(instance: Path, doc_id: int, tally: Tally) -> dict[str, object]:
    """With the server stopped: is every acknowledged upload there, with its blob?"""
    from sqlalchemy import select

    from etmf import create_app
    from etmf.bootstrap import services
    from etmf.documents.models import DocumentVersion
    from etmf.records.integrity import check_blob, find_unreferenced
    from etmf.settings import load_settings

    app = create_app(load_settings(overrides={"instance_path": str(instance),
                                              "log_level": "WARNING"}, environ={}))
    svc = services(app)
    try:
        with svc.db.read_session() as session:
            versions = {v.label: v.sha256 for v in session.scalars(
                select(DocumentVersion).where(DocumentVersion.document_id == doc_id))}
            all_rows = list(session.scalars(select(DocumentVersion.sha256)))
            unreferenced = len(find_unreferenced(session, svc.blobs).unreferenced)
        lost = [label for label, digest in tally.acknowledged if versions.get(label) != digest]
        acked_bad_blob = [label for label, digest in tally.acknowledged
                          if label not in lost and check_blob(svc.blobs, digest) is not None]
        rows_without_blob = sum(1 for digest in all_rows if not svc.blobs.exists(digest))
    finally:
        svc.db.dispose()
    env = _clean_env(instance)
    storage = subprocess.run(_etmf("storage", "verify", "--instance", str(instance)),
                             env=env, capture_output=True, text=True)
    audit = subprocess.run(_etmf("audit", "verify", "--instance", str(instance)),
                           env=env, capture_output=True, text=True)
    return {"versions_in_database": len(all_rows), "lost": lost,
            "acknowledged_with_bad_blob": acked_bad_blob, "rows_without_blob": rows_without_blob,
            "unreferenced_blobs": unreferenced,
            "storage_verify": storage.returncode == 0, "storage_output": storage.stdout,
            "audit_verify": audit.returncode == 0, "audit_output": audit.stdout}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=50, help="kill/restart cycles (50)")
    parser.add_argument("--instance", type=Path, default=None,
                        help="instance folder to create (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (timings, sizes)")
    parser.add_argument("--max-kill-delay", type=float, default=0.25,
                        help="longest pause after an acknowledged upload before the kill (s)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    instance = args.instance or Path(tempfile.mkdtemp(prefix="etmf-chaos-"))
    instance.mkdir(parents=True, exist_ok=True)
    if any(instance.iterdir()):
        print(f"{instance} is not empty; give a new folder.", file=sys.stderr)
        return 2
    print(f"instance {instance}, seed {seed}, {args.cycles} cycles", flush=True)
    doc_id = build_instance(instance)
    port = _free_port()
    server = Server(instance, port, instance / "serve.log")
    tally, stop, cycle = Tally(), threading.Event(), [0]
    server.start()
    client = threading.Thread(target=uploader, args=(f"http://127.0.0.1:{port}", doc_id,
                                                     tally, stop, cycle, rng), daemon=True)
    client.start()
    started = time.monotonic()
    try:
        for i in range(1, args.cycles + 1):
            cycle[0] = i
            tally.acked_event.clear()
            if not tally.acked_event.wait(timeout=60):
                print(f"cycle {i}: no upload acknowledged within 60 s", file=sys.stderr)
            time.sleep(rng.uniform(0, args.max_kill_delay))  # land mid-request at random
            server.kill()
            server.start()
            if i % 10 == 0 or i == args.cycles:
                print(f"  cycle {i}: {len(tally.acknowledged)} acknowledged so far", flush=True)
        tally.acked_event.clear()
        tally.acked_event.wait(timeout=60)  # one more upload after the last restart
    finally:
        stop.set()
        client.join(timeout=60)
        server.kill()
    elapsed = time.monotonic() - started
    result = check(instance, doc_id, tally)
    ok = (not result["lost"] and not result["acknowledged_with_bad_blob"]
          and result["rows_without_blob"] == 0 and result["storage_verify"]
          and result["audit_verify"] and not tally.refused)
    print(f"cycles={args.cycles} attempted={tally.attempted} "
          f"acknowledged={len(tally.acknowledged)} unacknowledged={tally.failed} "
          f"refused={sum(tally.refused.values())} "
          f"versions_in_database={result['versions_in_database']} "
          f"lost={len(result['lost'])} rows_without_blob={result['rows_without_blob']} "
          f"acknowledged_with_bad_blob={len(result['acknowledged_with_bad_blob'])} "
          f"unreferenced_blobs={result['unreferenced_blobs']} "
          f"storage_verify={'ok' if result['storage_verify'] else 'FAILED'} "
          f"audit_verify={'ok' if result['audit_verify'] else 'FAILED'} "
          f"seconds={elapsed:.0f}")
    if not ok:
        print(result["storage_output"], result["audit_output"], sep="\n")
        if tally.refused:
            print(f"unexpected HTTP statuses: {tally.refused}")
        if result["lost"]:
            print(f"LOST acknowledged uploads: {result['lost'][:20]}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
