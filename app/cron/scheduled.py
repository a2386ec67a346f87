"""The job kernel's own scheduled tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from app import db, runtime
from app.cron.models import CronRun
from app.cron.schedule import scheduled
from app.jobs import service
from app.jobs.reconciler import publish_due, reconcile


@scheduled("reconcile-jobs", cron="* * * * *", description="Republish jobs that Redis lost")
def reconcile_jobs(grace_seconds: int | None = None) -> dict[str, Any]:
    """Republish active jobs nothing will run, and retries whose backoff is over. The pump in
    every worker and scheduler runs this each minute; a cron service running it too is harmless."""
    report = reconcile(grace_seconds=grace_seconds).as_dict()
    return {**report, "published_due": len(publish_due())}


@scheduled("prune-jobs", cron="17 3 * * *", description="Delete finished jobs and cron runs past retention")
def prune_jobs() -> dict[str, Any]:
    settings = runtime.settings()
    with db.session_scope() as session:
        jobs_deleted = service.prune(session, timedelta(days=settings.job_retention_days))
        cutoff = db.utcnow() - timedelta(days=settings.cron_run_retention_days)
        runs = session.execute(delete(CronRun).where(CronRun.finished_at < cutoff))
    return {"jobs_deleted": jobs_deleted, "cron_runs_deleted": db.affected(runs)}
