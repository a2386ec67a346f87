"""No-op work for bench/job_overhead.py: the same (nothing) through bare RQ and through our kernel,
and a probe that stamps when it started."""

from __future__ import annotations

import os
import time

from redis import Redis

from app import runtime
from app.jobs import JobContext, task


def bare_noop(i: int) -> int:
    return i


@task("bench.noop", queue="bench-ours")
def noop(ctx: JobContext, i: int) -> dict[str, int]:
    return {"i": i}


def bare_stamp(key: str) -> None:
    """Record when the job started (bench/job_overhead.py's latency probe)."""
    Redis.from_url(os.environ["REDIS_URL"]).set(key, time.time())


@task("bench.stamp", queue="bench-latency")
def stamp(ctx: JobContext, key: str) -> dict[str, str]:
    runtime.redis().set(key, time.time())
    return {"key": key}
