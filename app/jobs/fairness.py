"""Per-company turns on bulk queues: one company's backlog never queues ahead of another's.

A job on a bulk queue (BULK_QUEUES: the invite and notice emails) is written `pending` and `held`.
`release_turns` publishes, for each company, its oldest held jobs while the company has fewer than
SLOTS_PER_COMPANY unheld active jobs on that queue. So the Redis list of a bulk queue holds at most
a slot's worth of each company's work: a company importing 20,000 users has one invite batch in
line, and another company's email waits at most that one batch.

It runs after the commit that creates held jobs, after a bulk job reaches its end (the runner),
and on every pump tick (catching anything those missed). Releases are serialised by a transaction
advisory lock, so concurrent callers never give a company more than its slots.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.exceptions import RedisError
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from app import db
from app.jobs.models import Job, JobStatus
from app.jobs.publish import push_to_rq
from app.jobs.registry import BULK_QUEUES

log = logging.getLogger(__name__)

SLOTS_PER_COMPANY = 1
_RELEASE_LOCK = 0x7661_6C6F_7475_726E  # "valoturn"

_NEXT_TURNS = text(
    """
    WITH busy AS (
        SELECT company_id, queue, count(*) FILTER (WHERE NOT held) AS n
        FROM jobs
        WHERE status IN ('pending', 'queued', 'started') AND queue = ANY(:queues)
        GROUP BY company_id, queue
    ),
    ranked AS (
        SELECT id, company_id, queue,
               row_number() OVER (PARTITION BY company_id, queue ORDER BY created_at, id) AS turn
        FROM jobs
        WHERE held AND status = 'pending' AND queue = ANY(:queues)
    )
    SELECT ranked.id FROM ranked
    JOIN busy ON busy.company_id IS NOT DISTINCT FROM ranked.company_id AND busy.queue = ranked.queue
    WHERE ranked.turn <= :slots - busy.n
    """
)


def release_turns(queues: Iterable[str] = BULK_QUEUES) -> list[str]:
    """Publish the held jobs whose company has a free slot. Returns the ids published; none when
    Redis or Postgres is unreachable (the next caller or pump tick tries again)."""
    wanted = sorted(set(queues) & BULK_QUEUES)
    if not wanted:
        return []
    try:
        with db.session_scope() as session:
            session.execute(select(func.pg_advisory_xact_lock(_RELEASE_LOCK)))
            ids = list(session.scalars(_NEXT_TURNS, {"queues": wanted, "slots": SLOTS_PER_COMPANY}))
            if not ids:
                return []
            rows = list(
                session.scalars(
                    update(Job)
                    .where(Job.id.in_(ids), Job.held.is_(True), Job.status == JobStatus.PENDING)
                    .values(
                        held=False,
                        status=JobStatus.QUEUED,
                        enqueued_at=func.clock_timestamp(),
                        updated_at=func.clock_timestamp(),
                    )
                    .returning(Job)
                )
            )
            published = push_to_rq(rows)
            if len(published) != len(rows):
                session.rollback()  # Redis refused: they stay held, the next call retries
                return []
            return published
    except (DBAPIError, RedisError) as exc:
        log.warning("bulk turns not released now", extra={"error": str(exc)[:300]})
        return []
