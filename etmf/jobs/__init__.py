"""Background work: tasks, jobs with progress, and periodic tasks run once per period.

An area declares its tasks in ``<area>/tasks.py`` (discovered like projections)::

    @task("exchange.export", title="EMS export")
    def export_study(ctx: JobContext, study_id: int) -> None:
        for i, doc in enumerate(docs):
            ...
            ctx.progress(i + 1, len(docs), f"{doc.title}")
        ctx.store_result(stream, "export.zip", "application/zip")

    @periodic("tracking.reminders", every=timedelta(days=1))
    def daily_reminders(ctx: JobContext) -> None: ...

and starts one with :func:`submit` (from a request or a command). Where it runs depends on
``ETMF_JOBS_RUNNER``:

* ``thread`` (the embedded default): a thread of the app process picks the job up at once;
* ``worker``: the app only enqueues; ``etmf worker`` processes run jobs and the schedule;
* ``inline``: the job runs in the submitting thread before :func:`submit` returns (tests,
  and command-line use).

Jobs live in the database (:class:`~etmf.jobs.models.Job`), so every app server and worker
sees the same queue, progress and results; claiming is one conditional UPDATE, so two workers
never run the same job. A job that raises is retried with exponential back-off up to its
``max_attempts``; then it is *failed*, with its error shown to administrators, who may retry
it. Tasks must be idempotent: a retried job may repeat work that a killed worker had begun.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from etmf.audit.store import Actor
from etmf.errors import NotFound, ValidationError
from etmf.jobs.models import DONE, FAILED, QUEUED, RUNNING, Job, ScheduleClaim

if TYPE_CHECKING:
    from flask import Flask

    from etmf.bootstrap import Services

log = logging.getLogger("etmf.jobs")

#: A running job whose heartbeat is older than this lost its worker and is queued again.
STALE_AFTER = timedelta(minutes=5)
#: Progress is written at most this often (and always at the end).
_PROGRESS_EVERY = timedelta(seconds=0.5)


@dataclass(frozen=True)
class Task:
    kind: str
    fn: Callable[..., Any]
    title: str
    max_attempts: int = 3
    every: timedelta | None = None


_TASKS: dict[str, Task] = {}


def task(kind: str, *, title: str | None = None, max_attempts: int = 3
         ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(ctx, **params)`` as the task ``kind``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _TASKS[kind] = Task(kind, fn, title or kind, max_attempts)
        return fn

    return register


def periodic(kind: str, *, every: timedelta, title: str | None = None,
             max_attempts: int = 3) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a task without parameters that the scheduler starts once per ``every``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _TASKS[kind] = Task(kind, fn, title or kind, max_attempts, every)
        return fn

    return register


#: Functions a worker calls on every turn of its loop to drain a durable outbox (e.g. the
#: search outbox); each returns how much it did and must be idempotent.
_PUMPS: dict[str, Callable[[Flask], int]] = {}


def pump(name: str) -> Callable[[Callable[[Flask], int]], Callable[[Flask], int]]:
    """Register ``fn(app) -> int`` to be called by every worker on every turn."""

    def register(fn: Callable[[Flask], int]) -> Callable[[Flask], int]:
        _PUMPS[name] = fn
        return fn

    return register


def run_pumps(app: Flask) -> int:
    load_tasks()
    done = 0
    for name, fn in list(_PUMPS.items()):
        try:
            done += fn(app)
        except Exception:  # one broken outbox must not stop the others
            log.exception("pump %s", name)
    return done


def load_tasks() -> dict[str, Task]:
    """Every registered task, importing each area's ``tasks`` module once."""
    from etmf.areas import area_modules

    area_modules("tasks")
    return dict(_TASKS)


def registered(kind: str) -> Task:
    tasks = load_tasks()
    try:
        return tasks[kind]
    except KeyError:
        raise ValidationError(f"There is no background task {kind!r}.") from None


# ---- the context a task runs in -----------------------------------------------------------


@dataclass
class JobContext:
    """What a running task gets: the app, its services, who asked, and progress reporting."""

    app: Flask
    svc: Services
    job_id: str
    actor: Actor
    study_id: int | None
    _last_write: datetime | None = field(default=None, repr=False)

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Record progress; written at most twice a second so a tight loop stays cheap."""
        now = self.svc.clock.now()
        final = total is not None and done >= total
        if not final and self._last_write and now - self._last_write < _PROGRESS_EVERY:
            return
        self._last_write = now
        with self.svc.db.write_session() as s:
            s.execute(update(Job).where(Job.id == self.job_id).values(
                done=done, total=total, message=message[:2000], heartbeat_at=now))
            s.commit()

    def store_result(self, stream: BinaryIO, filename: str, mime: str) -> None:
        """Keep the job's output (a file the user downloads from the job page)."""
        ref = self.svc.blobs.put(stream)
        with self.svc.db.write_session() as s:
            s.execute(update(Job).where(Job.id == self.job_id).values(
                result_sha256=ref.sha256, result_size=ref.size, result_filename=filename,
                result_mime=mime))
            s.commit()

    def unit_of_work(self):  # type: ignore[no-untyped-def]
        """A unit of work acting as the user who started the job (or the system)."""
        from etmf.audit.store import Context, unit_of_work

        return unit_of_work(self.svc.db, self.svc.clock, self.actor,
                            Context(request_id=f"job-{self.job_id}", client_addr=None))


# ---- submitting ---------------------------------------------------------------------------


def submit(app: Flask, kind: str, params: dict[str, Any] | None = None, *,
           actor: Actor | None = None, study_id: int | None = None,
           dedupe_key: str | None = None, title: str | None = None) -> str:
    """Queue the task ``kind`` and return the job id; runs it at once with the inline runner.

    With ``dedupe_key``, a job with the same key that has not failed is returned instead of a
    new one, so a double-clicked button or a re-sent request starts the work once.
    """
    from etmf.bootstrap import services

    svc = services(app)
    spec = registered(kind)
    params = params or {}
    try:
        encoded = json.dumps(params, sort_keys=True)
    except TypeError as exc:
        raise ValidationError(f"Job parameters must be JSON: {exc}.") from None
    actor = actor or Actor.system("scheduler")
    now = svc.clock.now()
    job_id = uuid.uuid4().hex
    with svc.db.write_session() as s:
        if dedupe_key is not None:
            existing = s.scalar(select(Job).where(Job.dedupe_key == dedupe_key))
            if existing is not None and existing.status != FAILED:
                return existing.id
            if existing is not None:  # a failed job frees its key for a new attempt
                existing.dedupe_key = None
                s.flush()
        s.add(Job(id=job_id, kind=kind, title=(title or spec.title)[:300], params=encoded,
                  status=QUEUED, user_id=actor.id, user_name=actor.name,
                  study_id=study_id, dedupe_key=dedupe_key, attempts=0,
                  max_attempts=spec.max_attempts, run_after=now, created_at=now, done=0,
                  message=""))
        s.commit()
    runner = runner_for(app)
    runner.wake()
    return job_id


def get_job(app: Flask, job_id: str) -> Job:
    from etmf.bootstrap import services

    with services(app).db.read_session() as s:
        job = s.get(Job, job_id)
    if job is None:
        raise NotFound("There is no such job.")
    return job


def retry(app: Flask, job_id: str) -> None:
    """Queue a failed job again (an administrator's button)."""
    from etmf.bootstrap import services

    svc = services(app)
    with svc.db.write_session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound("There is no such job.")
        if job.status != FAILED:
            raise ValidationError("Only a failed job can be retried.")
        job.status, job.attempts, job.error = QUEUED, 0, None
        job.run_after, job.finished_at = svc.clock.now(), None
        s.commit()
    runner_for(app).wake()


# ---- running ------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def claim_next(app: Flask, worker: str) -> str | None:
    """Take the oldest due job; ``None`` when there is none. Safe with many workers."""
    from etmf.bootstrap import services

    svc = services(app)
    now = svc.clock.now()
    with svc.db.read_session() as s:
        candidates = s.scalars(
            select(Job.id).where(Job.status == QUEUED, Job.run_after <= now)
            .order_by(Job.run_after, Job.created_at).limit(5)
        ).all()
    for job_id in candidates:
        with svc.db.write_session() as s:
            taken = s.execute(
                update(Job).where(Job.id == job_id, Job.status == QUEUED)
                .values(status=RUNNING, worker=worker, started_at=now, heartbeat_at=now,
                        attempts=Job.attempts + 1)
            ).rowcount
            s.commit()
        if taken:
            return job_id
    return None


def run_job(app: Flask, job_id: str) -> str:
    """Run a claimed job to its end; returns its final status."""
    from etmf.bootstrap import services

    svc = services(app)
    job = get_job(app, job_id)
    spec = registered(job.kind)
    ctx = JobContext(app=app, svc=svc, job_id=job.id, study_id=job.study_id,
                     actor=Actor(job.user_id, job.user_name))
    try:
        with app.app_context():
            spec.fn(ctx, **json.loads(job.params))
    except Exception as exc:
        log.exception("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
        now = svc.clock.now()
        final = job.attempts >= job.max_attempts
        error = f"{exc.__class__.__name__}: {exc}"
        with svc.db.write_session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(
                status=FAILED if final else QUEUED,
                error=error + "\n\n" + traceback.format_exc(limit=8),
                finished_at=now if final else None,
                # Back-off: 2, 4, 8 … seconds, capped at an hour.
                run_after=now + timedelta(seconds=min(3600, 2 ** job.attempts))))
            s.commit()
        return FAILED if final else QUEUED
    with svc.db.write_session() as s:
        current = s.get(Job, job.id)
        assert current is not None
        current.status, current.finished_at, current.error = DONE, svc.clock.now(), None
        if current.total is None:
            current.total = current.done = 1
        s.commit()
    return DONE


def requeue_stale(app: Flask) -> int:
    """Give jobs whose worker died (no heartbeat for :data:`STALE_AFTER`) back to the queue."""
    from etmf.bootstrap import services

    svc = services(app)
    limit = svc.clock.now() - STALE_AFTER
    with svc.db.write_session() as s:
        n = s.execute(update(Job).where(Job.status == RUNNING, Job.heartbeat_at < limit)
                      .values(status=QUEUED, worker=None)).rowcount
        s.commit()
    return n or 0


def period_of(now: datetime, every: timedelta) -> str:
    """The period ``now`` falls in, as text: the same for every process during it."""
    step = int(every.total_seconds())
    start = int(now.timestamp()) // step * step
    return datetime.fromtimestamp(start, tz=now.tzinfo).strftime("%Y-%m-%dT%H:%M:%S")


def schedule_due(app: Flask) -> list[str]:
    """Start each periodic task whose current period has no job yet; returns the job ids.

    Claiming a period is an INSERT into a table with a unique (kind, period): however many
    processes tick at once, one wins and the others get an integrity error and move on.
    """
    from etmf.bootstrap import services

    svc = services(app)
    started = []
    now = svc.clock.now()
    for spec in load_tasks().values():
        if spec.every is None:
            continue
        period = period_of(now, spec.every)
        with svc.db.read_session() as s:
            if s.scalar(select(ScheduleClaim.id).where(ScheduleClaim.kind == spec.kind,
                                                       ScheduleClaim.period == period)):
                continue
        job_id = uuid.uuid4().hex
        try:
            with svc.db.write_session() as s:
                s.add(ScheduleClaim(kind=spec.kind, period=period, job_id=job_id,
                                    claimed_at=now))
                s.add(Job(id=job_id, kind=spec.kind, title=spec.title, params="{}",
                          status=QUEUED, user_id=None, user_name="scheduler", study_id=None,
                          attempts=0, max_attempts=spec.max_attempts, run_after=now,
                          created_at=now, done=0, message=f"Period {period}"))
                s.commit()
        except IntegrityError:
            continue  # another process claimed this period first
        started.append(job_id)
    return started


def work_once(app: Flask, worker: str | None = None) -> int:
    """Run every job that is due now, one after another; returns how many ran."""
    worker = worker or _worker_name()
    ran = 0
    while (job_id := claim_next(app, worker)) is not None:
        run_job(app, job_id)
        ran += 1
    return ran


# ---- runners ------------------------------------------------------------------------------


class InlineRunner:
    """Runs due jobs in the caller's thread when woken (tests and the command line)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._busy = threading.local()

    def wake(self) -> None:
        if getattr(self._busy, "on", False):  # a job that submits a job: run it after
            return
        self._busy.on = True
        try:
            work_once(self.app)
        finally:
            self._busy.on = False

    def stop(self) -> None:
        pass


class ThreadRunner:
    """One daemon thread of the app process runs jobs as they come (the embedded default)."""

    def __init__(self, app: Flask, poll_seconds: float = 30.0) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        self._cond = threading.Condition()
        self._pending = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        with self._cond:
            self._pending = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="etmf-jobs",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._stopped:
                    self._cond.wait(self.poll_seconds)
                if self._stopped:
                    return
                self._pending = False
            try:
                schedule_due(self.app)
                work_once(self.app)
            except Exception:  # the runner outlives any one failure
                log.exception("background job runner")


class EnqueueOnly:
    """The app server only queues; ``etmf worker`` processes run the jobs."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def wake(self) -> None:
        from etmf.bootstrap import services
        from etmf.jobs.wake import notify_workers

        notify_workers(services(self.app))

    def stop(self) -> None:
        pass


def runner_for(app: Flask) -> InlineRunner | ThreadRunner | EnqueueOnly:
    from etmf.bootstrap import services

    svc = services(app)
    runner = svc.extras.get("jobs_runner")
    if runner is None:
        kind = svc.settings.jobs_runner
        runner = {"inline": InlineRunner, "thread": ThreadRunner,
                  "worker": EnqueueOnly}[kind](app)
        svc.extras["jobs_runner"] = runner
    return runner  # type: ignore[no-any-return]


def run_worker(app: Flask, *, stop: threading.Event, poll_seconds: float = 2.0) -> None:
    """The loop of ``etmf worker``: schedule, requeue the stale, run what is due, drain the
    outboxes, then wait for a wake-up (Redis, where configured) or ``poll_seconds``."""
    from etmf.bootstrap import services
    from etmf.jobs.wake import Waiter

    worker = _worker_name()
    log.info("worker %s started", worker)
    waiter = Waiter(services(app))
    try:
        while not stop.is_set():
            try:
                requeue_stale(app)
                schedule_due(app)
                work_once(app, worker)
                run_pumps(app)
            except Exception:
                log.exception("worker loop")
            waiter.wait(stop, poll_seconds)
    finally:
        waiter.close()
    log.info("worker %s stopped", worker)
