"""`etmf storage verify|reconcile` and `etmf backup create|restore`: thin commands over
etmf.records.integrity and etmf.records.backup."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from etmf.cli import app_context, instance_option


def register(main: click.Group) -> None:
    main.add_command(storage)
    main.add_command(backup)


@click.group()
def storage() -> None:
    """Blob storage: scrub and reconcile."""


@storage.command("verify")
@instance_option
def storage_verify(instance: str | None) -> None:
    """Re-hash every blob a document version references; name each missing or corrupt one
    (document, title, version) and record an integrity alert. Non-zero exit on any."""
    from etmf.audit.store import Actor
    from etmf.bootstrap import services
    from etmf.records.integrity import (
        alert_for_problems,
        count_referenced_versions,
        verify_referenced_blobs,
    )

    with app_context(instance) as app:
        svc = services(app)
        with svc.db.read_session() as session:
            total = count_referenced_versions(session)
            with click.progressbar(length=total, label="Verifying stored files",
                                   file=sys.stderr) as bar:
                report = verify_referenced_blobs(session, svc.blobs, progress=bar.update)
        if report.problems:
            alert_for_problems(svc.db, svc.clock, Actor.system("etmf storage verify"),
                               svc.blobs, report.problems, svc.mailer)
        where = svc.blobs.describe()
    for problem in report.problems:
        click.echo(f"FAILED: {problem.describe()}")
    summary = (f"{report.blobs_checked} blobs ({report.versions_checked} versions, "
               f"{report.bytes_checked:,} bytes) checked in {where}")
    if report.problems:
        missing = sum(1 for p in report.problems if p.problem == "missing")
        click.echo(f"{summary}: {len(report.problems) - missing} corrupt and {missing} "
                   "missing version file(s); integrity alerts recorded.")
        sys.exit(1)
    click.echo(f"{summary}: every file matches its SHA-256.")


@storage.command("reconcile")
@instance_option
@click.option("--quarantine", is_flag=True,
              help="Move unreferenced blobs aside (never deleted, never a referenced one).")
def storage_reconcile(instance: str | None, quarantine: bool) -> None:
    """List blobs that no document version references (left by an interrupted upload);
    with --quarantine move them out of the content space."""
    from etmf.bootstrap import services
    from etmf.records.integrity import reconcile

    with app_context(instance) as app:
        svc = services(app)
        report = reconcile(svc.db, svc.blobs, quarantine=quarantine)
        where = svc.blobs.describe()
    moved = set(report.quarantined)
    for ref in report.unreferenced:
        state = "quarantined" if ref.sha256 in moved else "unreferenced"
        click.echo(f"{state}: {ref.sha256} ({ref.size:,} bytes)")
    for digest in report.missing:
        click.echo(f"MISSING: {digest} is referenced but not stored "
                   "(run `etmf storage verify`)")
    tail = f", {len(report.quarantined)} quarantined" if quarantine else ""
    click.echo(f"{report.stored} blobs in {where}, {report.referenced} referenced, "
               f"{len(report.unreferenced)} unreferenced{tail}.")
    if report.missing:
        sys.exit(1)


@click.group()
def backup() -> None:
    """Backup and restore of the whole instance."""


class _Phases:
    """Progress on stderr: a running count per phase on a terminal, a line per phase
    otherwise (logs stay readable)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last = ""
        self.tty = sys.stderr.isatty()

    def __call__(self, phase: str, n: int) -> None:
        if phase != self.last:
            self._finish_line()
            self.last = phase
        self.counts[phase] = self.counts.get(phase, 0) + n
        if self.tty:
            click.echo(f"\r  {phase}: {self.counts[phase]:,}", nl=False, err=True)

    def _finish_line(self) -> None:
        if not self.last:
            return
        if self.tty:
            click.echo("", err=True)
        else:
            click.echo(f"  {self.last}: {self.counts[self.last]:,}", err=True)

    def done(self) -> None:
        self._finish_line()
        self.last = ""


@backup.command("create")
@instance_option
@click.argument("path", type=click.Path(path_type=Path))
def backup_create(instance: str | None, path: Path) -> None:
    """Write a backup (database copy, referenced blobs, checkpoints, keys, manifest with
    every checksum and the audit chain head) to the new folder PATH."""
    from etmf.bootstrap import services
    from etmf.records.backup import create_backup

    phases = _Phases()
    with app_context(instance) as app:
        try:
            summary = create_backup(services(app), path, progress=phases)
        finally:
            phases.done()
    click.echo(f"Backup written to {summary.path}: {summary.tables} tables, "
               f"{summary.rows:,} rows ({summary.events:,} audit events, head "
               f"{summary.head_seq} {str(summary.head_hash)[:16]}…), {summary.blobs} blobs "
               f"({summary.blob_bytes:,} bytes), {summary.checkpoints} checkpoints.")


@backup.command("restore")
@instance_option
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
def backup_restore(instance: str | None, path: Path) -> None:
    """Restore the backup in PATH into this EMPTY instance, then verify every checksum,
    the audit chain and its head against the manifest. Non-zero exit on any failure."""
    from etmf.bootstrap import services
    from etmf.records.backup import restore_backup

    phases = _Phases()
    with app_context(instance) as app:
        try:
            report = restore_backup(services(app), path, progress=phases)
        finally:
            phases.done()
    click.echo(f"Restored and verified: {report.tables} tables, {report.rows:,} rows, "
               f"{report.events:,} audit events (chain intact, head {report.head_seq} "
               f"{report.head_hash[:16]}… as recorded), {report.blobs} blobs (every checksum "
               f"matches), {report.checkpoints} checkpoints verified.")
