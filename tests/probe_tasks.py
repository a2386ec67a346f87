"""Tasks the test-suite runs through the real kernel: each leaves a countable side effect
(a row in probe_effects, written in the job's transaction)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from app.cron.schedule import scheduled
from app.errors import Invalid, Unavailable
from app.jobs import JobContext, PermanentJobError, task


@task("probe.effect", max_attempts=3)
def effect(
    ctx: JobContext, note: str = "", seconds: float = 0.0, slow_attempts: int = 99, fail_attempts: int = 0
) -> dict[str, Any]:
    """Write one effect row; optionally run slowly (reporting progress) on the first
    `slow_attempts` attempts, or fail the first `fail_attempts` attempts."""
    ctx.session.execute(
        text("INSERT INTO probe_effects (job_id, note) VALUES (:j, :n)"), {"j": ctx.job_id, "n": note}
    )
    steps = 20
    for step in range(steps):
        if seconds and ctx.attempt <= slow_attempts:
            time.sleep(seconds / steps)
            ctx.progress((step + 1) * 100 // steps)
    if ctx.attempt <= fail_attempts:
        raise RuntimeError(f"probe failure on attempt {ctx.attempt}")
    return {"note": note, "attempt": ctx.attempt}


@task("probe.permanent")
def permanent(ctx: JobContext) -> None:
    raise PermanentJobError("input can never work")


@scheduled("probe-fail", cron="0 0 1 1 *", description="test-only task that always fails")
def probe_fail() -> dict[str, Any]:
    raise RuntimeError("probe cron failure")


@task("probe.domain_error", max_attempts=3)
def domain_error(ctx: JobContext, kind: str = "invalid") -> None:
    """Raise a domain error: permanent ones fail the job at once, transient ones are retried."""
    if kind == "unavailable":
        raise Unavailable("the provider is down")
    raise Invalid("this input can never work", "BAD_INPUT")


@task("probe.defer")
def defer(ctx: JobContext, times: int = 1) -> dict[str, Any]:
    """Write one effect per slice and defer `times` times (0 s), as a rate-limited batch does."""
    ctx.session.execute(
        text("INSERT INTO probe_effects (job_id, note) VALUES (:j, 'slice')"), {"j": ctx.job_id}
    )
    done = ctx.session.execute(
        text("SELECT count(*) FROM probe_effects WHERE job_id = :j"), {"j": ctx.job_id}
    )
    slices = int(done.scalar_one())
    if slices <= times:
        ctx.defer(0, f"deferred {slices}")
    return {"slices": slices}


@task("probe.unique", max_attempts=20)
def unique(ctx: JobContext, note: str = "", seconds: float = 0.0) -> dict[str, Any]:
    """One effect under a primary key (a second effect of the job would fail the transaction)."""
    if seconds:
        time.sleep(seconds)
    ctx.session.execute(
        text("INSERT INTO probe_unique_effects (job_id, note) VALUES (:j, :n)"), {"j": ctx.job_id, "n": note}
    )
    return {"note": note}


@task("probe.bulk", queue="emails")
def bulk(ctx: JobContext, note: str = "", seconds: float = 0.0) -> dict[str, Any]:
    """Stands for a bulk email batch: on the emails queue, takes a while."""
    time.sleep(seconds)
    ctx.session.execute(
        text("INSERT INTO probe_effects (job_id, note) VALUES (:j, 'bulk')"), {"j": ctx.job_id}
    )
    return {}


@task("probe.permanent_bulk", queue="emails")
def permanent_bulk(ctx: JobContext) -> None:
    raise PermanentJobError("this batch can never be sent")
