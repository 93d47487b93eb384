"""The daily signed checkpoint of the audit trail, started by the scheduler."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from etmf.jobs import JobContext, periodic


@periodic("audit.checkpoint", every=timedelta(days=1), title="Signed audit checkpoint")
def daily_checkpoint(ctx: JobContext) -> None:
    """Sign a tree head over the log once a day, unless nothing was appended since the last
    one (a retried run finds the checkpoint made and does nothing)."""
    from etmf.audit.models import Checkpoint
    from etmf.audit.service import create_checkpoint, event_count

    svc = ctx.svc
    with svc.db.read_session() as session:
        events = event_count(session)
        latest = session.scalar(select(func.max(Checkpoint.tree_size))) or 0
        if events == 0 or latest >= events:
            ctx.progress(1, 1, f"No new events since the checkpoint over {latest}.")
            return
        sth = create_checkpoint(session, svc.settings, svc.clock.now())
    ctx.progress(1, 1, f"Checkpoint over {sth.tree_size} events, root {sth.root_hash[:16]}…")
