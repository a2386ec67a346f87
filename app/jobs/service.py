"""Creating, reading, retrying and canceling jobs.

`enqueue()` only writes the row in the caller's transaction, as `queued`. When that transaction
commits, the job is pushed to RQ under the same id (one pipeline per queue); if Redis is down at that
moment the reconciler, finding a queued row on no queue list, publishes it later. So one request
costs one commit, and nothing is ever on Redis without a row. A job on a bulk queue is written
`pending` and `held` instead and waits for its company's turn (`fairness.release_turns`).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import db, runtime
from app.jobs.fairness import release_turns
from app.jobs.models import ACTIVE_STATUSES, JOBS, Job, JobStatus, new_job_id
from app.jobs.publish import push_to_rq
from app.jobs.registry import BULK_QUEUES, get_task
from app.jobs.rq_plumbing import JSONJob

log = logging.getLogger(__name__)

_TO_PUBLISH = "valorize_jobs_to_publish"


def enqueue(
    session: Session,
    kind: str,
    args: dict[str, Any] | None = None,
    *,
    company_id: str | None = None,
    requested_by: str | None = None,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
) -> tuple[Job, bool]:
    """Add a job row to `session`'s transaction; it reaches RQ after commit.

    Returns (job, created). With an idempotency key already used by the same requester for the
    same kind in the same company, returns the existing job and created=False.
    """
    spec = get_task(kind)
    if idempotency_key:
        existing = _find_by_idempotency_key(session, company_id, requested_by, kind, idempotency_key)
        if existing is not None:
            return existing, False
    bulk = spec.queue in BULK_QUEUES
    accepted_at = db.utcnow()
    job = Job(
        id=new_job_id(),
        kind=kind,
        queue=spec.queue,
        # A bulk job waits for its company's turn; any other is published right after the commit.
        status=JobStatus.PENDING if bulk else JobStatus.QUEUED,
        held=bulk,
        created_at=accepted_at,
        enqueued_at=None if bulk else accepted_at,
        args=args or {},
        company_id=company_id,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts or spec.max_attempts or runtime.settings().job_max_attempts,
    )
    if not idempotency_key:
        session.add(job)  # flushed with the caller's other rows at commit: one batched INSERT
    else:
        try:
            with session.begin_nested():  # a concurrent request with the same key may win the insert
                session.add(job)
        except IntegrityError:
            winner = _find_by_idempotency_key(session, company_id, requested_by, kind, idempotency_key)
            if winner is None:
                raise
            return winner, False
    session.info.setdefault(_TO_PUBLISH, []).append(job)
    return job, True


def _find_by_idempotency_key(
    session: Session, company_id: str | None, requested_by: str | None, kind: str, key: str
) -> Job | None:
    return session.scalars(
        select(Job).where(
            Job.company_id.is_not_distinct_from(company_id),
            Job.requested_by.is_not_distinct_from(requested_by),
            Job.kind == kind,
            Job.idempotency_key == key,
        )
    ).first()


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy 2.1 fires this on SAVEPOINT release too; wait for the real commit
    jobs: list[Job] | None = session.info.pop(_TO_PUBLISH, None)
    if not jobs:
        return
    # Never raises: the committed rows are the promise. A push Redis refused is republished by the
    # reconciler (a queued row on no queue list); a bulk job waits for release_turns.
    push_to_rq([job for job in jobs if not job.held])
    bulk_queues = {job.queue for job in jobs if job.held}
    if bulk_queues:
        release_turns(bulk_queues)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    if not session.in_nested_transaction():  # rows of a rolled-back savepoint just won't be found
        session.info.pop(_TO_PUBLISH, None)


# --- reading -------------------------------------------------------------------------------


def visible_jobs(company_id: str, user_id: str, can_read_all: bool) -> Any:
    stmt = select(Job).where(Job.company_id == company_id)
    if not can_read_all:
        stmt = stmt.where(Job.requested_by == user_id)
    return stmt


def get_visible_job(
    session: Session, job_id: str, company_id: str, user_id: str, can_read_all: bool
) -> Job | None:
    return session.scalars(visible_jobs(company_id, user_id, can_read_all).where(Job.id == job_id)).first()


def list_jobs(
    session: Session,
    company_id: str,
    user_id: str,
    can_read_all: bool,
    *,
    status: str | None,
    kind: str | None,
    page: int,
    limit: int,
) -> tuple[list[Job], int]:
    stmt = visible_jobs(company_id, user_id, can_read_all)
    if status:
        stmt = stmt.where(Job.status == status)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Job.created_at.desc(), Job.id).offset((page - 1) * limit).limit(limit)
    )
    return list(rows), total


# --- operator actions ----------------------------------------------------------------------


class JobStateError(Exception):
    """The job is not in a state that allows the action."""


def cancel(session: Session, job: Job) -> Job:
    """Cancel a job that has not finished. A running job's work-horse is stopped, which rolls
    back its transaction, so a canceled job leaves no effect."""
    locked = _lock(session, job.id)
    if locked.status not in ACTIVE_STATUSES:
        raise JobStateError(f"job is {locked.status}; only pending, queued or started jobs can be canceled")
    was_started = locked.status == JobStatus.STARTED
    locked.status = JobStatus.CANCELED
    locked.finished_at = db.utcnow()
    locked.error = "canceled by an operator"
    session.flush()
    _cancel_on_rq(locked.id, stop_running=was_started)
    return locked


def _cancel_on_rq(job_id: str, *, stop_running: bool) -> None:
    conn = runtime.redis()
    try:
        if stop_running:
            with suppress(InvalidJobOperation, NoSuchJobError):  # already finished or not on Redis
                send_stop_job_command(conn, job_id)
        rq_job = JSONJob.fetch(job_id, connection=conn)
        if rq_job.get_status() in ("queued", "scheduled", "deferred"):
            rq_job.cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except RedisError as exc:  # the row is canceled; the runner skips canceled rows anyway
        log.warning("could not cancel on redis", extra={"job_id": job_id, "error": str(exc)})


def _lock(session: Session, job_id: str) -> Job:
    stmt = select(Job).where(Job.id == job_id).with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one()


def retry(session: Session, job: Job) -> Job:
    """Give a failed or canceled job a fresh budget of attempts and publish it again."""
    locked = _lock(session, job.id)
    if locked.status not in (JobStatus.FAILED, JobStatus.CANCELED):
        raise JobStateError(f"job is {locked.status}; only failed or canceled jobs can be retried")
    spec = get_task(locked.kind)
    locked.status = JobStatus.QUEUED  # an operator's retry skips the bulk turn
    locked.held = False
    locked.next_attempt_at = None
    locked.enqueued_at = db.utcnow()
    locked.max_attempts = locked.attempts + (spec.max_attempts or runtime.settings().job_max_attempts)
    locked.progress = 0
    locked.finished_at = None
    locked.result = None
    session.flush()
    session.info.setdefault(_TO_PUBLISH, []).append(locked)
    return locked


def prune(session: Session, older_than: timedelta) -> int:
    """Delete finished jobs older than the audit retention."""
    cutoff = db.utcnow() - older_than
    result = session.execute(
        JOBS.delete().where(Job.status.not_in(ACTIVE_STATUSES), Job.finished_at < cutoff)
    )
    return db.affected(result)
