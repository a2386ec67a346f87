"""The worker class we ship, and the loop that keeps it alive through Redis outages.

`KernelWorker` is RQ's `SimpleWorker`: jobs run in the worker process itself, with its warm
Postgres pool and Redis connection, instead of a work-horse forked per job (forking costs more than
a typical job, and every horse must open its own database connection). What a horse isolated is
covered by the kernel: each job has its own session and transaction, a job's time limit is RQ's
SIGALRM death penalty, a canceled job stops at its next progress report and its transaction rolls
back, and a SIGKILL takes the whole process, which the reconciler detects from the released
advisory lock. bench/run compares the classes (docs/benchmarks.md).

`serve()` runs one worker incarnation after another: RQ's loop quits on some Redis errors, and a
worker that exits loses nothing but waits for its supervisor; ours reconnects with backoff and
registers again, so a Redis restart needs no human.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, worker_registration
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now

from app.jobs.rq_plumbing import JSONJob, queue, worker_redis
from app.logging import bind

log = logging.getLogger(__name__)

# Short: a killed worker disappears from RQ (and rq-dashboard) within a minute. Live workers beat
# every pump tick (`beat`), busy or idle.
WORKER_TTL_SECONDS = 30

# Worker groups: which queues a worker service serves. Interactive and scheduled work (imports,
# previews, reports, vouchers, scheduled tasks) never shares a worker with bulk email, so it never
# waits behind a backlog of invites; within the bulk group companies take turns (fairness.py).
# A worker without a group serves RQ_QUEUES in their order (all of them: one-process setups).
GROUPS: dict[str, tuple[str, ...]] = {
    "interactive": ("default", "reports", "cron"),
    "bulk": ("emails",),
}
_BEAT_EVERY_SECONDS = 2.0


class KernelWorker(SimpleWorker):
    # RQ's dequeue loop retries a lost Redis with backoff up to 60 s; we want to be back within
    # a couple of seconds of Redis returning.
    max_connection_wait_time = 2.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stop_requested = False
        self.executed = 0

    def execute_job(self, job: Job, queue: Queue) -> None:
        self.executed += 1
        super().execute_job(job, queue)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        super().request_stop(signum, frame)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ beats several times per job (3 round trips each); liveness needs one every few
        seconds, and the pump beats each second anyway. So RQ's own beats are skipped while the
        last one is fresh: about a third of RQ's per-job Redis round trips (docs/benchmarks.md)."""
        last = self.last_heartbeat
        if pipeline is None and last is not None and (now() - last).total_seconds() < _BEAT_EVERY_SECONDS:
            return
        super().heartbeat(timeout, pipeline)

    def beat(self) -> None:
        """Heartbeat from the pump thread, so liveness never depends on what the job loop is doing.
        After Redis came back empty the worker is registered again (rq-dashboard, /ready/workers)."""
        if self.birth_date is None or self.stop_requested:
            return
        registered = self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key)
        with self.connection.pipeline() as pipe:
            if not registered:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
            self.heartbeat(pipeline=pipe)
            pipe.execute()


class _OncePerOutage(logging.Filter):
    """RQ logs every reconnect attempt during a Redis outage; keep the first one of each outage."""

    def __init__(self) -> None:
        super().__init__()
        self._in_outage = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not connect to Redis" in record.getMessage():
            first, self._in_outage = not self._in_outage, True
            return first
        self._in_outage = False
        return True


logging.getLogger("rq.worker").addFilter(_OncePerOutage())


def build_worker(queue_names: Sequence[str], connection: Redis, name: str) -> KernelWorker:
    return KernelWorker(
        [queue(queue_name, connection) for queue_name in queue_names],
        connection=connection,
        job_class=JSONJob,
        serializer=JSONSerializer,
        name=name,
        worker_ttl=WORKER_TTL_SECONDS,
    )


class WorkerLoop:
    """Runs worker incarnations until asked to stop (SIGTERM/SIGINT) or, in burst mode, until the
    queues are empty."""

    def __init__(self, redis_url: str, queue_names: Sequence[str], name: str | None, log_level: str) -> None:
        self._redis_url = redis_url
        self._queue_names = list(queue_names)
        self._base_name = name or f"{socket.gethostname()}.{os.getpid()}"
        self._log_level = log_level
        self._stopping = threading.Event()
        self.current: KernelWorker | None = None

    def beat(self) -> None:
        worker = self.current
        if worker is not None:
            worker.beat()

    def serve(self, burst: bool = False) -> int:
        incarnation = 0
        delay = 0.5
        down_since: float | None = None
        while not self._stopping.is_set():
            name = self._base_name if incarnation == 0 else f"{self._base_name}.{incarnation}"
            incarnation += 1
            try:
                worker = build_worker(self._queue_names, worker_redis(self._redis_url), name)
                bind(worker=name)
                self.current = worker
                worker.work(burst=burst, with_scheduler=False, logging_level=self._log_level)
            except RedisError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("worker: redis unavailable, reconnecting", extra={"error": str(exc)})
            else:
                if worker.stop_requested or burst:
                    return 0
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("worker: job loop quit (redis?), starting again")
            finally:
                self.current = None
            if self._redis_answers():
                if down_since is not None:
                    outage = round(time.monotonic() - down_since, 1)
                    log.warning("worker: redis back", extra={"outage_seconds": outage})
                down_since, delay = None, 0.5
                continue
            self._install_stop_handlers()  # between incarnations, RQ's handlers are gone
            self._stopping.wait(delay)
            delay = min(delay * 2, 10.0)
        return 0

    def _redis_answers(self) -> bool:
        try:
            return bool(worker_redis(self._redis_url).ping())
        except RedisError:
            return False

    def _install_stop_handlers(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
