"""Reading the run history of scheduled tasks (`cron_runs`, written by app.cron.runner)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cron.models import CronRun


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
