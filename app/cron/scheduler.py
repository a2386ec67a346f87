"""Registering the schedule with rq-scheduler (idempotent across restarts) and running it."""

from __future__ import annotations

import warnings

from redis import Redis
from rq_scheduler import Scheduler

from app.cron import schedule
from app.jobs.rq_plumbing import JSONJob

_PREFIX = "cron-"
# crontab (used by rq-scheduler) warns about a future change of its naive-time default; our cron
# expressions are UTC and the processes run in UTC, so both behaviours agree.
warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler.utils")
RUN_SCHEDULED = "app.cron.runner.run_scheduled"


def _scheduler(connection: Redis, interval: int = 15) -> Scheduler:
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


def run_scheduler(connection: Redis, interval: int = 15) -> None:
    _scheduler(connection, interval).run()
