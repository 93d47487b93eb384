"""Background EMS export and import: the job page shows progress, then offers the zip (export)
or the list of what was imported and left out (import)."""

from __future__ import annotations

import io
import tempfile

from etmf.accounts.roles import Permission
from etmf.errors import Forbidden
from etmf.exchange.export import Selection, require_export, write_package
from etmf.jobs import JobContext, task


@task("exchange.export", title="EMS export", max_attempts=2)
def export_job(ctx: JobContext, study_id: int, zones: list[str] | None = None,
               site_ids: list[int] | None = None) -> None:
    """Write the EMS package to a spool file, then keep it as the job's result."""
    from etmf.accounts.authn import load_access
    from etmf.accounts.models import User
    from etmf.studies.models import Study

    svc = ctx.svc
    now = svc.clock.now()
    with svc.db.read_session() as session:
        user = session.get(User, ctx.actor.id) if ctx.actor.id is not None else None
        if user is None:
            raise Forbidden("An EMS export job must be started by a user.")
        access = load_access(session, user, now)
        require_export(access, study_id)  # checked again: roles may change while queued
        study = session.get(Study, study_id)
        assert study is not None
        selection = Selection(zones=frozenset(zones) if zones else None,
                              site_ids=frozenset(site_ids) if site_ids else None)
        with tempfile.TemporaryFile() as spool:
            summary = write_package(session, svc.blobs, study_id, spool, now=now,
                                    selection=selection, access=access,
                                    progress=lambda done, total, msg: ctx.progress(
                                        done, total, f"Exported {done} of {total}: {msg}"))
            spool.seek(0)
            ctx.store_result(spool, f"{study.protocol_number}-EMS-{now:%Y%m%dT%H%M%SZ}.zip",
                             "application/zip")
    ctx.progress(summary.documents, summary.documents,
                 f"{summary.documents} documents, {summary.versions} versions exported")


@task("exchange.import", title="EMS import", max_attempts=1)
def import_job(ctx: JobContext, study_id: int, sha256: str, only_good: bool = False) -> None:
    """Import a package kept by the dry run; the job page shows progress and the result.

    Three phases on one progress bar: check every file (the dry run, read only), copy the
    good files into blob storage, then record the import in one unit of work (all or
    nothing). Progress is only written outside that transaction (writes are serialised).
    One attempt only: a failed import leaves no record, and re-importing is harmless.
    """
    from etmf.accounts.authn import load_access
    from etmf.accounts.models import User
    from etmf.exchange.importer import dry_run, import_package, prestore
    from etmf.exchange.staging import open_package

    svc = ctx.svc
    with svc.db.read_session() as session:
        user = session.get(User, ctx.actor.id) if ctx.actor.id is not None else None
        if user is None:
            raise Forbidden("An EMS import job must be started by a user.")
        access = load_access(session, user, svc.clock.now())
        access.require(Permission.IMPORT_TMF, study_id)  # roles may change while queued
    with open_package(svc.blobs, sha256) as package:
        with svc.db.read_session() as session:
            report = dry_run(session, package, study_id, progress=lambda done, total, msg:
                             ctx.progress(done, 3 * total, f"Checked {done} of {total}: {msg}"))
        n = max(1, len(report.objects))
        prestore(svc.blobs, package, report, progress=lambda done, total, msg: ctx.progress(
            n + done * n // max(1, total), 3 * n, f"Stored file {done} of {total}: {msg}"))
        ctx.progress(2 * n, 3 * n, "Recording the import")
        with ctx.unit_of_work() as uow:
            result = import_package(uow, access, svc.blobs, package, study_id=study_id,
                                    only_good=only_good, checked=report)
            uow.commit()
    summary = (f"Imported {result.documents} document(s) with {result.versions} version(s); "
               f"{len(result.skipped)} object(s) left out.")
    lines = [summary, *(f"Left out: {s}" for s in result.skipped)]
    ctx.store_result(io.BytesIO("\n".join(lines).encode() + b"\n"), "ems-import-result.txt",
                     "text/plain")
    ctx.progress(3 * n, 3 * n, summary)
