"""Puts back on Redis every active job that nothing will run, judging from facts, never from RQ's
status field (a killed worker leaves RQ's status saying `queued` or `started` forever).

A pending/queued/started row, untouched for the grace period and not waiting out a backoff, is
left alone when one of these holds, and republished under the same id otherwise:
- a runner holds its advisory lock (pg_locks: the run is alive, however slow);
- its id is on its RQ queue list (a worker will pop it);
- it is not `started` yet and a live worker (heartbeat within WORKER_STALE_SECONDS; the kernel
  pump in every worker beats each second) has it among its current executions: popped, about to
  start, or waiting for Postgres to come back.
A job popped by a worker that then died is on no list and in no live worker's hands: republished.
A republished job that was alive after all meets its advisory lock or its finished row: harmless.

Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and republished while the claim is held, so
two reconcilers never publish the same job twice. `publish_due` is the fast path for retries and
deferrals whose `next_attempt_at` has come: those rows are known to be on no queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Worker
from rq.worker import BaseWorker
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from app import db, runtime
from app.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from app.jobs.publish import push_to_rq
from app.jobs.rq_plumbing import queue
from app.jobs.runner import advisory_key_halves

log = logging.getLogger(__name__)


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


def reconcile(batch_size: int = 500, grace_seconds: int | None = None) -> ReconcileReport:
    """One pass. `grace_seconds` overrides RECONCILE_GRACE_SECONDS (0 right after Redis came back
    empty: every queued job is known lost, and a duplicate delivery is harmless)."""
    grace = runtime.settings().reconcile_grace_seconds if grace_seconds is None else grace_seconds
    report = ReconcileReport()
    with db.session_scope() as session:
        now = func.clock_timestamp()
        rows = session.scalars(
            select(Job)
            .where(
                Job.status.in_(ACTIVE_STATUSES),
                Job.held.is_(False),  # waiting for its company's turn: on no queue by design
                Job.updated_at <= now - timedelta(seconds=grace),
                or_(Job.next_attempt_at.is_(None), Job.next_attempt_at <= now),
            )
            .order_by(Job.created_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        report.examined = len(rows)
        if not rows:
            return report
        connection = runtime.redis()
        running = _ids_with_a_runner(session, [row.id for row in rows])
        waiting = _ids_on_queue_lists(connection, {row.queue for row in rows})
        in_hand: set[str] | None = None
        orphans: list[Job] = []
        for row in rows:
            if row.id in running:
                continue
            if row.id in waiting:
                if row.status == JobStatus.PENDING:  # published, but the status update was lost
                    row.status = JobStatus.QUEUED
                    row.enqueued_at = row.enqueued_at or db.utcnow()
                    report.marked_queued += 1
                continue
            if row.status != JobStatus.STARTED:
                if in_hand is None:
                    in_hand = ids_held_by_live_workers(connection)
                if row.id in in_hand:
                    continue
            orphans.append(row)
        republished = set(push_to_rq(orphans, republish=True))  # while our row locks are held
        for row in orphans:
            if row.id not in republished:
                continue
            log.warning("job republished", extra={"job_id": row.id, "row_status": row.status})
            if row.status == JobStatus.PENDING:
                row.status = JobStatus.QUEUED
            row.enqueued_at = db.utcnow()
            row.next_attempt_at = None
            report.republished.append(row.id)
    return report


def publish_due(batch_size: int = 500) -> list[str]:
    """Publish retries and deferrals whose time has come. Returns the ids published."""
    with db.session_scope() as session:
        rows = session.scalars(
            select(Job)
            .where(Job.status == JobStatus.QUEUED, Job.next_attempt_at <= func.clock_timestamp())
            .order_by(Job.next_attempt_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        published = push_to_rq(rows, republish=True)
        if published:
            session.execute(
                update(Job)
                .where(Job.id.in_(published))
                .values(
                    next_attempt_at=None,
                    enqueued_at=func.clock_timestamp(),
                    updated_at=func.clock_timestamp(),
                )
            )
    return published


_ADVISORY_LOCKS = text(
    """
    SELECT classid::bigint AS high, objid::bigint AS low FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND classid::bigint = :high
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """
)


def _ids_with_a_runner(session: Session, job_ids: list[str]) -> set[str]:
    """Jobs whose advisory lock some session holds (read from pg_locks; takes no lock itself)."""
    halves = {job_id: advisory_key_halves(job_id) for job_id in job_ids}
    high = next(iter(halves.values()))[0]
    held = {(row.high, row.low) for row in session.execute(_ADVISORY_LOCKS, {"high": high})}
    return {job_id for job_id, key in halves.items() if key in held}


def _ids_on_queue_lists(connection: Redis, queue_names: set[str]) -> set[str]:
    with connection.pipeline(transaction=False) as pipe:
        for name in queue_names:
            pipe.lrange(queue(name, connection).key, 0, -1)
        lists = pipe.execute()
    return {raw.decode() for ids in lists for raw in ids}


WORKER_STALE_SECONDS = 15


def live_workers(connection: Redis) -> list[BaseWorker]:
    """Workers whose heartbeat is recent (RQ keeps a dead worker's key until its TTL runs out)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=WORKER_STALE_SECONDS)
    return [
        worker
        for worker in Worker.all(connection=connection)
        if worker.last_heartbeat is not None and _aware(worker.last_heartbeat) >= cutoff
    ]


def ids_held_by_live_workers(connection: Redis) -> set[str]:
    """Jobs that a live worker is executing or has just popped."""
    return {
        execution.job_id
        for worker in live_workers(connection)
        for execution in worker.get_current_executions()
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
