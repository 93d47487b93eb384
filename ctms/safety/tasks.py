"""The daily SAE clock reminders, started once a day by the job scheduler."""

from __future__ import annotations

from datetime import timedelta

from etmf.jobs import JobContext, periodic


@periodic("safety.sae_reminders", every=timedelta(days=1), title="SAE reporting clock reminders")
def daily_sae_reminders(ctx: JobContext) -> None:
    from ctms.safety.reminders import send_sae_reminders

    send_sae_reminders(ctx.svc, progress=ctx.progress)
