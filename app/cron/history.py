"""What `cron_runs` says: one page of the run history, and for each scheduled task its last run,
its last success, and how late it is.

Read by the operator's schedule page and by /metrics. One query for any number of tasks, each part
an index look-up on (task, started_at): its cost does not grow with the history's length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.cron import schedule
from app.cron.models import CronRun
from app.cron.schedule import ScheduledTask

_HISTORY = text(
    """
    SELECT t.name, last.outcome, last.trigger, last.started_at, last.finished_at, last.error,
           ok.finished_at, first.started_at
    FROM unnest(CAST(:names AS text[])) AS t(name)
    LEFT JOIN LATERAL (
        SELECT outcome, trigger, started_at, finished_at, error FROM cron_runs
        WHERE task = t.name ORDER BY started_at DESC LIMIT 1
    ) AS last ON true
    LEFT JOIN LATERAL (
        SELECT finished_at FROM cron_runs
        WHERE task = t.name AND outcome = 'succeeded' ORDER BY started_at DESC LIMIT 1
    ) AS ok ON true
    LEFT JOIN LATERAL (
        SELECT started_at FROM cron_runs WHERE task = t.name ORDER BY started_at LIMIT 1
    ) AS first ON true
    """
)


@dataclass(frozen=True)
class LastRun:
    outcome: str  # running | succeeded | failed
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class TaskHistory:
    task: str
    last_run: LastRun | None
    last_success_at: datetime | None
    first_run_at: datetime | None  # the task's oldest recorded run (within retention)


def task_histories(db: Session | Connection, names: Iterable[str]) -> dict[str, TaskHistory]:
    rows = db.execute(_HISTORY, {"names": list(names)}).all()
    return {
        name: TaskHistory(
            task=name,
            last_run=LastRun(outcome, trigger, started, finished, error) if outcome is not None else None,
            last_success_at=last_success,
            first_run_at=first_run,
        )
        for name, outcome, trigger, started, finished, error, last_success, first_run in rows
    }


def next_run(task: ScheduledTask, now: datetime) -> datetime:
    """The next time the app's schedule (UTC) says the task is due, after `now`."""
    return croniter(task.cron, now).get_next(datetime)


def overdue_seconds(task: ScheduledTask, since: datetime, now: datetime) -> float:
    """How long the task has been due without succeeding: 0 until the first run due after `since`
    (its last success, or when the schedule started) comes, then the time since that moment."""
    due = croniter(task.cron, since).get_next(datetime)
    return max(0.0, (now - due).total_seconds())


@dataclass(frozen=True)
class TaskStatus:
    task: ScheduledTask
    history: TaskHistory
    next_run_at: datetime
    # Seconds the task is overdue (see overdue_seconds); a task that never succeeded counts from the
    # first recorded run of any task. None only while no task has ever run.
    overdue_seconds: float | None


def schedule_status(db: Session | Connection, now: datetime) -> list[TaskStatus]:
    """Every scheduled task with its history, next due time and lateness."""
    tasks = schedule.all_tasks()
    histories = task_histories(db, [task.name for task in tasks])
    schedule_started = min((h.first_run_at for h in histories.values() if h.first_run_at), default=None)
    statuses = []
    for task in tasks:
        history = histories[task.name]
        since = history.last_success_at or schedule_started
        statuses.append(
            TaskStatus(
                task=task,
                history=history,
                next_run_at=next_run(task, now),
                overdue_seconds=overdue_seconds(task, since, now) if since is not None else None,
            )
        )
    return statuses


def list_cron_runs(
    session: Session, *, task: str | None, outcome: str | None, page: int, limit: int
) -> tuple[list[CronRun], int]:
    """One page of runs, newest first, and the filtered total. Runs are platform-wide (tasks
    serve every company), so this is for platform operators only."""
    conditions = []
    if task:
        conditions.append(CronRun.task == task)
    if outcome:
        conditions.append(CronRun.outcome == outcome)
    total = session.scalar(select(func.count()).select_from(CronRun).where(*conditions)) or 0
    rows = session.scalars(
        select(CronRun)
        .where(*conditions)
        .order_by(CronRun.started_at.desc(), CronRun.id.desc())
        .limit(limit)
        .offset((page - 1) * limit)
    ).all()
    return list(rows), int(total)
