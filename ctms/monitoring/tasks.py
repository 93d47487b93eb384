"""The daily reminders of overdue monitoring visit reports and action items."""

from __future__ import annotations

from datetime import timedelta

from etmf.jobs import JobContext, periodic


@periodic("monitoring.reminders", every=timedelta(days=1),
          title="Overdue visit report and action item reminders")
def daily_monitoring_reminders(ctx: JobContext) -> None:
    from ctms.monitoring.reminders import send_monitoring_reminders

    send_monitoring_reminders(ctx.svc, progress=ctx.progress)
