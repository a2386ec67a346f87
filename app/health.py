"""/health (process is alive), /ready (database, Redis and schema are usable) and /ready/workers
(someone is running the jobs: a worker heartbeated recently and the reconciler ran on time).

/ready is the web service's readiness: it does not fail when workers are down (the API still
accepts work, which waits in Postgres), but its detail shows them. /ready/workers is the probe an
orchestrator or an alert uses for the job side."""

from __future__ import annotations

from functools import cache
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select, text

from app import db, runtime
from app.api import error_response
from app.config import ROOT
from app.cron.models import CronRun
from app.cron.pump import RECONCILE_TASK
from app.jobs.reconciler import WORKER_STALE_SECONDS, live_workers

blp = Blueprint("health", __name__)


@cache
def migration_heads() -> frozenset[str]:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@blp.get("/health")
def health() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@blp.get("/ready")
def ready() -> ResponseReturnValue:
    checks: dict[str, Any] = {}
    failed: list[str] = []
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        checks["database"] = "ok"
        expected = migration_heads()
        if current == expected:
            checks["migrations"] = "ok"
        else:
            checks["migrations"] = f"at {sorted(current) or 'none'}, expected {sorted(expected)}"
            failed.append("migrations")
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
        failed.append("database")
    try:
        runtime.redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
        failed.append("redis")
    if not failed:
        checks.update(_job_side())
    if failed:
        # The shared error shape, plus the keys operators and probes already read (status, failed, checks).
        return error_response(
            503,
            "Not ready: " + ", ".join(failed),
            "NOT_READY",
            details={"failed": failed},
            extra={"status": "unavailable", "failed": failed, "checks": checks},
        )
    return jsonify({"status": "ready", "checks": checks})


def _job_side() -> dict[str, Any]:
    """Live workers and the reconciler's last success (detail only; see /ready/workers)."""
    live = live_workers(runtime.redis())
    with db.engine().connect() as conn:
        age = conn.execute(
            select(func.extract("epoch", func.clock_timestamp() - func.max(CronRun.finished_at))).where(
                CronRun.task == RECONCILE_TASK, CronRun.outcome == "succeeded"
            )
        ).scalar()
    return {
        "workers": {"live": len(live), "names": sorted(w.name for w in live)},
        "reconciler": {"last_success_age_seconds": None if age is None else round(float(age), 1)},
    }


@blp.get("/ready/workers")
def workers_ready() -> ResponseReturnValue:
    """503 when no worker heartbeated within the staleness window, or the reconciler has not
    succeeded within three of its intervals (a stuck job side), 200 otherwise."""
    try:
        detail = _job_side()
    except Exception as exc:
        return error_response(503, f"Not ready: {type(exc).__name__}", "NOT_READY")
    problems = []
    if detail["workers"]["live"] == 0:
        problems.append(f"no worker heartbeat in the last {WORKER_STALE_SECONDS} s")
    age = detail["reconciler"]["last_success_age_seconds"]
    if age is None or age > 3 * runtime.settings().reconcile_interval_seconds:
        problems.append("the reconciler has not succeeded recently")
    if problems:
        return error_response(503, "Not ready: " + "; ".join(problems), "NOT_READY", details=detail)
    return jsonify({"status": "ready", **detail})
