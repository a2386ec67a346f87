"""No password, token or secret reaches a log line (issue 9): every record written while users are
invited, set passwords (API and page), log in (password and Supabase), refresh, get throttled and
are reset, formatted as the JSON line it becomes, is searched for each secret."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace

import jwt

from app import runtime
from app.config import Rate
from app.logging import json_handler
from tests.email_helpers import smtp_server  # noqa: F401  (fixture)


def test_no_secret_is_ever_logged(client, make_tenant, settings, smtp_server, worker, caplog):  # noqa: F811
    runtime.init(
        replace(
            settings,
            smtp_url=smtp_server.url,
            rate_limits_enabled=True,
            rate_limit_login_per_account=Rate(2, 60.0),
        )
    )
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [
        settings.jwt_secret,
        settings.supabase_jwt_secret or "",
    ]
    tenant = make_tenant()
    h = tenant.headers()
    secrets.append(tenant.admin_token)

    created = client.post("/admin/users", json={"name": "Ana Lima", "email": "ana@example.com"}, headers=h)
    invite_token = created.get_json()["temporaryPasswordUrl"].split("token=", 1)[1]
    secrets.append(invite_token)
    page = client.get(f"/set-password?token={invite_token}")
    assert page.status_code == 200
    first_password = "ana-page-password-1"
    secrets.append(first_password)
    form = {"token": invite_token, "password": first_password, "password_confirm": first_password}
    assert client.post("/set-password", data=form).status_code == 303

    login = client.post(
        "/auth/login", json={"email": "ana@example.com", "password": first_password}
    ).get_json()
    secrets += [login["data"]["access_token"], login["data"]["refresh_token"]]
    refreshed = client.post(
        "/auth/refresh", json={"refresh_token": login["data"]["refresh_token"]}
    ).get_json()
    secrets += [refreshed["data"]["access_token"], refreshed["data"]["refresh_token"]]
    wrong = "wrong-password-guess-42"
    secrets.append(wrong)
    for _ in range(3):  # the last one is throttled
        client.post("/auth/login", json={"email": "ana@example.com", "password": wrong})

    user_id = created.get_json()["id"]
    ticket = client.put(f"/admin/users/{user_id}/reset-password", headers=h).get_json()["ticketUrl"]
    reset_token = ticket.split("token=", 1)[1]
    second_password = "ana-api-password-2"
    secrets += [reset_token, second_password]
    assert (
        client.post(
            "/auth/set-password", json={"token": reset_token, "password": second_password}
        ).status_code
        == 200
    )

    now = int(time.time())
    supabase = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "iss": settings.supabase_jwt_issuer,
            "iat": now,
            "exp": now + 3600,
            "email": "ana@example.com",
            "user_metadata": {"email_verified": True},
        },
        settings.supabase_jwt_secret,
        algorithm="HS256",
    )
    secrets.append(supabase)
    assert client.post("/auth/login", json={"access_token": supabase}).status_code == 200

    # The invite email, sent by a worker: its link carries a fresh token.
    invited = client.post(
        "/admin/users", json={"name": "Bia Lima", "email": "bia@example.com", "sendEmail": True}, headers=h
    )
    assert invited.status_code == 201
    worker()
    mailed = smtp_server.messages[-1].part("plain")
    secrets.append(mailed.split("token=", 1)[1].split()[0])
    assert client.get("/admin/users?search=%00", headers=h).status_code == 400  # an error path too

    formatter = json_handler().formatter
    assert formatter is not None
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"logger": "app.access"' in line for line in lines)  # the log did capture the traffic
    assert any("rate limited" in line for line in lines)
    leaks = [(secret[:12], line[:300]) for secret in secrets if secret for line in lines if secret in line]
    assert not leaks, leaks
    runtime.init(settings)
