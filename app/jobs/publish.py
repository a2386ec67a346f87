"""Putting committed job rows on their RQ queues, under the rows' ids.

Attempts, retries and backoff are the kernel's (`runner`), so RQ gets no `Retry`. Nothing here
raises for Redis trouble: a row whose push failed is still the promise, and the reconciler (or the
next release of bulk turns) publishes it later.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from redis.exceptions import RedisError
from rq import Queue
from rq.queue import EnqueueData

from app import runtime
from app.jobs.models import Job
from app.jobs.registry import get_task
from app.jobs.rq_plumbing import queue

log = logging.getLogger(__name__)

RUNNER = "app.jobs.runner.run_job"
# The outcome lives in Postgres (jobs.result, GET /jobs/<id>), so RQ drops a finished job at once
# instead of storing its result a second time (a third of bare RQ's per-job cost; failed jobs stay
# in RQ's failed registry for a week, with their traceback, for the operator console).
RESULT_TTL_SECONDS = 0


def push_to_rq(rows: Sequence[Job], *, republish: bool = False) -> list[str]:
    """Put jobs on their RQ queues (same ids as the rows), one pipeline per queue. Returns the ids
    that reached Redis: none when Redis is unreachable. A republished job leaves RQ's failed
    registry, where its earlier attempt put it."""
    settings = runtime.settings()
    connection = runtime.redis()
    by_queue: dict[str, list[EnqueueData]] = defaultdict(list)
    for row in rows:
        spec = get_task(row.kind)
        by_queue[row.queue].append(
            Queue.prepare_data(
                RUNNER,
                args=[row.id],
                job_id=row.id,
                description=row.kind,
                timeout=spec.timeout_seconds or settings.job_timeout_seconds,
                result_ttl=RESULT_TTL_SECONDS,
                failure_ttl=7 * 24 * 3600,
            )
        )
    published: list[str] = []
    for name, datas in by_queue.items():
        rq_queue = queue(name, connection)
        try:
            with connection.pipeline() as pipe:
                jobs = rq_queue.enqueue_many(datas, pipeline=pipe)
                if republish:
                    pipe.zrem(rq_queue.failed_job_registry.key, *(job.id for job in jobs))
                pipe.execute()
        except RedisError as exc:
            log.warning("jobs not published, reconciler will retry", extra={"queue": name, "error": str(exc)})
            continue
        published += [job.id for job in jobs]
    return published
