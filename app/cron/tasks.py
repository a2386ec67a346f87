"""Scheduled tasks as tracked jobs (an operator's "run now")."""

from __future__ import annotations

from typing import Any

from app.cron import runner, schedule
from app.jobs import JobContext, PermanentJobError, task


@task("cron.run", queue="cron", max_attempts=1)
def run_cron_task(ctx: JobContext, task_name: str) -> dict[str, Any]:
    """An operator's 'run now' of a scheduled task, tracked like any other job."""
    try:
        schedule.get(task_name)
    except LookupError as exc:
        raise PermanentJobError(str(exc)) from exc
    run = runner.run_task(task_name, trigger="api")
    return {"cron_run_id": run.id, "summary": run.summary}
