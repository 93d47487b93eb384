"""Background EMS export: the job page shows progress and offers the zip when it is done."""

from __future__ import annotations

import tempfile

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
