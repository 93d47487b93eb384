"""Installation and readiness checks (`etmf check`, `/readyz`)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etmf.bootstrap import Services


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


REQUIRED_DISTRIBUTIONS = (
    "Flask", "SQLAlchemy", "psycopg", "alembic", "boto3", "pypdf", "pyHanko", "python-docx",
    "Whoosh", "Flask-Security-Too", "argon2-cffi", "cryptography",
)


def _check(name: str, fn) -> CheckResult:  # type: ignore[no-untyped-def]
    try:
        detail = fn()
        return CheckResult(name, True, detail or "ok")
    except Exception as exc:  # a check reports any failure as a line, never a traceback
        return CheckResult(name, False, str(exc) or exc.__class__.__name__)


def check_packages() -> str:
    found = []
    for dist in REQUIRED_DISTRIBUTIONS:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"package {dist} is not installed") from None
    return f"Python {sys.version.split()[0]}; " + ", ".join(found)


def check_database(svc: Services) -> str:
    from etmf.migrate import current_revision, head_revision, pending_revisions

    url = svc.db.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        from pathlib import Path

        if not Path(url.database).is_file():
            raise RuntimeError(f"database file {url.database} does not exist; run `etmf init`")
    svc.db.ping()
    current = current_revision(svc.db.engine)
    head = head_revision(svc.db.engine)
    if current is None:
        raise RuntimeError(
            f"database {svc.db.engine.url.render_as_string(hide_password=True)} has no schema; "
            "run `etmf init`"
        )
    pending = pending_revisions(svc.db.engine)
    if pending:
        raise RuntimeError(f"schema at {current}, code expects {head} (not applied: "
                           f"{', '.join(pending)}); run `etmf db upgrade`")
    note = ""
    if svc.db.dialect == "postgresql":
        from sqlalchemy import text

        with svc.db.engine.connect() as conn:
            if conn.scalar(text("SHOW autovacuum")) != "on":
                # Not a failure (the server is usable), but the planner's statistics go
                # stale: searches at 250,000 documents took 1-2 s instead of 0.1-0.2 s.
                note = ("; autovacuum is off: planner statistics are not kept up to date "
                        "(turn it on, or run ANALYZE after bulk loads)")
    return f"{svc.db.dialect}, schema revision {current}{note}"


def check_storage(svc: Services) -> str:
    svc.blobs.health()
    if svc.settings.storage_backend == "local":
        path = svc.settings.blob_path
        with tempfile.NamedTemporaryFile(dir=path, prefix=".check-"):
            pass
        if not os.access(path, os.W_OK):
            raise RuntimeError(f"storage folder {path} is not writable")
    return str(svc.blobs.describe())


def check_search(svc: Services) -> str:
    index = svc.search
    index.health()
    return str(index.describe())


def check_keys(svc: Services) -> str:
    from etmf.keys import system_key_paths

    missing = [str(p) for p in system_key_paths(svc.settings) if not p.exists()]
    if missing:
        raise RuntimeError("missing " + ", ".join(missing) + "; run `etmf init`")
    return f"system keys in {svc.settings.keys_path}"


def check_clock(svc: Services) -> str:
    now = svc.clock.now()
    if now.tzinfo is None or now.utcoffset() != UTC.utcoffset(now):
        raise RuntimeError("the server clock does not give UTC")
    drift = abs(now.timestamp() - time.time())
    if drift > 5:
        raise RuntimeError(f"the injected clock is {drift:.0f} s away from the system clock")
    return f"UTC, {now.isoformat(timespec='seconds')}"


def installation_checks(svc: Services) -> list[CheckResult]:
    return [
        _check("packages", check_packages),
        _check("database", lambda: check_database(svc)),
        _check("storage", lambda: check_storage(svc)),
        _check("search", lambda: check_search(svc)),
        _check("keys", lambda: check_keys(svc)),
        _check("clock", lambda: check_clock(svc)),
    ]


def readiness(svc: Services) -> list[CheckResult]:
    return [
        _check("database", lambda: (svc.db.ping(), "ok")[1]),
        _check("storage", lambda: (svc.blobs.health(), "ok")[1]),
        _check("search", lambda: (svc.search.health(), "ok")[1]),
    ]
