"""Per-company email rate limit: a fixed one-minute window counter in Redis (shared by every
worker, so N workers together still respect EMAIL_RATE_PER_MINUTE)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from app import runtime

log = logging.getLogger(__name__)


def try_acquire(company_id: str, limit: int, window_seconds: int = 60, now: float | None = None) -> float:
    """Take one slot in the current window: 0.0 when granted, else the seconds until the next
    window starts. Fails open (grants) when Redis is unreachable: a send is better than a stall."""
    moment = time.time() if now is None else now
    window_start = int(moment // window_seconds) * window_seconds
    key = f"valorize:email-rate:{company_id}:{window_start}"
    try:
        with runtime.redis().pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds * 2)
            count = int(pipe.execute()[0])
    except RedisError as exc:
        log.warning("email rate limit unavailable; sending anyway", extra={"error": str(exc)})
        return 0.0
    if count <= limit:
        return 0.0
    return max(0.05, window_start + window_seconds - moment)


def acquire(
    company_id: str, limit: int, window_seconds: int = 60, sleep: Callable[[float], None] = time.sleep
) -> float:
    """Block until a slot is free; returns the seconds waited."""
    waited = 0.0
    while (delay := try_acquire(company_id, limit, window_seconds)) > 0:
        sleep(delay)
        waited += delay
    return waited
