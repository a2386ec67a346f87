"""Puts back on Redis every active job Redis no longer carries.

A row is orphaned when it is pending/queued/started and, past a grace period:
- RQ has no job with its id (Redis flushed or restarted, or the enqueue after commit failed), or
- RQ holds it as failed/stopped/canceled/finished although the row still wants a run, or
- RQ says started but no runner holds the job's advisory lock (the worker died).

Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and republished while the claim is held, so
two reconcilers never publish the same job twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db, runtime
from app.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from app.jobs.rq_plumbing import JSONJob
from app.jobs.runner import advisory_key
from app.jobs.service import push_to_rq

log = logging.getLogger(__name__)

_WAITING = {"queued", "scheduled", "deferred"}


@dataclass
class ReconcileReport:
    examined: int = 0
    republished: list[str] = field(default_factory=list)
    marked_queued: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "examined": self.examined,
            "republished": len(self.republished),
            "marked_queued": self.marked_queued,
        }


def reconcile(batch_size: int = 500) -> ReconcileReport:
    settings = runtime.settings()
    report = ReconcileReport()
    with db.session_scope() as session:
        cutoff = db.utcnow() - timedelta(seconds=settings.reconcile_grace_seconds)
        rows = session.scalars(
            select(Job)
            .where(Job.status.in_(ACTIVE_STATUSES), Job.updated_at <= cutoff)
            .order_by(Job.created_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        report.examined = len(rows)
        if not rows:
            return report
        rq_statuses = _rq_statuses([row.id for row in rows])
        orphans: list[Job] = []
        for row in rows:
            rq_status = rq_statuses[row.id]
            if rq_status in _WAITING:
                if row.status == JobStatus.PENDING:  # published, but the status update was lost
                    row.status = JobStatus.QUEUED
                    row.enqueued_at = row.enqueued_at or db.utcnow()
                    report.marked_queued += 1
                continue
            if (rq_status == "started" or row.status == JobStatus.STARTED) and _is_running(session, row.id):
                continue  # slow, not dead: its runner still holds the lock
            orphans.append(row)
        republished = set(push_to_rq(orphans))  # while our row locks are held
        for row in orphans:
            if row.id not in republished:
                continue
            log.warning("job republished", extra={"job_id": row.id, "row_status": row.status})
            if row.status == JobStatus.PENDING:
                row.status = JobStatus.QUEUED
            row.enqueued_at = db.utcnow()
            report.republished.append(row.id)
    return report


def _rq_statuses(job_ids: list[str]) -> dict[str, str | None]:
    jobs = JSONJob.fetch_many(job_ids, connection=runtime.redis())
    return {
        job_id: (job.get_status(refresh=False) if job else None)
        for job_id, job in zip(job_ids, jobs, strict=True)
    }


def _is_running(session: Session, job_id: str) -> bool:
    """True when some runner holds the job's advisory lock. Taking it ourselves (until our commit)
    also keeps a late runner from starting while we republish."""
    acquired = session.scalar(select(func.pg_try_advisory_xact_lock(advisory_key(job_id))))
    return not acquired
