"""The daily key-risk-indicator check: sites newly red are reported to the managers."""

from __future__ import annotations

from datetime import timedelta

from etmf.jobs import JobContext, periodic


@periodic("risk.red_sites", every=timedelta(days=1), title="Key risk indicator alerts")
def daily_red_sites(ctx: JobContext) -> None:
    from ctms.risk.alerts import notify_red_sites

    notify_red_sites(ctx.svc, progress=ctx.progress)


@periodic("risk.snapshot", every=timedelta(days=1), title="Key risk indicator snapshot")
def daily_snapshot(ctx: JobContext) -> None:
    from ctms.risk.trend import take_snapshots

    take_snapshots(ctx.svc, progress=ctx.progress)
