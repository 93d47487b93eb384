"""The scheduler signs an audit checkpoint once a day, and only when the log grew."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from etmf import jobs
from etmf.audit.models import Checkpoint
from etmf.audit.service import event_count, verify_checkpoints


def _checkpoints(svc) -> list[int]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return list(s.scalars(select(Checkpoint.tree_size).order_by(Checkpoint.id)))


def _run_schedule(app) -> None:  # type: ignore[no-untyped-def]
    """Tick the scheduler and run only the checkpoint job it started (other daily tasks,
    such as the KRI snapshot, append events of their own and are tested elsewhere)."""
    for job_id in jobs.schedule_due(app):
        if jobs.get_job(app, job_id).kind == "audit.checkpoint":
            assert jobs.run_job(app, job_id) == jobs.DONE


def test_a_daily_checkpoint_is_signed_once_per_day_when_the_log_grew(app, svc, clock, world):
    _run_schedule(app)
    with svc.db.read_session() as s:
        size = event_count(s)
    assert _checkpoints(svc) == [size]
    assert (svc.settings.instance_path / "checkpoints" / f"sth-{size:012d}.json").is_file()

    _run_schedule(app)  # same day: the period is claimed, nothing new
    assert _checkpoints(svc) == [size]

    clock.advance(timedelta(days=1))  # next day, but no new events: no new checkpoint
    _run_schedule(app)
    assert _checkpoints(svc) == [size]

    world.user("monitor")  # the log grows
    clock.advance(timedelta(days=1))
    _run_schedule(app)
    with svc.db.read_session() as s:
        grown = event_count(s)
        checked, problems = verify_checkpoints(s, svc.settings)
    assert grown > size and _checkpoints(svc) == [size, grown]
    assert checked == 2 and problems == []
