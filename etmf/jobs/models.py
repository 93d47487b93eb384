"""Jobs and schedule claims: operational state, not records.

A job is a piece of background work (an export, an index rebuild, the daily reminders). Its
row says where it stands; what it *does* to records goes through units of work and lands in
the audit trail like any other change. Neither table is a projection of events.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUS_LABELS = {QUEUED: "Waiting", RUNNING: "Running", DONE: "Done", FAILED: "Failed"}


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_run_after", "status", "run_after"),
        Index("ix_jobs_user", "user_id"),
        UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
        {"info": {"not_projected": True}},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    #: JSON of the task's keyword arguments.
    params: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int | None] = mapped_column(Integer)
    user_name: Mapped[str] = mapped_column(String(200))
    study_id: Mapped[int | None] = mapped_column(Integer)
    #: Submitting the same key again returns the existing job unless it failed.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Refreshed while the job runs; a running job whose heartbeat is stale lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(100))
    done: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    total: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    result_size: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    result_filename: Mapped[str | None] = mapped_column(String(255))
    result_mime: Mapped[str | None] = mapped_column(String(100))

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.status == DONE else None
        return min(100, int(self.done * 100 / self.total))

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


class ScheduleClaim(Base):
    """One row per periodic task and period: the first process to insert it runs the task."""

    __tablename__ = "job_schedule_claims"
    __table_args__ = (
        UniqueConstraint("kind", "period", name="uq_job_schedule_claims_kind_period"),
        {"info": {"not_projected": True}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
