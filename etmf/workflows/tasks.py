"""Background work of signature requests: the reminder run, started by the scheduler."""

from __future__ import annotations

from datetime import timedelta

from etmf.jobs import JobContext, periodic


@periodic("signatures.reminders", every=timedelta(hours=1),
          title="Signature request reminders")
def remind_pending_signers(ctx: JobContext) -> None:
    """Mail pending signers of requests due soon or overdue (each threshold once: running
    hourly only makes a reminder go out within the hour its threshold is reached)."""
    from etmf.workflows.reminders import send_reminders

    sent = send_reminders(ctx.svc, progress=ctx.progress)
    ctx.progress(len(sent), len(sent), f"{len(sent)} reminder(s) sent")
