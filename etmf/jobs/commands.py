"""`etmf worker` and `etmf jobs …`: run background jobs outside the app process."""

from __future__ import annotations

import signal
import threading

import click


def register(main: click.Group) -> None:
    from etmf.cli import app_context, instance_option

    @main.command()
    @instance_option
    @click.option("--poll", default=2.0, show_default=True, help="Seconds between polls.")
    def worker(instance: str | None, poll: float) -> None:
        """Run background jobs and the periodic schedule until stopped (SIGTERM/SIGINT)."""
        from etmf.jobs import run_worker

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        with app_context(instance, jobs_runner="worker") as app:
            click.echo("Worker started; stop with Ctrl-C.")
            run_worker(app, stop=stop, poll_seconds=poll)

    @main.group()
    def jobs() -> None:
        """Background jobs."""

    @jobs.command("run-due")
    @instance_option
    def run_due(instance: str | None) -> None:
        """Start the periodic tasks that are due, run every queued job, then exit."""
        from etmf.jobs import requeue_stale, run_pumps, schedule_due, work_once

        with app_context(instance, jobs_runner="worker") as app:
            requeue_stale(app)
            scheduled = schedule_due(app)
            ran = work_once(app)
            drained = run_pumps(app)
        click.echo(f"{len(scheduled)} periodic task(s) started; {ran} job(s) run; "
                   f"{drained} outbox item(s) handled.")

    @jobs.command("list")
    @instance_option
    @click.option("--failed", is_flag=True, help="Only failed jobs.")
    def list_jobs(instance: str | None, failed: bool) -> None:
        """The most recent jobs, newest first."""
        from sqlalchemy import select

        from etmf.bootstrap import services
        from etmf.jobs.models import FAILED, Job

        q = select(Job).order_by(Job.created_at.desc()).limit(50)
        if failed:
            q = q.where(Job.status == FAILED)
        with app_context(instance) as app, services(app).db.read_session() as s:
            for job in s.scalars(q):
                line = f"{job.id}  {job.created_at:%Y-%m-%d %H:%M}  {job.status:7}  {job.title}"
                if job.error:
                    line += f"  — {job.error.splitlines()[0]}"
                click.echo(line)
