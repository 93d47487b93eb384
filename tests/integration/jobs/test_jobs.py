"""Background jobs: progress, results, retries with back-off, the once-per-period schedule."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from etmf import jobs
from etmf.audit.store import Actor
from etmf.bootstrap import services
from etmf.jobs.models import DONE, FAILED, QUEUED, RUNNING, Job, ScheduleClaim
from tests.conftest import csrf_from

CALLS: list[str] = []


def count_task(ctx: jobs.JobContext, upto: int) -> None:
    for i in range(1, upto + 1):
        ctx.progress(i, upto, f"counted {i}")
    ctx.store_result(io.BytesIO(b"1\n" * upto), "counts.txt", "text/plain")


def flaky_task(ctx: jobs.JobContext, fail_times: int) -> None:
    CALLS.append(ctx.job_id)
    if CALLS.count(ctx.job_id) <= fail_times:
        raise RuntimeError(f"attempt {CALLS.count(ctx.job_id)} broke")


def daily_task(ctx: jobs.JobContext) -> None:
    CALLS.append("daily")


@pytest.fixture(autouse=True)
def _test_tasks():  # type: ignore[no-untyped-def]
    """Register this module's tasks only while its tests run (the registry is global)."""
    jobs.task("test.count", title="Count to a number")(count_task)
    jobs.task("test.flaky", max_attempts=3)(flaky_task)
    jobs.periodic("test.daily", every=timedelta(days=1))(daily_task)
    yield
    for kind in ("test.count", "test.flaky", "test.daily"):
        jobs._TASKS.pop(kind, None)


def _job(app, job_id):  # type: ignore[no-untyped-def]
    return jobs.get_job(app, job_id)


def test_a_job_reports_progress_and_keeps_its_result(app, world, login):
    user = world.user("study_manager")
    job_id = jobs.submit(app, "test.count", {"upto": 5}, actor=Actor(user.id, user.name))
    job = _job(app, job_id)
    assert (job.status, job.done, job.total, job.percent) == (DONE, 5, 5, 100)
    assert job.message == "counted 5" and job.result_filename == "counts.txt"

    client = login(user)
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Count to a number" in page and 'value="100"' in page and "Download counts.txt" in page
    assert client.get(f"/jobs/{job_id}.json").get_json()["percent"] == 100
    download = client.get(f"/jobs/{job_id}/download")
    assert download.status_code == 200 and download.data == b"1\n" * 5


def test_another_user_neither_sees_nor_downloads_someone_elses_job(app, world, login):
    owner, other = world.user("study_manager"), world.user("study_manager")
    job_id = jobs.submit(app, "test.count", {"upto": 2}, actor=Actor(owner.id, owner.name))
    client = login(other)
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.get(f"/jobs/{job_id}/download").status_code == 404


def test_a_failing_job_is_retried_with_back_off_then_marked_failed(app, clock, world, login):
    job_id = jobs.submit(app, "test.flaky", {"fail_times": 5})
    job = _job(app, job_id)
    assert (job.status, job.attempts) == (QUEUED, 1)
    assert "attempt 1 broke" in job.error
    assert job.run_after == clock.now() + timedelta(seconds=2)
    assert jobs.work_once(app) == 0  # not due yet: back-off

    clock.advance(timedelta(seconds=2))
    jobs.work_once(app)
    assert _job(app, job_id).run_after == clock.now() + timedelta(seconds=4)
    clock.advance(timedelta(seconds=4))
    jobs.work_once(app)
    job = _job(app, job_id)
    assert (job.status, job.attempts) == (FAILED, 3)
    assert "attempt 3 broke" in job.error

    admin = world.user("admin")
    client = login(admin)
    listing = client.get("/jobs/").get_data(as_text=True)
    assert "attempt 3 broke" in listing and "Retry" in listing


def test_an_administrator_retries_a_failed_job(app, world, login):
    job_id = jobs.submit(app, "test.flaky", {"fail_times": 1})
    with services(app).db.write_session() as s:  # as if it had used up its attempts
        s.execute(update(Job).where(Job.id == job_id).values(status=FAILED))
        s.commit()
    client = login(world.user("admin"))
    token = csrf_from(client.get("/jobs/").get_data(as_text=True))
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    assert _job(app, job_id).status == DONE


def test_the_same_dedupe_key_starts_the_work_once(app):
    first = jobs.submit(app, "test.count", {"upto": 1}, dedupe_key="export:1")
    again = jobs.submit(app, "test.count", {"upto": 1}, dedupe_key="export:1")
    assert first == again
    with services(app).db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_an_unknown_task_is_refused():
    from etmf.errors import ValidationError

    with pytest.raises(ValidationError, match="no background task 'nope'"):
        jobs.registered("nope")


def test_a_periodic_task_runs_once_per_period_however_many_processes_tick(app, clock):
    CALLS.clear()
    barrier = threading.Barrier(4)
    started: list[list[str]] = []

    def tick() -> None:
        barrier.wait()
        started.append(jobs.schedule_due(app))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    daily = [j for ids in started for j in ids if _job(app, j).kind == "test.daily"]
    assert len(daily) == 1
    jobs.work_once(app)
    assert CALLS.count("daily") == 1

    assert not [j for j in jobs.schedule_due(app) if _job(app, j).kind == "test.daily"]
    clock.advance(timedelta(days=1))
    assert [j for j in jobs.schedule_due(app) if _job(app, j).kind == "test.daily"]
    with services(app).db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleClaim)
                        .where(ScheduleClaim.kind == "test.daily")) == 2


def test_a_job_whose_worker_died_is_queued_again(app, clock):
    job_id = jobs.submit(app, "test.count", {"upto": 1})
    with services(app).db.write_session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            status=RUNNING, heartbeat_at=clock.now(), result_sha256=None))
        s.commit()
    assert jobs.requeue_stale(app) == 0  # heartbeat fresh
    clock.advance(jobs.STALE_AFTER + timedelta(seconds=1))
    assert jobs.requeue_stale(app) == 1
    assert _job(app, job_id).status == QUEUED
    jobs.work_once(app)
    assert _job(app, job_id).status == DONE


@pytest.mark.parametrize("settings_overrides", [{"jobs_runner": "worker"}])
def test_a_worker_process_loop_runs_what_the_app_only_queued(app, settings_overrides):
    job_id = jobs.submit(app, "test.count", {"upto": 3})
    assert _job(app, job_id).status == QUEUED  # the app server does not run it
    stop = threading.Event()
    loop = threading.Thread(target=jobs.run_worker, args=(app,),
                            kwargs={"stop": stop, "poll_seconds": 0.05})
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while _job(app, job_id).status != DONE and time.monotonic() < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join()
    assert _job(app, job_id).status == DONE


@pytest.mark.parametrize("settings_overrides", [{"jobs_runner": "thread"}])
def test_the_embedded_thread_runner_runs_jobs_in_the_background(app, settings_overrides):
    job_id = jobs.submit(app, "test.count", {"upto": 2})
    deadline = time.monotonic() + 30
    while _job(app, job_id).status != DONE and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    jobs.runner_for(app).stop()
    assert _job(app, job_id).status == DONE


@pytest.mark.parametrize("settings_overrides", [{"jobs_runner": "worker"}])
def test_jobs_run_due_command_runs_queued_jobs(app, svc, settings_overrides):
    from click.testing import CliRunner

    from etmf.cli import main

    instance = svc.settings.instance_path
    (instance / "settings.toml").write_text(f'database_url = "{svc.settings.database_url}"\n')
    job_id = jobs.submit(app, "test.count", {"upto": 2})
    runner = CliRunner()
    result = runner.invoke(main, ["jobs", "run-due", "--instance", str(instance)])
    assert result.exit_code == 0, result.output
    assert "job(s) run" in result.output
    assert _job(app, job_id).status == DONE
    listing = runner.invoke(main, ["jobs", "list", "--instance", str(instance)])
    assert job_id in listing.output and "done" in listing.output
