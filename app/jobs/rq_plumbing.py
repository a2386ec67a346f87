"""Redis connection, queues and the JSON job class every process uses.

rq-scheduler builds its jobs through `job_class` and has no serializer option, so the job class
itself defaults to JSON: scheduled, retried and API-enqueued jobs all serialize the same way.
"""

from __future__ import annotations

from functools import cache

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer


class JSONJob(Job):
    def __init__(self, id: str | None = None, connection: Redis | None = None, serializer: object = None):
        super().__init__(id=id, connection=connection, serializer=serializer or JSONSerializer)


@cache
def redis_connection(url: str) -> Redis:
    # RQ stores binary payloads: no decode_responses. Short timeouts so a dead Redis fails fast
    # (an API request must not hang on it; the reconciler catches up later).
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


@cache
def worker_redis(url: str) -> Redis:
    """The worker's own client: RQ raises its socket timeout above the blocking dequeue's, which
    must not leak into the client that tasks and the pump use (runtime.redis(), 5 s)."""
    return Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)


def queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, job_class=JSONJob, serializer=JSONSerializer)
