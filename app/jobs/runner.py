"""What the RQ worker executes for every job: `run_job(job_id)`.

Guarantees, with RQ's at-least-once delivery underneath:
- One execution at a time per job: the runner holds a Postgres advisory lock on a dedicated
  connection while the task runs. If the worker dies, Postgres drops the connection and the lock,
  which is how the reconciler tells a dead run from a slow one.
- Exactly once in effect for database work: the task's writes and the `succeeded` marker commit in
  one transaction. A run killed before that commit leaves nothing behind; a duplicate delivery after
  it finds the row finished and does nothing.
- Attempts are counted in the row; RQ only schedules the retries (with backoff). The final
  `failed` is written after the last attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import zlib
from typing import Any

from rq import get_current_job
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import DBAPIError

from app import db
from app.errors import DomainError
from app.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from app.jobs.registry import JobContext, get_task
from app.jobs.waiting import announce
from app.logging import job_log_context

log = logging.getLogger(__name__)

_ERROR_LIMIT = 4000


def advisory_key(job_id: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, namespaced so other locks can't collide."""
    high = zlib.crc32(b"valorize-job")
    low = zlib.crc32(job_id.encode())
    key = (high << 32) | low
    return key - (1 << 64) if key >= (1 << 63) else key


def run_job(job_id: str) -> dict[str, Any] | None:
    with db.engine().connect() as control:
        # The control connection holds the lock and writes lifecycle updates (autocommit), so
        # observers see `started` and progress while the task's own transaction is still open.
        control = control.execution_options(isolation_level="AUTOCOMMIT")
        key = advisory_key(job_id)
        control.execute(select(func.pg_advisory_lock(key)))
        try:
            return _run_locked(control, job_id)
        finally:
            try:
                control.execute(select(func.pg_advisory_unlock(key)))
            except DBAPIError:  # the connection died (Postgres restart): its lock died with it
                log.warning("could not release job lock; connection lost", extra={"job_id": job_id})


def _run_locked(control: Connection, job_id: str) -> dict[str, Any] | None:
    row = control.execute(
        select(Job.kind, Job.status, Job.attempts, Job.max_attempts).where(Job.id == job_id)
    ).first()
    if row is None or row.status not in ACTIVE_STATUSES:
        _stop_rq_retries()
        log.info("job skipped", extra={"job_id": job_id, "status": row.status if row else "missing"})
        return {"skipped": row.status if row else "missing"}
    if row.attempts >= row.max_attempts:
        # Earlier attempts died without recording an outcome (worker killed): don't loop forever.
        _finish_failed(control, job_id, f"lost {row.attempts} time(s) while running (worker died); giving up")
        _stop_rq_retries()
        return {"skipped": "failed"}
    try:
        spec = get_task(row.kind)
    except LookupError as exc:
        _finish_failed(control, job_id, str(exc))
        _stop_rq_retries()
        return {"skipped": "failed"}

    started = control.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        .values(
            status=JobStatus.STARTED,
            attempts=Job.attempts + 1,
            started_at=func.now(),
            updated_at=func.now(),
            worker_name=_worker_name(),
        )
        .returning(Job.attempts, Job.args, Job.company_id, Job.requested_by)
    ).first()
    if started is None:  # canceled between the read and the update
        _stop_rq_retries()
        return {"skipped": "canceled"}

    def report_progress(percent: int) -> None:
        control.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.STARTED)
            .values(progress=percent, updated_at=func.now())
        )

    with job_log_context(job_id=job_id, company_id=started.company_id), db.new_session() as session:
        ctx = JobContext(
            session=session,
            job_id=job_id,
            kind=row.kind,
            company_id=started.company_id,
            requested_by=started.requested_by,
            attempt=started.attempts,
            report_progress=report_progress,
        )
        log.info("job started", extra={"kind": row.kind, "attempt": started.attempts})
        try:
            result = spec.func(ctx, **(started.args or {}))
            finished = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.STARTED)
                .values(
                    status=JobStatus.SUCCEEDED,
                    result=result,
                    progress=100,
                    error=None,
                    finished_at=func.now(),
                    updated_at=func.now(),
                )
            )
            if finished.rowcount != 1:  # canceled while running: its effects must not land
                session.rollback()
                _stop_rq_retries()
                log.info("job canceled while running; effects rolled back")
                return {"skipped": "canceled"}
            session.commit()
            announce(job_id, JobStatus.SUCCEEDED)
        except Exception as exc:
            session.rollback()
            final = _record_failure(
                control, job_id, exc, permanent=isinstance(exc, DomainError) and exc.permanent
            )
            if final:
                _stop_rq_retries()
                announce(job_id, JobStatus.FAILED)
            log.warning(
                "job attempt failed",
                exc_info=True,
                extra={"kind": row.kind, "final": final, "attempt": started.attempts},
            )
            raise
        log.info("job succeeded", extra={"kind": row.kind, "attempt": started.attempts})
        return result


def _record_failure(control: Connection, job_id: str, exc: BaseException, *, permanent: bool) -> bool:
    """Store the error; `failed` only when no attempt is left. Returns True when final."""
    message = f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
    status = control.execute(
        text(
            """
            UPDATE jobs SET
              error = :error,
              updated_at = now(),
              status = CASE WHEN :permanent OR attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
              finished_at = CASE WHEN :permanent OR attempts >= max_attempts THEN now() ELSE NULL END
            WHERE id = :id AND status = 'started'
            RETURNING status
            """
        ),
        {"error": message, "permanent": permanent, "id": job_id},
    ).scalar()
    return status != JobStatus.QUEUED


def _finish_failed(control: Connection, job_id: str, message: str) -> None:
    control.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        .values(
            status=JobStatus.FAILED,
            error=message[:_ERROR_LIMIT],
            finished_at=func.now(),
            updated_at=func.now(),
        )
    )
    announce(job_id, JobStatus.FAILED)


def _stop_rq_retries() -> None:
    """The row is final: tell RQ not to schedule another attempt of this delivery."""
    rq_job = get_current_job()
    if rq_job is not None:
        rq_job.retries_left = 0


def _worker_name() -> str:
    rq_job = get_current_job()
    name = getattr(rq_job, "worker_name", None) if rq_job is not None else None
    return name or f"{socket.gethostname()}.{os.getpid()}"
