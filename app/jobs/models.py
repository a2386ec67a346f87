"""The audit row every background job has in Postgres (the source of truth)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class JobStatus(enum.StrEnum):
    PENDING = "pending"  # accepted, waiting for its company's turn on a bulk queue (`held`)
    # Handed to Redis (published after the request's commit; the reconciler republishes it if that
    # failed), or waiting in Postgres for `next_attempt_at` (a retry or a deferral).
    QUEUED = "queued"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.STARTED)
TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


def new_job_id() -> str:
    return str(uuid.uuid4())


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','queued','started','succeeded','failed','canceled')", name="status_valid"
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        # Partial index: the reconciler only ever scans active rows.
        Index(
            "ix_jobs_active",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('pending','queued','started')"),
        ),
        # Retries and deferrals waiting for their time (published by the kernel pump when due).
        Index(
            "ix_jobs_due",
            "next_attempt_at",
            postgresql_where=text("status = 'queued' AND next_attempt_at IS NOT NULL"),
        ),
        # Bulk jobs waiting for their company's turn (app/jobs/fairness.py).
        Index("ix_jobs_held_turns", "queue", "company_id", "created_at", postgresql_where=text("held")),
        Index("ix_jobs_company_created", "company_id", "created_at"),
        # /metrics reads the jobs finished in the last minutes (outcomes, durations) through it.
        Index("ix_jobs_finished", "finished_at", postgresql_where=text("finished_at IS NOT NULL")),
        Index(
            "uq_jobs_idempotency",
            "company_id",
            "requested_by",
            "kind",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_job_id)
    kind: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING, server_default="pending")
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(SmallInteger, default=3, server_default="3")
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    worker_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    enqueued_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]  # set while a retry/deferral waits; on no Redis queue
    held: Mapped[bool] = mapped_column(default=False, server_default=text("false"))  # waits its turn
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


# The table itself, for Core statements on the hot paths (the runner's outcome, pruning).
JOBS = cast(Table, Job.__table__)
