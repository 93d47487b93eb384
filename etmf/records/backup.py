"""Backup and restore of a whole instance, verified end to end (REC-4).

A backup is a folder::

    manifest.json          what is inside, every file's SHA-256, the audit chain head
    database/etmf.sqlite   SQLite: a consistent copy made with SQLite's online backup API
    database/<table>.jsonl PostgreSQL: a logical dump of every table, read in one
                           REPEATABLE READ snapshot through SQLAlchemy Core
    blobs/ab/cd/<sha256>   every blob a document version references, read through the
                           verifying reader (a corrupt blob stops the backup)
    checkpoints/sth-*.json the signed audit checkpoints kept outside the database
    instance/keys/…        the instance's keys (encrypted at rest) and, when the secret key
    instance/secret_key    lives in the instance folder, that file: without it the restored
                           server cannot decrypt its keys or check passwords. Keep backups
                           as private as the instance itself (the folder is mode 0700).

Restore goes into an EMPTY instance only, and never re-chains the audit log: audit events
are inserted as stored rows (their ``prev_hash`` and ``hash`` columns copied, never
recomputed; DESIGN.md invariant 1). Every file is checked against the manifest before
anything is written; blobs go in before the database rows that reference them; the rows go
in one transaction. Afterwards the restore verifies: every referenced blob re-hashes, the
chain verifies, its head equals the manifest's, every checkpoint's signature (with the
public key in the manifest) and tree head match the restored log, and every table holds
the number of rows the manifest says.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.pool import NullPool

from etmf.audit.checkpoint import (
    LogDoesNotMatchCheckpoint,
    SignedTreeHead,
    check_log_against_tree_head,
    verify_tree_head,
)
from etmf.audit.service import checkpoint_dir, public_key
from etmf.audit.verify import verify_chain
from etmf.bootstrap import Services
from etmf.clock import utc_iso
from etmf.errors import EtmfError
from etmf.migrate import current_revision, upgrade
from etmf.records.integrity import referenced_digests, verify_referenced_blobs
from storage.errors import BlobIntegrityError, BlobNotFound

MANIFEST = "manifest.json"
FORMAT = "etmf-backup"
FORMAT_VERSION = 1
SQLITE_FILE = "database/etmf.sqlite"
CHUNK = 1024 * 1024
BATCH = 1000
#: Tables a migration fills (schema stamps): replaced by the backup's rows on restore.
_BOOKKEEPING = frozenset({"alembic_version"})

Progress = Callable[[str, int], None]
"""Called with a phase name and a number of items done."""


class BackupError(EtmfError):
    status = 500
    code = "backup_failed"
    title = "The backup could not be made"


class RestoreRefused(EtmfError):
    status = 409
    code = "restore_refused"
    title = "The backup was not restored"


class RestoreVerificationFailed(EtmfError):
    status = 500
    code = "restore_unverified"
    title = "The restored instance did not verify"


@dataclass
class BackupSummary:
    path: Path
    tables: int
    rows: int
    events: int
    head_seq: int
    head_hash: str
    blobs: int
    blob_bytes: int
    checkpoints: int


@dataclass
class RestoreReport:
    tables: int = 0
    rows: int = 0
    blobs: int = 0
    events: int = 0
    head_seq: int = 0
    head_hash: str = ""
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---- small helpers ------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _blob_path(root: Path, sha256: str) -> Path:
    return root / "blobs" / sha256[:2] / sha256[2:4] / sha256


def _notify(progress: Progress | None, phase: str, n: int = 1) -> None:
    if progress is not None:
        progress(phase, n)


def _sqlite_path(engine: Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("Only a SQLite database stored in a file can be backed up.")
    return database


# ---- value encoding for the logical dump --------------------------------------------------


def _encode(value: Any) -> Any:
    """A column value as JSON that decodes to the same Python value (tagged where needed)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, (dict, list)):
        return {"$json": value}
    raise BackupError(f"A column value of type {type(value).__name__} cannot be backed up.")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$bytes": base64.b64decode,
    "$decimal": decimal.Decimal,
    "$float": float,
    "$uuid": uuid.UUID,
    "$json": lambda v: v,
}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        ((tag, inner),) = value.items()
        return _DECODERS[tag](inner)
    return value


def _dumpable_columns(table: Table) -> list[str]:
    """Columns with stored values: generated (computed) columns are rebuilt by the database."""
    return [c.name for c in table.columns if c.computed is None]


# ---- backup -------------------------------------------------------------------------------


def create_backup(svc: Services, dest: Path, *, progress: Progress | None = None) -> BackupSummary:
    """Write a verified backup of the instance to the new folder ``dest``.

    Written into ``<dest>.partial-*`` and renamed when complete, so a folder named ``dest``
    is always a whole backup. The database is read as one consistent snapshot; the blobs
    are those the snapshot references (write-once, so they cannot have changed since).
    """
    dest = dest.resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} already exists and is not an empty folder; "
                          "choose a new folder for the backup.")
    work = dest.parent / f"{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        work.mkdir(parents=True, mode=0o700)
        (work / "database").mkdir()
        manifest: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created_at": utc_iso(svc.clock.now()),
            "source": {"database": svc.db.dialect, "storage": svc.blobs.describe(),
                       "instance": str(svc.settings.instance_path)},
            "schema_revision": current_revision(svc.db.engine),
        }
        if svc.db.dialect == "sqlite":
            snapshot = _backup_sqlite(svc, work, progress)
        else:
            snapshot = _backup_logical(svc, work, progress)
        manifest["database"] = snapshot["database"]
        manifest["audit_head"] = snapshot["audit_head"]
        blobs = _copy_blobs(svc, work, sorted(snapshot["digests"]), progress)
        manifest["blobs"] = blobs
        manifest["checkpoints"] = _copy_checkpoints(svc, work)
        manifest["checkpoint_public_key"] = _checkpoint_public_key(svc)
        manifest["instance_files"] = _copy_instance_files(svc, work)
        manifest["notes"] = [
            "Restore with `etmf backup restore PATH` into an empty instance.",
            "The search index is not part of the backup on SQLite (Whoosh): rebuild it "
            "after a restore with `etmf search reindex`.",
        ]
        path = work / MANIFEST
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _fsync_file(path)
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    tables = manifest["database"]["tables"]
    return BackupSummary(
        path=dest, tables=len(tables), rows=sum(tables.values()),
        events=tables.get("audit_events", 0), head_seq=manifest["audit_head"]["seq"],
        head_hash=manifest["audit_head"]["hash"], blobs=len(blobs),
        blob_bytes=sum(b["size"] for b in blobs), checkpoints=len(manifest["checkpoints"]))


def _snapshot_facts(conn: Connection, tables: list[Table]) -> dict[str, Any]:
    """Audit head, row counts and referenced digests, read inside the snapshot."""
    head = conn.execute(text(
        "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")).first()
    counts = {t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
              for t in tables}
    digests = set(conn.scalars(text("SELECT DISTINCT sha256 FROM document_versions")))
    return {"audit_head": {"seq": int(head[0]) if head else 0,
                           "hash": head[1] if head else None},
            "counts": counts, "digests": digests}


def _backup_sqlite(svc: Services, work: Path, progress: Progress | None) -> dict[str, Any]:
    target = work / SQLITE_FILE
    source = sqlite3.connect(_sqlite_path(svc.db.engine), timeout=30)
    copy = sqlite3.connect(target)
    try:
        # The online backup API copies a consistent snapshot while the server keeps running.
        source.backup(copy, pages=1024)
        copy.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
        copy.commit()
    finally:
        copy.close()
        source.close()
    _fsync_file(target)
    engine = _read_only_sqlite(target)
    try:
        with engine.connect() as conn:
            meta = MetaData()
            meta.reflect(conn)
            tables = list(meta.sorted_tables)
            facts = _snapshot_facts(conn, tables)
    finally:
        engine.dispose()
    _notify(progress, "database", sum(facts["counts"].values()))
    return {"database": {"format": "sqlite", "files": {SQLITE_FILE: _sha256_file(target)},
                         "tables": facts["counts"]},
            "audit_head": facts["audit_head"], "digests": facts["digests"]}


def _read_only_sqlite(path: Path) -> Engine:
    return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)


def _backup_logical(svc: Services, work: Path, progress: Progress | None) -> dict[str, Any]:
    files: dict[str, str] = {}
    # One REPEATABLE READ transaction: every table is read from the same snapshot.
    with svc.db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        meta = MetaData()
        meta.reflect(conn)
        tables = list(meta.sorted_tables)
        facts = _snapshot_facts(conn, tables)
        for table in tables:
            columns = _dumpable_columns(table)
            name = f"database/{table.name}.jsonl"
            path = work / name
            order = list(table.primary_key.columns) or [table.c[c] for c in columns]
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
                select(*[table.c[c] for c in columns]).order_by(*order))
            with path.open("w", encoding="utf-8") as out:
                out.write(json.dumps({"table": table.name, "columns": columns}) + "\n")
                for row in result:
                    out.write(json.dumps([_encode(v) for v in row], ensure_ascii=False,
                                         separators=(",", ":")) + "\n")
                    _notify(progress, "database", 1)
                out.flush()
                os.fsync(out.fileno())
            files[name] = _sha256_file(path)
        conn.rollback()
    return {"database": {"format": "jsonl", "files": files, "tables": facts["counts"]},
            "audit_head": facts["audit_head"], "digests": facts["digests"]}


def _copy_blobs(svc: Services, work: Path, digests: list[str],
                progress: Progress | None) -> list[dict[str, Any]]:
    store = svc.blobs
    out: list[dict[str, Any]] = []
    for digest in digests:
        path = _blob_path(work, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            with store.open(digest) as reader, path.open("wb") as fh:
                for chunk in reader:
                    fh.write(chunk)
                    size += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except (BlobIntegrityError, BlobNotFound) as exc:
            raise BackupError(
                f"Blob {digest} could not be backed up: {exc} Run `etmf storage verify` to "
                "see which documents are affected; no backup was written.") from None
        out.append({"sha256": digest, "size": size,
                    "path": str(path.relative_to(work))})
        _notify(progress, "blobs", 1)
    return out


def _copy_checkpoints(svc: Services, work: Path) -> list[dict[str, str]]:
    source = checkpoint_dir(svc.settings)
    copied = []
    if source.is_dir():
        (work / "checkpoints").mkdir()
        for path in sorted(source.glob("sth-*.json")):
            target = work / "checkpoints" / path.name
            shutil.copyfile(path, target)
            _fsync_file(target)
            copied.append({"path": f"checkpoints/{path.name}", "sha256": _sha256_file(target)})
    return copied


def _checkpoint_public_key(svc: Services) -> str | None:
    if not (svc.settings.keys_path / "audit-checkpoint.pem").exists():
        return None
    return public_key(svc.settings)


def _copy_instance_files(svc: Services, work: Path) -> list[dict[str, str]]:
    instance = svc.settings.instance_path
    sources: list[Path] = []
    if svc.settings.keys_path.is_dir():
        sources += sorted(p for p in svc.settings.keys_path.rglob("*") if p.is_file())
    secret = instance / "secret_key"
    if secret.is_file():
        sources.append(secret)
    copied = []
    for path in sources:
        try:
            relative = path.relative_to(instance)
        except ValueError:  # keys kept outside the instance folder are not ours to copy
            continue
        target = work / "instance" / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
        copied.append({"path": f"instance/{relative.as_posix()}",
                       "sha256": _sha256_file(target)})
    return copied


# ---- restore ------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    if not path.is_file():
        raise RestoreRefused(f"{src} is not an eTMF backup: it has no {MANIFEST}.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RestoreRefused(f"{path} is not valid JSON ({exc}); nothing was restored.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreRefused(f"{path} is not an eTMF backup manifest; nothing was restored.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RestoreRefused(
            f"The backup has format version {manifest.get('format_version')!r}; this server "
            f"restores version {FORMAT_VERSION}. Nothing was restored.")
    for key in ("database", "audit_head", "blobs", "checkpoints", "instance_files"):
        if key not in manifest:
            raise RestoreRefused(f"The manifest lacks {key!r}; nothing was restored.")
    return manifest


def check_backup_files(src: Path, manifest: dict[str, Any],
                       progress: Progress | None = None) -> None:
    """Every file against its checksum in the manifest; refuse the backup at the first miss."""
    expected: list[tuple[str, str, str]] = []
    for name, digest in manifest["database"]["files"].items():
        expected.append((name, digest, "database file"))
    for blob in manifest["blobs"]:
        expected.append((blob["path"], blob["sha256"], "blob"))
        if Path(blob["path"]).name != blob["sha256"]:
            raise RestoreRefused(f"The manifest lists blob {blob['sha256']} at "
                                 f"{blob['path']}; nothing was restored.")
    for item in manifest["checkpoints"] + manifest["instance_files"]:
        expected.append((item["path"], item["sha256"], "file"))
    root = src.resolve()
    for relative, digest, kind in expected:
        path = (root / relative).resolve()
        if root not in path.parents:
            raise RestoreRefused(f"The manifest names {relative!r}, outside the backup; "
                                 "nothing was restored.")
        if not path.is_file():
            raise RestoreRefused(f"The backup is incomplete: {kind} {relative} is missing. "
                                 "Nothing was restored.")
        actual = _sha256_file(path)
        if actual != digest:
            raise RestoreRefused(
                f"The backup is damaged: {kind} {relative} has SHA-256 {actual}, but the "
                f"manifest records {digest}. Nothing was restored.")
        _notify(progress, "checking backup", 1)


def _reflect(conn: Connection) -> MetaData:
    meta = MetaData()
    meta.reflect(conn)
    return meta


def _check_target_empty(svc: Services, manifest: dict[str, Any]) -> None:
    from etmf.db import Base

    with svc.db.engine.connect() as conn:
        meta = _reflect(conn)
        ours = {t.name for t in Base.metadata.sorted_tables} | {"audit_events"}
        busy = [t.name for t in meta.sorted_tables
                if t.name in ours and t.name not in _BOOKKEEPING
                and conn.scalar(select(func.count()).select_from(t))]
    if busy:
        raise RestoreRefused(
            "A backup is restored into an empty instance only; this one has records in "
            f"{', '.join(sorted(busy))}. Create a new instance (new database and storage) "
            "and restore there. Nothing was restored.")
    folder = checkpoint_dir(svc.settings)
    if folder.is_dir() and any(folder.glob("sth-*.json")):
        raise RestoreRefused(f"The instance already has audit checkpoints in {folder}; "
                             "restore into an empty instance. Nothing was restored.")
    wanted = {b["sha256"] for b in manifest["blobs"]}
    strangers = sum(1 for ref in svc.blobs.iter_refs() if ref.sha256 not in wanted)
    if strangers:
        raise RestoreRefused(
            f"The blob store {svc.blobs.describe()} holds {strangers} file(s) that are not "
            "part of this backup; restore into empty storage. Nothing was restored.")


def restore_backup(svc: Services, src: Path, *,
                   progress: Progress | None = None) -> RestoreReport:
    """Restore the backup in ``src`` into this (empty) instance, then verify it."""
    src = src.resolve()
    manifest = read_manifest(src)
    check_backup_files(src, manifest, progress)
    upgrade(svc.db.engine)
    revision = current_revision(svc.db.engine)
    if revision != manifest.get("schema_revision"):
        raise RestoreRefused(
            f"The backup was made at schema revision {manifest.get('schema_revision')}, this "
            f"server is at {revision}. Restore with the server version that made the backup, "
            "then upgrade. Nothing was restored.")
    _check_target_empty(svc, manifest)

    report = RestoreReport()
    store = svc.blobs
    for blob in manifest["blobs"]:  # blobs first: no row may reference a missing blob
        if not store.exists(blob["sha256"]):
            with (src / blob["path"]).open("rb") as fh:
                store.put(fh, expected_sha256=blob["sha256"])
        report.blobs += 1
        _notify(progress, "blobs", 1)
    report.rows, report.tables = _load_database(svc, src, manifest, progress)
    _restore_files(svc, src, manifest)
    verify_restored(svc, manifest, report)
    return report


def _source_rows(src: Path, manifest: dict[str, Any]) -> Callable[[str], Iterator[tuple[list[str], Iterator[list[Any]]]]]:
    """A function giving (columns, rows) of one backed-up table."""
    database = manifest["database"]
    if database["format"] == "sqlite":
        path = src / SQLITE_FILE

        def from_sqlite(name: str) -> Iterator[tuple[list[str], Iterator[list[Any]]]]:
            engine = _read_only_sqlite(path)
            try:
                with engine.connect() as conn:
                    table = Table(name, MetaData(), autoload_with=conn)
                    columns = _dumpable_columns(table)
                    order = list(table.primary_key.columns) or [table.c[c] for c in columns]
                    result = conn.execute(select(*[table.c[c] for c in columns]).order_by(*order))
                    yield columns, (list(row) for row in result)
            finally:
                engine.dispose()

        return from_sqlite
    if database["format"] == "jsonl":

        def from_jsonl(name: str) -> Iterator[tuple[list[str], Iterator[list[Any]]]]:
            with (src / "database" / f"{name}.jsonl").open(encoding="utf-8") as fh:
                header = json.loads(fh.readline())
                yield header["columns"], ([_decode(v) for v in json.loads(line)] for line in fh)

        return from_jsonl
    raise RestoreRefused(f"Unknown database format {database['format']!r} in the manifest.")


def _fit(value: Any, column: Any, dialect: str) -> Any:
    """Carry a value across databases: UTC timestamps naive on SQLite, aware on PostgreSQL."""
    if isinstance(value, dt.datetime) and isinstance(column.type, DateTime):
        if dialect == "sqlite":
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
        elif value.tzinfo is None and column.type.timezone:
            value = value.replace(tzinfo=dt.UTC)
    return value


def _load_database(svc: Services, src: Path, manifest: dict[str, Any],
                   progress: Progress | None) -> tuple[int, int]:
    tables_in_backup: dict[str, int] = manifest["database"]["tables"]
    rows_of = _source_rows(src, manifest)
    total = 0
    with svc.db.write_session() as session:
        conn = session.connection()
        meta = _reflect(conn)
        missing = sorted(set(tables_in_backup) - set(meta.tables))
        if missing:
            raise RestoreRefused(f"This server has no table(s) {', '.join(missing)} that the "
                                 "backup holds. Nothing was restored.")
        dialect = conn.dialect.name
        loaded = 0
        for table in meta.sorted_tables:
            if table.name not in tables_in_backup or table.name in _BOOKKEEPING:
                continue
            # A migration may have stamped rows (e.g. the search schema version): the
            # backup's rows, made at the same revision, take their place.
            if table.name != "audit_events":  # checked empty; never DELETE from the log
                conn.execute(table.delete())
            for columns, rows in rows_of(table.name):
                unknown = [c for c in columns if c not in table.c]
                if unknown:
                    raise RestoreRefused(f"Table {table.name} of the backup has column(s) "
                                         f"{', '.join(unknown)} this server lacks.")
                cols = [table.c[c] for c in columns]
                batch: list[dict[str, Any]] = []
                for row in rows:
                    batch.append({c.name: _fit(v, c, dialect) for c, v in zip(cols, row,
                                                                              strict=True)})
                    if len(batch) >= BATCH:
                        conn.execute(table.insert(), batch)
                        total += len(batch)
                        _notify(progress, "database", len(batch))
                        batch = []
                if batch:
                    conn.execute(table.insert(), batch)
                    total += len(batch)
                    _notify(progress, "database", len(batch))
            loaded += 1
        if dialect == "postgresql":
            _reset_sequences(conn, meta)
        session.commit()
    return total, loaded


def _reset_sequences(conn: Connection, meta: MetaData) -> None:
    """Serial columns continue after the restored ids instead of colliding with them."""
    for table in meta.sorted_tables:
        for column in table.primary_key.columns:
            sequence = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                   {"t": table.name, "c": column.name})
            if sequence:
                conn.execute(text(
                    f'SELECT setval(:s, COALESCE((SELECT max("{column.name}") FROM '
                    f'"{table.name}"), 0) + 1, false)'), {"s": sequence})


def _restore_files(svc: Services, src: Path, manifest: dict[str, Any]) -> None:
    folder = checkpoint_dir(svc.settings)
    folder.mkdir(parents=True, exist_ok=True)
    for item in manifest["checkpoints"]:
        target = folder / Path(item["path"]).name
        shutil.copyfile(src / item["path"], target)
        os.chmod(target, 0o444)
    instance = svc.settings.instance_path
    for item in manifest["instance_files"]:
        relative = Path(item["path"]).relative_to("instance")
        target = instance / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if target.exists():  # the empty instance's own fresh key: the backup's replaces it
            target.unlink()
        shutil.copyfile(src / item["path"], target)
        os.chmod(target, 0o600)


def verify_restored(svc: Services, manifest: dict[str, Any], report: RestoreReport) -> None:
    """Checksums, chain, chain head, checkpoints and row counts against the manifest."""
    with svc.db.read_session() as session:
        chain = verify_chain(session)
        report.events = chain.checked
        report.head_seq, report.head_hash = chain.head_seq, chain.head_hash
        if not chain.ok:
            report.problems.append(f"audit chain: {chain.problem}")
        head = manifest["audit_head"]
        expected_hash = head["hash"] or "0" * 64
        if (chain.head_seq, chain.head_hash) != (head["seq"], expected_hash):
            report.problems.append(
                f"audit chain head is event {chain.head_seq} ({chain.head_hash}); the backup "
                f"recorded event {head['seq']} ({expected_hash})")
        scrub = verify_referenced_blobs(session, svc.blobs)
        report.problems.extend(p.describe() for p in scrub.problems)
        wanted = {b["sha256"] for b in manifest["blobs"]}
        if referenced_digests(session) != wanted:
            report.problems.append("the restored versions reference other blobs than the "
                                   "backup holds")
        conn = session.connection()
        meta = _reflect(conn)
        for name, count in manifest["database"]["tables"].items():
            if name in _BOOKKEEPING:
                continue
            actual = conn.scalar(select(func.count()).select_from(meta.tables[name]))
            if actual != count:
                report.problems.append(f"table {name}: {actual} rows restored, the backup "
                                       f"holds {count}")
        report.checkpoints = _verify_checkpoints(session, svc, manifest, report)
    if report.problems:
        raise RestoreVerificationFailed(
            "The backup was restored but did not verify: " + "; ".join(report.problems)
            + ". Do not put this instance into service.")


def _verify_checkpoints(session, svc: Services, manifest: dict[str, Any],  # type: ignore[no-untyped-def]
                        report: RestoreReport) -> int:
    from etmf.audit.service import iter_leaves

    pem = manifest.get("checkpoint_public_key")
    folder = checkpoint_dir(svc.settings)
    leaves = None
    checked = 0
    for item in manifest["checkpoints"]:
        sth = SignedTreeHead.from_json((folder / Path(item["path"]).name).read_text())
        if pem is None or not verify_tree_head(sth, pem):
            report.problems.append(f"checkpoint of {sth.tree_size} events: its signature "
                                   "does not verify with the backed-up public key")
            continue
        if leaves is None:
            leaves = list(iter_leaves(session))
        try:
            check_log_against_tree_head(leaves, sth)
        except LogDoesNotMatchCheckpoint as exc:
            report.problems.append(f"checkpoint of {sth.tree_size} events: {exc}")
        checked += 1
    return checked
