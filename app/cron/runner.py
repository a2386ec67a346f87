"""Runs one scheduled task and records it in `cron_runs`."""

from __future__ import annotations

import logging
import socket
from typing import Any

from sqlalchemy import update

from app import db
from app.config import ConfigError
from app.cron import schedule
from app.cron.models import CronRun

log = logging.getLogger(__name__)


class TaskFailed(RuntimeError):
    def __init__(self, run_id: int, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


def run_task(name: str, trigger: str, **options: Any) -> CronRun:
    """Run `name` now (with `options` as keyword arguments). Raises TaskFailed (after recording the
    failure) when the task raises."""
    task = schedule.get(name)
    with db.session_scope() as session:
        run = CronRun(task=name, trigger=trigger, host=socket.gethostname())
        session.add(run)
        session.flush()
        run_id = run.id
    log.info("cron task started", extra={"task": name, "trigger": trigger, "cron_run_id": run_id})
    try:
        summary = task.func(**options)
    except Exception as exc:
        _finish(run_id, "failed", None, f"{type(exc).__name__}: {exc}"[:4000])
        # A missing setting (SMTP_URL for a task that mails) is one line naming it, not a traceback.
        config = isinstance(exc, ConfigError)
        log.error(
            "cron task failed",
            exc_info=not config,
            extra={"task": name, "cron_run_id": run_id, "error": str(exc)},
        )
        why = f"configuration error: {exc}" if config else f"{type(exc).__name__}: {exc}"
        raise TaskFailed(run_id, f"{name} failed: {why}") from exc
    _finish(run_id, "succeeded", summary, None)
    log.info("cron task succeeded", extra={"task": name, "cron_run_id": run_id, "summary": summary})
    with db.session_scope() as session:
        return session.get_one(CronRun, run_id)


def _finish(run_id: int, outcome: str, summary: dict[str, Any] | None, error: str | None) -> None:
    with db.engine().begin() as conn:
        conn.execute(
            update(CronRun)
            .where(CronRun.id == run_id)
            .values(outcome=outcome, summary=summary, error=error, finished_at=db.utcnow())
        )


def run_scheduled(name: str) -> dict[str, Any] | None:
    """Entry point rq-scheduler enqueues; runs in the worker."""
    return run_task(name, trigger="scheduler").summary
