"""No-op work for bench/job_overhead.py: the same (nothing) through bare RQ and through our kernel."""

from __future__ import annotations

from app.jobs import JobContext, task


def bare_noop(i: int) -> int:
    return i


@task("bench.noop", queue="bench-ours")
def noop(ctx: JobContext, i: int) -> dict[str, int]:
    return {"i": i}
