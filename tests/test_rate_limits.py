"""Rate limits (issue 9, item 2) with a controlled clock (time-machine): logins per account and per
client address, token routes per address, job creation per company; 429 + Retry-After in the
error shape, and no password hashing once an account is throttled."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from app import db, runtime
from app.config import Rate, Settings, load_settings
from app.features.auth import service as auth_service
from app.features.identity.models import User

PASSWORD = "correct horse battery"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2 at its cheapest: these tests count attempts, not hashing cost (a real hash takes
    64 MiB and most of a second on a shared CI core)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(auth_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    auth_service._dummy_hash.cache_clear()
    yield
    auth_service._dummy_hash.cache_clear()


@pytest.fixture
def limits(settings: Settings) -> Iterator[None]:
    runtime.init(
        replace(
            settings,
            rate_limits_enabled=True,
            rate_limit_login_per_account=Rate(3, 60.0),  # 3 at once, then one every 20 s
            rate_limit_login_per_address=Rate(5, 60.0),
            rate_limit_token_per_address=Rate(4, 60.0),
            rate_limit_jobs_per_company=Rate(2, 60.0),
        )
    )
    yield
    runtime.init(settings)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _user_with_password(make_tenant: Any, make_user: Any) -> tuple[Any, str, str]:
    tenant = make_tenant()
    email = f"ana-{secrets.token_hex(3)}@acme.com"
    user_id, _ = make_user(tenant.company_id, email=email)
    with db.session_scope() as session:
        auth_service.set_password(session, session.get_one(User, user_id), PASSWORD)
    return tenant, user_id, email


_addresses = (f"198.51.100.{n}" for n in itertools.cycle(range(1, 255)))


def _login(client: Any, email: str, password: str, address: str | None = None) -> Any:
    """A login from `address`, by default from a new address each time (so only the per-account
    limit is in play)."""
    return client.post(
        "/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address or next(_addresses)},
    )


def _assert_429(response: Any, retry_after: int) -> None:
    assert response.status_code == 429, response.json
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.json["error"]["code"] == "RATE_LIMITED"
    assert response.json["error"]["details"]["retryAfter"] == retry_after
    assert response.json["message"] and response.json["request_id"]


def test_login_per_account_then_the_clock_frees_it(client, make_tenant, make_user, limits, clock):
    _, _, email = _user_with_password(make_tenant, make_user)
    for _ in range(3):
        assert _login(client, email, "wrong password").status_code == 401
    _assert_429(_login(client, email, "wrong password"), 20)
    # The right password is throttled too (that is what stops guessing), from any address.
    _assert_429(_login(client, email, PASSWORD), 20)
    _assert_429(_login(client, email.upper(), PASSWORD), 20)  # the account, however it is spelled
    clock.shift(19)
    _assert_429(_login(client, email, PASSWORD), 1)
    clock.shift(1)
    assert _login(client, email, PASSWORD).status_code == 200


def test_a_throttled_login_hashes_nothing(client, make_tenant, make_user, limits, clock, monkeypatch):
    _, _, email = _user_with_password(make_tenant, make_user)
    calls: list[str] = []
    real = auth_service._hasher

    class CountingHasher:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, *args: Any) -> bool:
            calls.append("verify")
            return real.verify(*args)

    monkeypatch.setattr(auth_service, "_hasher", CountingHasher())
    for _ in range(3):
        _login(client, email, "wrong password")
    assert len(calls) == 3
    for _ in range(20):
        assert _login(client, email, "wrong password").status_code == 429
    assert len(calls) == 3


def test_login_per_address_covers_every_account_and_the_admin_login(
    client, make_tenant, make_user, limits, clock
):
    for index in range(5):
        path = "/auth/admin/login" if index % 2 else "/auth/login"
        response = client.post(
            path,
            json={"email": f"nobody{index}@acme.com", "password": "x"},
            environ_base={"REMOTE_ADDR": "203.0.113.7"},
        )
        assert response.status_code == 401
    _assert_429(_login(client, "someone-else@acme.com", "x", address="203.0.113.7"), 12)
    # Another client is not affected; an IPv6 client is counted by its /64.
    assert _login(client, "someone-else@acme.com", "x", address="203.0.113.8").status_code == 401
    for index in range(5):
        assert (
            _login(client, f"v6-{index}@acme.com", "x", address=f"2001:db8::{index + 1}").status_code == 401
        )
    assert _login(client, "v6@acme.com", "x", address="2001:db8::ffff").status_code == 429
    assert _login(client, "v6@acme.com", "x", address="2001:db8:0:1::1").status_code == 401


def test_supabase_exchange_is_limited_per_address(client, limits, clock):
    """Counted before the token is even checked, in the same budget as password logins."""
    for _ in range(5):
        response = client.post(
            "/auth/login", json={"access_token": "not-a-jwt"}, environ_base={"REMOTE_ADDR": "203.0.113.7"}
        )
        assert response.status_code == 401
    _assert_429(_login(client, "a@acme.com", "x", address="203.0.113.7"), 12)


def test_refresh_and_set_password_tokens_are_limited_per_address(client, limits, clock):
    for index in range(4):
        path, body = (
            ("/auth/refresh", {"refresh_token": f"guess-{index}"})
            if index % 2
            else ("/auth/set-password", {"token": f"guess-{index}", "password": "long enough pw"})
        )
        assert client.post(path, json=body).status_code in (400, 401)
    _assert_429(client.post("/auth/refresh", json={"refresh_token": "guess"}), 15)
    _assert_429(client.post("/auth/set-password", json={"token": "guess", "password": "long enough pw"}), 15)
    clock.shift(15)
    assert client.post("/auth/refresh", json={"refresh_token": "guess"}).status_code == 401


def test_job_creation_is_limited_per_company(client, make_tenant, make_user, limits, clock):
    acme, other = make_tenant("Acme"), make_tenant("Other")
    employee, _ = make_user(acme.company_id)
    async_headers = {**acme.headers(), "Prefer": "respond-async"}
    for _ in range(2):
        response = client.post(
            "/admin/users/send-welcome-emails-bulk", json={"userIds": [employee]}, headers=async_headers
        )
        assert response.status_code == 202, response.json
    _assert_429(
        client.post(
            "/admin/users/send-welcome-emails-bulk", json={"userIds": [employee]}, headers=async_headers
        ),
        30,
    )
    _assert_429(client.post(f"/admin/users/{employee}/send-welcome-email", headers=async_headers), 30)
    other_employee, _ = make_user(other.company_id)
    response = client.post(
        f"/admin/users/{other_employee}/send-welcome-email",
        headers={**other.headers(), "Prefer": "respond-async"},
    )
    assert response.status_code == 202
    clock.shift(30)
    response = client.post(f"/admin/users/{employee}/send-welcome-email", headers=async_headers)
    assert response.status_code == 202


def test_limits_let_requests_through_when_redis_is_down(client, make_tenant, make_user, limits, settings):
    _, _, email = _user_with_password(make_tenant, make_user)
    runtime.init(replace(runtime.settings(), redis_url="redis://127.0.0.1:9/0"))
    for _ in range(5):
        assert _login(client, email, PASSWORD).status_code == 200


def test_limits_are_on_by_default_and_configurable(settings):
    base = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    prod = load_settings(
        {
            **base,
            "APP_ENV": "prod",
            "JWT_SECRET": "x" * 32,
            "SMTP_URL": "smtp://mail:25",
            "PUBLIC_API_URL": "https://api.example.com",
        }
    )
    assert prod.rate_limits_enabled
    assert prod.rate_limit_login_per_account == Rate(10, 900.0)
    custom = load_settings({**base, "APP_ENV": "dev", "RATE_LIMIT_LOGIN_PER_ACCOUNT": "5/2h"})
    assert custom.rate_limit_login_per_account == Rate(5, 7200.0)
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="RATE_LIMIT_JOBS_PER_COMPANY"):
        load_settings({**base, "APP_ENV": "dev", "RATE_LIMIT_JOBS_PER_COMPANY": "lots"})


def test_the_users_table_is_untouched_by_throttled_logins(client, make_tenant, make_user, limits, clock):
    _, user_id, email = _user_with_password(make_tenant, make_user)
    for _ in range(10):
        _login(client, email, "wrong password")
    with db.session_scope() as session:
        assert session.scalar(select(User.last_login_at).where(User.id == user_id)) is None


def test_password_hashing_is_bounded_per_process(client, make_tenant, make_user, monkeypatch):
    """With every argon2 slot of the process taken, a login waits a bounded time and then answers
    503 + Retry-After instead of piling up 64 MiB hashes."""
    import threading

    _, _, email = _user_with_password(make_tenant, make_user)
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(auth_service, "_hash_slots", slots)
    monkeypatch.setattr(auth_service, "_HASH_WAIT_SECONDS", 0.05)
    slots.acquire()  # someone else is hashing
    try:
        busy = _login(client, email, PASSWORD)
    finally:
        slots.release()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert busy.json["error"]["code"] == "BUSY"
    assert _login(client, email, PASSWORD).status_code == 200
