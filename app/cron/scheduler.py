"""`cron.py serve`: rq-scheduler for the schedule, and the kernel pump, in one loop that never exits
on a dependency outage.

Each tick (JOB_PUMP_INTERVAL_SECONDS) it:
- registers the schedule again when Redis lost it (restarted empty, or flushed);
- lets rq-scheduler move due entries onto their queues, under rq-scheduler's lock, so a second
  `serve` is harmless;
- runs the kernel pump (due retries, the reconciler once a minute, a Redis restart's catch-up).
rq-scheduler's own `run()` exits on the first Redis error and never re-registers; this loop logs
an outage once and carries on when Redis is back.
"""

from __future__ import annotations

import logging
import threading
import warnings

from redis import Redis
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from app import runtime
from app.cron import schedule
from app.cron.pump import Outage, Pump
from app.jobs.rq_plumbing import JSONJob

log = logging.getLogger(__name__)

_PREFIX = "cron-"
# crontab (used by rq-scheduler) warns about a future change of its naive-time default; our cron
# expressions are UTC and the processes run in UTC, so both behaviours agree.
warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler.utils")
RUN_SCHEDULED = "app.cron.runner.run_scheduled"
# rq-scheduler's lock lives this long past a tick, so a dead scheduler's lock frees up quickly.
_LOCK_SECONDS = 5


def _scheduler(connection: Redis, interval: float = _LOCK_SECONDS) -> Scheduler:
    return Scheduler(connection=connection, queue_name="cron", interval=interval, job_class=JSONJob)


def register_schedule(connection: Redis) -> list[str]:
    """One rq-scheduler entry per task, under a fixed id: re-registering replaces, never adds.
    Entries for tasks no longer in the schedule are removed."""
    scheduler = _scheduler(connection)
    wanted = {task.name: task for task in schedule.all_tasks()}
    for job in scheduler.get_jobs():
        if job.id.startswith(_PREFIX) and job.id[len(_PREFIX) :] not in wanted:
            scheduler.cancel(job)
    for task in wanted.values():
        job_id = _PREFIX + task.name
        if job_id in scheduler:
            scheduler.cancel(job_id)
        scheduler.cron(
            task.cron,
            func=RUN_SCHEDULED,
            args=[task.name],
            id=job_id,
            queue_name=task.queue,
            description=f"cron {task.name}",
            result_ttl=3600,
            use_local_timezone=False,
        )
    return sorted(wanted)


def registered_ids(connection: Redis) -> list[str]:
    return sorted(job.id for job in _scheduler(connection).get_jobs() if job.id.startswith(_PREFIX))


class ScheduleLoop:
    def __init__(self, connection: Redis) -> None:
        self._connection = connection
        self._wanted = len(schedule.all_tasks())
        self._scheduler = _scheduler(connection)
        self._pump = Pump(on_redis_restart=self._register)
        self._outage = Outage(log, "scheduler")

    def _register(self) -> None:
        registered = register_schedule(self._connection)
        log.warning("schedule registered", extra={"tasks": registered})

    def tick(self) -> None:
        try:
            if self._connection.zcard(Scheduler.scheduled_jobs_key) < self._wanted:
                self._register()  # Redis came back empty (or was flushed) while we kept running
            if self._scheduler.acquire_lock():
                try:
                    self._scheduler.enqueue_jobs()
                finally:
                    self._scheduler.remove_lock()
        except RedisError as exc:
            self._outage.failed(exc)
        else:
            self._outage.ok()
        self._pump.tick()

    def run(self, stop: threading.Event) -> None:
        interval = runtime.settings().job_pump_interval_seconds
        while not stop.is_set():
            self.tick()
            stop.wait(interval)


def run_scheduler(connection: Redis, stop: threading.Event | None = None) -> None:
    ScheduleLoop(connection).run(stop or threading.Event())
