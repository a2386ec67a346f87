"""Per-company email rate limit: a fixed window counter in Redis (shared by every worker, so N
workers together still send at most EMAIL_RATE_PER_MINUTE per EMAIL_RATE_WINDOW_SECONDS).

Nothing here waits. A caller asks for the slots it needs and gets what the window has left plus
the seconds until it turns; a job that got fewer than it needed sends those and defers.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from app import runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    granted: int
    retry_after: float  # seconds until the window turns (0.0 when everything asked for was granted)


def take(company_id: str, wanted: int, now: float | None = None) -> Grant:
    """Take up to `wanted` slots in the company's current window. Fails open (grants everything)
    when Redis is unreachable: a send is better than a stall."""
    if wanted <= 0:
        return Grant(0, 0.0)
    settings = runtime.settings()
    limit, window = settings.email_rate_per_minute, settings.email_rate_window_seconds
    moment = time.time() if now is None else now
    window_start = math.floor(moment / window) * window
    key = f"valorize:email-rate:{company_id}:{window_start}"
    try:
        with runtime.redis().pipeline() as pipe:
            pipe.incrby(key, wanted)
            pipe.expire(key, window * 2)
            count = int(pipe.execute()[0])
    except RedisError as exc:
        log.warning("email rate limit unavailable; sending anyway", extra={"error": str(exc)})
        return Grant(wanted, 0.0)
    # The counter may overshoot the limit by what was refused: harmless, the window is full anyway.
    granted = max(0, min(wanted, limit - (count - wanted)))
    return Grant(granted, 0.0 if granted == wanted else max(0.05, window_start + window - moment))
