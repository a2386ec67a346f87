"""Rate limits over the shared Redis: a few lines of GCRA (the generic cell rate algorithm).

A rate "N/period" lets N requests through at once and then one every period/N; each key stores a
single number, its "theoretical arrival time". The clock is the caller's (`time.time()`, or `now`),
never Redis's, so tests move it with time-machine. Keys hold no personal data (the identity is
hashed) and expire once they carry no debt.

Limits (Settings, `RATE_LIMIT_*`):
- login-like routes (password and Supabase login, admin login): per account and per client address;
- token routes (refresh, set-password with a one-time token): per client address;
- routes that create a job: per company (`creates_job`).

An exceeded limit raises `RateLimited` (429 with Retry-After, the error shape). If Redis cannot be
reached the request is let through with a warning: the queues need Redis anyway, and a login
outage is worse than a few unthrottled attempts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import request
from redis.exceptions import RedisError

from app import runtime
from app.api import flag_view
from app.auth import current_user
from app.config import Rate
from app.errors import RateLimited

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# KEYS[1] = the bucket; ARGV = now (ms), emission interval (ms), period (ms).
# Returns 0 when allowed, else the milliseconds until the next request would be.
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - period - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""


def _key(bucket: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()[:32]
    return f"valorize:rate:{bucket}:{digest}"


def hit(bucket: str, identity: str, rate: Rate, now: float | None = None) -> None:
    """Count one request of `identity` in `bucket`; RateLimited when it is over `rate`."""
    if not runtime.settings().rate_limits_enabled:
        return
    moment_ms = (time.time() if now is None else now) * 1000
    interval_ms = rate.period * 1000 / rate.count
    try:
        wait_ms = int(
            runtime.redis().eval(_GCRA, 1, _key(bucket, identity), moment_ms, interval_ms, rate.period * 1000)
        )
    except RedisError as exc:
        log.warning(
            "rate limit unavailable; request let through", extra={"bucket": bucket, "error": str(exc)}
        )
        return
    if wait_ms > 0:
        retry_after = max(1, math.ceil(wait_ms / 1000))
        log.info("rate limited", extra={"bucket": bucket, "retry_after": retry_after})
        raise RateLimited(
            f"Too many requests. Try again in {retry_after} seconds.",
            retry_after,
            details={"retryAfter": retry_after},
        )


def client_address() -> str:
    """The caller's address (ProxyFix makes it the client's behind TRUSTED_PROXY_HOPS proxies). An
    IPv6 client is counted by its /64, which one subscriber usually holds whole."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def limit_login_address() -> None:
    """A login attempt (password, Supabase token, admin login) from this client address. Called
    first, before the body's token is checked or any password is hashed."""
    hit("login-address", client_address(), runtime.settings().rate_limit_login_per_address)


def limit_login_account(account: str) -> None:
    """A login attempt on one account (the normalised email, or a Supabase subject), whatever the
    address: what stops a slow, distributed guess of one password."""
    hit("login-account", account.strip().lower(), runtime.settings().rate_limit_login_per_account)


def limit_login(account: str) -> None:
    limit_login_address()
    limit_login_account(account)


def limit_token_use() -> None:
    """A refresh or a one-time set-password token: per client address."""
    hit("token-address", client_address(), runtime.settings().rate_limit_token_per_address)


def limit_job_creation(company_id: str) -> None:
    hit("jobs-company", company_id, runtime.settings().rate_limit_jobs_per_company)


def creates_job(view: F) -> F:
    """For a route that enqueues a job (place it under `require_permission`): the company's job
    creation rate limit, and the OpenAPI `Idempotency-Key` / `Prefer` headers and 429 answer."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        limit_job_creation(current_user().company_id)
        return view(*args, **kwargs)

    return flag_view(wrapper, job=True, auth=True)  # type: ignore[return-value]


def rate_limited(view: F) -> F:
    """Documents the 429 answer of a view that calls the login or token limits itself."""
    return flag_view(view, rate_limited=True)
