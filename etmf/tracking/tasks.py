"""The daily reminder run, started once a day by the job scheduler (`etmf worker`)."""

from __future__ import annotations

from datetime import timedelta

from etmf.jobs import JobContext, periodic


@periodic("tracking.reminders", every=timedelta(days=1),
          title="Expiry and milestone reminders")
def daily_reminders(ctx: JobContext) -> None:
    from etmf.tracking.reminders import send_reminders

    send_reminders(ctx.svc, progress=ctx.progress)
