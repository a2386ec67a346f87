"""Waiting for a job without polling Postgres: the kernel announces every terminal state on a
per-job Redis stream, and waiters block on it (XREAD) and re-read the row only when told.

A stream rather than pub/sub or a list: a waiter that starts after the event still sees it, and
any number of waiters (a double-clicked request) all see it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from app import runtime
from app.jobs.models import TERMINAL_STATUSES, Job

log = logging.getLogger(__name__)

_EVENT_TTL_SECONDS = 600
# Our Redis client times out reads after 5 s, so one blocking read waits less than that.
_BLOCK_SLICE_MS = 4000


def _key(job_id: str) -> str:
    return f"valorize:job-events:{job_id}"


def announce(job_id: str, status: str) -> None:
    """Tell waiters the job reached `status`. Best effort: a waiter that misses it times out and
    answers 202, which is still correct."""
    try:
        with runtime.redis().pipeline() as pipe:
            pipe.xadd(_key(job_id), {"status": status}, maxlen=20, approximate=True)
            pipe.expire(_key(job_id), _EVENT_TTL_SECONDS)
            pipe.execute()
    except RedisError as exc:
        log.warning("could not announce job state", extra={"job_id": job_id, "error": str(exc)})


def wait_for_job(session: Session, job: Job, timeout_seconds: float) -> Job:
    """Return `job` refreshed once it is terminal, or as it stands when the timeout runs out."""
    deadline = time.monotonic() + timeout_seconds
    last_seen = "0"
    session.refresh(job)
    while job.status not in TERMINAL_STATUSES:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            break
        try:
            events = runtime.redis().xread(
                {_key(job.id): last_seen}, block=min(remaining_ms, _BLOCK_SLICE_MS)
            )
        except RedisError as exc:
            log.warning("cannot wait for job; answering with its current state", extra={"error": str(exc)})
            break
        if events:
            stream_events = cast(list[Any], events)  # [(stream, [(event id, fields), …])]
            last_seen = stream_events[0][1][-1][0]
            session.refresh(job)  # an event arrived: now the row is worth reading
    return job
