"""What the RQ worker executes for every job: `run_job(job_id)`.

Guarantees, with RQ's at-least-once delivery underneath:
- One execution at a time per job: the runner holds a Postgres advisory lock (session level, on a
  control connection) while the task runs. A delivery that finds the lock taken is a duplicate and
  is dropped. If the worker dies, Postgres drops the connection and the lock, which is how the
  reconciler tells a dead run from a slow one.
- Exactly once in effect for database work: the task's writes and the `succeeded` marker commit in
  one transaction. A run killed before that commit leaves nothing behind; a duplicate delivery after
  it finds the row finished and does nothing.
- Attempts, retries and deferrals live in the row, not in RQ: a failed attempt with attempts left
  goes back to `queued` with `next_attempt_at` (exponential backoff) and the kernel pump publishes
  it when due; a task that defers (a rate limit's window) commits its progress and waits the same
  way without spending an attempt. The final `failed` is written after the last attempt.
- Audit times are the wall-clock times of the events (`clock_timestamp()`), not the start of the
  transaction that records them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import zlib
from contextlib import suppress
from datetime import timedelta
from typing import Any

from rq import get_current_job
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import db, runtime
from app.errors import DomainError
from app.jobs.fairness import release_turns
from app.jobs.models import ACTIVE_STATUSES, JOBS, Job, JobStatus
from app.jobs.registry import BULK_QUEUES, Deferred, JobCanceled, JobContext, get_task
from app.jobs.waiting import announce
from app.logging import job_log_context

log = logging.getLogger(__name__)

_ERROR_LIMIT = 4000
_NAMESPACE = zlib.crc32(b"valorize-job")


def advisory_key(job_id: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, namespaced so other locks can't collide."""
    key = (_NAMESPACE << 32) | zlib.crc32(job_id.encode())
    return key - (1 << 64) if key >= (1 << 63) else key


def advisory_key_halves(job_id: str) -> tuple[int, int]:
    """(classid, objid) under which pg_locks shows the job's lock."""
    return _NAMESPACE, zlib.crc32(job_id.encode())


def run_job(job_id: str) -> dict[str, Any] | None:
    key = advisory_key(job_id)
    params = {"id": job_id, "key": key, "worker": _worker_name()}
    control = _control_connection(job_id)
    try:
        start = control.execute(_LOCK_AND_START, params).one()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        _drop_control()  # killed while idle (a Postgres restart): one more try on a fresh one
        control = _control_connection(job_id)
        start = control.execute(_LOCK_AND_START, params).one()
    if not start.locked:
        log.info("duplicate delivery dropped: the job runs elsewhere", extra={"job_id": job_id})
        return {"skipped": "running elsewhere"}
    try:
        if start.kind is None:  # finished, canceled, unknown, or a retry delivered before its time
            log.info("job skipped: not runnable now", extra={"job_id": job_id})
            return {"skipped": "not runnable"}
        return _run_locked(control, job_id, start)
    finally:
        try:
            control.execute(select(func.pg_advisory_unlock(key)))
        except DBAPIError:  # the connection died (Postgres restart): its lock died with it
            _drop_control()
            log.warning("could not release job lock; connection lost", extra={"job_id": job_id})


# The control connection: held by this worker thread across jobs (no checkout, ping or isolation
# switch per job), in autocommit, holding each job's advisory lock and writing its lifecycle
# (started, progress, failure) so observers see them while the task's transaction is still open.
# Those lifecycle commits don't wait for the WAL flush (synchronous_commit off): a Postgres crash
# could forget a `started` or a failure, and the job then simply runs again. The task's own
# transaction (its effects and the `succeeded` marker) commits durably as usual.
_local = threading.local()


def _control_connection(job_id: str) -> Connection:
    held: Connection | None = getattr(_local, "control", None)
    if held is not None and not held.closed and not held.invalidated and held.engine is db.engine():
        return held
    _drop_control()
    connection = _connect_when_postgres_answers(job_id).execution_options(isolation_level="AUTOCOMMIT")
    connection.execute(text("SET synchronous_commit TO off"))
    _local.control = connection
    return connection


def _connect_when_postgres_answers(job_id: str) -> Connection:
    """A connection, waiting (with backoff) while Postgres is unreachable: no job can run without
    it, and holding this delivery beats failing it and every other queued job in a tight loop. The
    job's time limit (RQ's death penalty) still bounds the wait."""
    delay, waited = 0.25, False
    while True:
        try:
            connection = db.engine().connect()
        except OperationalError as exc:
            if not waited:
                log.warning(
                    "postgres unavailable; job waits for it", extra={"job_id": job_id, "error": str(exc)}
                )
                waited = True
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        if waited:
            log.warning("postgres back; job proceeds", extra={"job_id": job_id})
        return connection


def _drop_control() -> None:
    held: Connection | None = getattr(_local, "control", None)
    _local.control = None
    if held is not None:
        with suppress(Exception):
            held.invalidate()
            held.close()


def _forget_control_in_child() -> None:
    _local.control = None  # a forked child must not share the parent's socket


os.register_at_fork(after_in_child=_forget_control_in_child)


# One round trip: take the job's lock and, if taken, mark the row started. Always one row back:
# `locked` says whether the lock was ours; `kind` is null when the row was not runnable.
_LOCK_AND_START = text(
    """
    WITH lock AS (SELECT pg_try_advisory_lock(:key) AS got),
    started AS (
        UPDATE jobs SET status = 'started', attempts = attempts + 1, next_attempt_at = NULL,
                        started_at = clock_timestamp(), updated_at = clock_timestamp(), worker_name = :worker
        FROM lock
        WHERE lock.got AND jobs.id = :id AND jobs.status IN ('pending', 'queued', 'started')
          AND (jobs.next_attempt_at IS NULL OR jobs.next_attempt_at <= clock_timestamp())
        RETURNING jobs.kind, jobs.queue, jobs.attempts, jobs.max_attempts, jobs.args, jobs.company_id,
                  jobs.requested_by
    )
    SELECT lock.got AS locked, started.* FROM lock LEFT JOIN started ON true
    """
)


def _run_locked(control: Connection, job_id: str, started: Any) -> dict[str, Any] | None:
    if started.attempts > started.max_attempts:
        # Earlier attempts died without recording an outcome (worker killed): don't loop forever.
        lost = started.attempts - 1
        _finish_failed(control, job_id, f"lost {lost} time(s) while running (worker died); giving up")
        _next_turn(started.queue)
        return {"skipped": "failed"}
    try:
        spec = get_task(started.kind)
    except LookupError as exc:
        _finish_failed(control, job_id, str(exc))
        _next_turn(started.queue)
        return {"skipped": "failed"}

    def report_progress(percent: int) -> None:
        updated = control.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.STARTED)
            .values(progress=percent, updated_at=func.clock_timestamp())
        )
        if db.affected(updated) != 1:
            raise JobCanceled(job_id)

    with job_log_context(job_id=job_id, company_id=started.company_id), db.new_session() as session:
        ctx = JobContext(
            session=session,
            job_id=job_id,
            kind=started.kind,
            company_id=started.company_id,
            requested_by=started.requested_by,
            attempt=started.attempts,
            report_progress=report_progress,
        )
        log.info("job started", extra={"kind": started.kind, "attempt": started.attempts})
        try:
            result = spec.func(ctx, **(started.args or {}))
            if not _mark(session, job_id, **_succeeded(result)):
                raise JobCanceled(job_id)
            session.commit()
        except Deferred as deferral:
            # The task's progress so far commits with the deferral; the attempt is not spent.
            if not _mark(session, job_id, **_deferred(deferral)):
                raise JobCanceled(job_id) from None
            session.commit()
            log.info("job deferred", extra={"kind": started.kind, "seconds": deferral.seconds})
            return {"deferred_seconds": deferral.seconds}
        except JobCanceled:
            session.rollback()
            log.info("job canceled while running; effects rolled back")
            _next_turn(started.queue)
            return {"skipped": "canceled"}
        except Exception as exc:
            session.rollback()
            permanent = isinstance(exc, DomainError) and exc.permanent
            final = _record_failure(control, job_id, exc, permanent=permanent)
            if final:
                announce(job_id, JobStatus.FAILED)
                _next_turn(started.queue)
            log.warning(
                "job attempt failed",
                exc_info=True,
                extra={"kind": started.kind, "final": final, "attempt": started.attempts},
            )
            raise
        announce(job_id, JobStatus.SUCCEEDED)
        _next_turn(started.queue)
        log.info("job succeeded", extra={"kind": started.kind, "attempt": started.attempts})
        return result


def _next_turn(queue_name: str) -> None:
    """A bulk job is over: its company's next one may go (a retry or deferral keeps the turn)."""
    if queue_name in BULK_QUEUES:
        release_turns([queue_name])


def _mark(session: Session, job_id: str, **values: Any) -> bool:
    """Write the outcome in the task's transaction; False when the row is no longer ours (canceled)."""
    stmt = (
        JOBS.update()
        .where(JOBS.c.id == job_id, JOBS.c.status == JobStatus.STARTED)
        .values(updated_at=func.clock_timestamp(), **values)
    )
    return db.affected(session.connection().execute(stmt)) == 1


def _succeeded(result: Any) -> dict[str, Any]:
    return {
        "status": JobStatus.SUCCEEDED,
        "result": result,
        "progress": 100,
        "error": None,
        "finished_at": func.clock_timestamp(),
    }


def _deferred(deferral: Deferred) -> dict[str, Any]:
    return {
        "status": JobStatus.QUEUED,
        "attempts": JOBS.c.attempts - 1,
        "error": deferral.note,
        "next_attempt_at": func.clock_timestamp() + timedelta(seconds=deferral.seconds),
    }


def domain_error_result(exc: BaseException) -> dict[str, Any] | None:
    """`{"error": {kind, code, message, details?, retry_after?}}` for a domain error (`kind` is its
    class in app/errors.py, e.g. "Invalid"), kept as the failed job's `result` so the slow endpoints'
    renderer (app/jobs/http.py) answers that error's status and code; None for any other exception."""
    if not isinstance(exc, DomainError):
        return None
    kind = next(c.__name__ for c in type(exc).__mro__ if c.__module__ == DomainError.__module__)
    info: dict[str, Any] = {"kind": kind, "code": exc.code, "message": exc.message}
    if exc.details is not None:
        try:
            json.dumps(exc.details)
            info["details"] = exc.details
        except (TypeError, ValueError):
            pass  # not JSON: the code and message still say what went wrong
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        info["retry_after"] = retry_after
    return {"error": info}


def _record_failure(control: Connection, job_id: str, exc: BaseException, *, permanent: bool) -> bool:
    """Store the error (and a domain error's code, see `domain_error_result`); `failed` when no
    attempt is left (or it is permanent), else back to `queued` with the backoff's
    `next_attempt_at`. Returns True when final."""
    message = f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
    result = domain_error_result(exc)
    base = runtime.settings().job_retry_backoff_seconds
    status = control.execute(
        text(
            """
            WITH final AS (SELECT :permanent OR attempts >= max_attempts AS yes FROM jobs WHERE id = :id)
            UPDATE jobs SET
              error = :error,
              result = CAST(:result AS jsonb),
              updated_at = clock_timestamp(),
              status = CASE WHEN final.yes THEN 'failed' ELSE 'queued' END,
              finished_at = CASE WHEN final.yes THEN clock_timestamp() END,
              next_attempt_at = CASE WHEN NOT final.yes
                THEN clock_timestamp() + make_interval(secs => :base * power(3, attempts - 1)) END
            FROM final
            WHERE id = :id AND status = 'started'
            RETURNING status
            """
        ),
        {
            "error": message,
            "result": None if result is None else json.dumps(result),
            "permanent": permanent,
            "id": job_id,
            "base": base,
        },
    ).scalar()
    return status != JobStatus.QUEUED


def _finish_failed(control: Connection, job_id: str, message: str) -> None:
    control.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        .values(
            status=JobStatus.FAILED,
            error=message[:_ERROR_LIMIT],
            finished_at=func.clock_timestamp(),
            updated_at=func.clock_timestamp(),
        )
    )
    announce(job_id, JobStatus.FAILED)


def _worker_name() -> str:
    rq_job = get_current_job()
    name = getattr(rq_job, "worker_name", None) if rq_job is not None else None
    return name or f"{socket.gethostname()}.{os.getpid()}"
