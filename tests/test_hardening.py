"""No input makes a 500 (issue 9, item 4), security headers, docs in prod, sessions that end with a
password change, Supabase linking, and the production guards (items 3 and 5)."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select

from app import create_app, db, runtime
from app.config import ConfigError, Settings, load_settings
from app.features.auth import service as auth_service
from app.features.identity.models import Company, User

BAD_INPUT_CODES = {
    "INVALID_INPUT",
    "NUMBER_OUT_OF_RANGE",
    "JSON_TOO_DEEP",
    "INVALID_JSON",
    "VALIDATION_ERROR",
}


def _assert_400(response: Any) -> None:
    assert response.status_code == 400, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert body["error"]["code"] in BAD_INPUT_CODES and body["message"] and body["request_id"]


def _raw_json(client: Any, method: str, path: str, text: str, headers: dict[str, str]) -> Any:
    return client.open(
        path, method=method, data=text.encode(), headers={**headers, "Content-Type": "application/json"}
    )


# --- no 500 from any input --------------------------------------------------------------------


def test_nul_bytes_in_json_query_and_path_are_400(client, make_tenant):
    tenant = make_tenant()
    h = tenant.headers()
    _assert_400(client.post("/admin/company/values", json={"title": "Bad\x00title"}, headers=h))
    _assert_400(client.post("/admin/company/values", json={"title\x00": "x", "title": "ok"}, headers=h))
    _assert_400(client.get("/admin/users?search=a%00b", headers=h))
    _assert_400(client.get("/admin/users?sea%00rch=x", headers=h))
    _assert_400(client.get("/admin/users/abc%00def", headers=h))
    _assert_400(client.get("/jobs/x%00y", headers=h))
    _assert_400(
        client.post("/admin/users/bulk/actions", json={"userIds": ["a\x00"], "action": "export"}, headers=h)
    )
    _assert_400(client.post("/auth/login", json={"email": "a@b.co", "password": "pass\x00word"}))
    response = client.post(
        "/admin/users/send-welcome-emails-bulk",
        json={"userIds": [tenant.admin_id]},
        headers={**h, "Idempotency-Key": "key\x00"},
    )
    _assert_400(response)
    with db.session_scope() as session:  # nothing was written
        assert session.scalar(select(func.count()).select_from(Company)) == 1


def test_integers_past_what_javascript_and_bigint_hold_are_400(client, make_tenant):
    h = make_tenant().headers()
    for page in ("99999999999999999999999", str(2**63), str(2**53), "9" * 5000, "-" + "9" * 30):
        _assert_400(client.get(f"/admin/users?page={page}", headers=h))
    _assert_400(client.get("/admin/roles?page=100000000000000000", headers=h))
    _assert_400(client.get(f"/wallets/transactions?offset={2**62}", headers=h))
    assert client.get(f"/admin/company/values/{2**64}", headers=h).status_code == 404  # no such id
    _assert_400(
        _raw_json(client, "PATCH", "/admin/company/values/reorder", '{"ordered_ids": [' + "9" * 40 + "]}", h)
    )
    _assert_400(
        _raw_json(
            client, "PATCH", "/admin/company/values/reorder", '{"ordered_ids": [' + "9" * 5000 + "]}", h
        )
    )
    _assert_400(_raw_json(client, "PATCH", "/admin/company/coin-economy", '{"renewal_day": 1e999}', h))
    _assert_400(_raw_json(client, "PATCH", "/admin/company/coin-economy", '{"renewal_day": NaN}', h))
    # The largest safe integer is still an ordinary (out of range) value for the schema.
    response = client.get(f"/admin/users?page={2**53 - 1}", headers=h)
    assert response.status_code == 200 and response.get_json()["data"] == []


def test_deep_json_and_lone_surrogates_are_400(client, make_tenant):
    h = make_tenant().headers()
    for depth in (10_000, 100_000, 65):
        _assert_400(_raw_json(client, "POST", "/admin/roles", "[" * depth + "]" * depth, h))
    for depth in (10_000, 65):  # (a public route reads at most 64 KiB)
        _assert_400(_raw_json(client, "POST", "/auth/login", '{"a":' * depth + "1" + "}" * depth, {}))
    _assert_400(_raw_json(client, "POST", "/admin/roles", '{"name": "Squad \\ud800"}', h))
    _assert_400(_raw_json(client, "POST", "/admin/roles", '{"name": "ok", "x": {"\\udfff": 1}}', h))
    _assert_400(_raw_json(client, "POST", "/auth/refresh", '{"refresh_token": "\\ud83d"}', {}))
    assert client.post("/admin/roles", json={"name": "Squad 🚀"}, headers=h).status_code == 201  # a real pair


def test_dates_at_the_ends_of_the_calendar_are_400_and_periods_inside_the_years_work(client, make_tenant):
    """Period arithmetic on a client's dates (the previous period, the day after the end, a default
    window) overflowed Python's calendar at years 1 and 9999 (a 500); dates are now refused outside
    EARLIEST_YEAR..LATEST_YEAR, and any period within those years is computed."""
    tenant = make_tenant(super_admin=True)
    with db.session_scope() as session:
        session.get(Company, tenant.company_id).plan = "PROFESSIONAL"  # the network graph's plan
    h = tenant.headers()
    day_routes = (
        "/admin/dashboard/stats",
        "/admin/compliments-dashboard",
        "/admin/compliments-dashboard/network",
    )
    for path in day_routes:
        for query in ("startDate=0001-01-01&endDate=0001-01-05", "startDate=9999-12-30&endDate=9999-12-31"):
            _assert_400(client.get(f"{path}?{query}", headers=h))
        _assert_400(client.get(f"{path}?endDate=0001-01-03", headers=h))
        for query in (
            "startDate=1900-01-01&endDate=1900-01-05",
            "endDate=1900-01-03",
            "startDate=2999-12-31&endDate=2999-12-31",
        ):
            assert client.get(f"{path}?{query}", headers=h).status_code == 200, (path, query)
    metrics = "/admin/redemptions/metrics"
    for query in (
        "startDate=0001-01-01T00:00:00Z&endDate=9999-12-31T23:59:59Z",
        "endDate=0001-01-02T00:00:00Z",
        "startDate=9999-12-31T00:00:00Z",
        "startDate=2999-12-31T23:00:00-05:00",  # 3000 in UTC
    ):
        _assert_400(client.get(f"{metrics}?{query}", headers=h))
    backwards = client.get(
        f"{metrics}?startDate=2025-01-02T00:00:00Z&endDate=2025-01-01T00:00:00Z", headers=h
    )
    assert backwards.status_code == 400 and backwards.get_json()["error"]["code"] == "INVALID_PERIOD"
    widest = client.get(f"{metrics}?startDate=1900-01-01T00:00:00Z&endDate=2999-12-31T23:59:59Z", headers=h)
    assert (
        widest.status_code == 200 and widest.get_json()["period"]["startDate"] == "1900-01-01T00:00:00.000Z"
    )
    assert client.get(f"{metrics}?endDate=1900-01-02T00:00:00Z", headers=h).status_code == 200
    for path in ("/redemptions/my-redemptions", "/wallets/transactions"):
        _assert_400(client.get(f"{path}?fromDate=0001-01-01T00:00:00Z", headers=h))
        _assert_400(client.get(f"{path}?toDate=9999-12-31T23:59:59Z", headers=h))
        span = "fromDate=1900-01-01T00:00:00Z&toDate=2999-12-31T23:59:59Z"
        assert client.get(f"{path}?{span}", headers=h).status_code == 200, path


def test_public_routes_refuse_big_bodies_before_parsing(client, settings):
    big = b'{"email": "a@b.co", "password": "' + b"x" * (15 * 1024 * 1024) + b'"}'
    for path in ("/auth/login", "/auth/admin/login", "/auth/refresh", "/auth/set-password", "/set-password"):
        response = client.post(path, data=big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413, (path, response.status_code)
        assert response.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # A chunked body (no Content-Length) is cut off at the cap while it streams: werkzeug hands
    # the parser the first 64 KiB, which are not a whole JSON document.
    chunked = client.post(
        "/auth/login",
        input_stream=io.BytesIO(big),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_base={"wsgi.input_terminated": True},  # what gunicorn sets for a chunked body
    )
    assert chunked.status_code in (400, 413)
    small = client.post("/auth/login", json={"email": "nobody@b.co", "password": "x"})
    assert small.status_code == 401


def test_protected_routes_refuse_anonymous_big_bodies_without_reading_them(client):
    big = b"[" + b"1," * (4 * 1024 * 1024) + b"1]"
    response = client.post("/admin/roles", data=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 401


# --- security headers and docs ----------------------------------------------------------------


def test_security_headers_and_no_store_on_every_answer(client, make_tenant):
    tenant = make_tenant()
    for response in (
        client.post("/auth/login", json={"email": "x@y.co", "password": "nope"}),
        client.get("/auth/verify", headers=tenant.headers()),
        client.get("/health"),
        client.get("/admin/users/nobody", headers=tenant.headers()),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in response.headers  # plain http in dev/test


def _prod_like(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **{"app_env": "prod", "api_docs_enabled": False, **changes})


def test_prod_sends_hsts_and_hides_the_docs(settings):
    try:
        client = create_app(_prod_like(settings)).test_client()
        response = client.get("/health")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
        opened = create_app(_prod_like(settings, api_docs_enabled=True)).test_client()
        assert opened.get("/openapi.json").status_code == 200
    finally:
        runtime.init(settings)


# --- sessions end with a password change ------------------------------------------------------


def test_a_password_reset_ends_existing_access_tokens(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id, email="ana@acme.com")
    with db.session_scope() as session:
        auth_service.set_password(session, session.get_one(User, user_id), "first password")
    login = client.post(
        "/auth/login", json={"email": "ana@acme.com", "password": "first password"}
    ).get_json()
    old = {"Authorization": f"Bearer {login['data']['access_token']}"}
    assert client.get("/users/profile", headers=old).status_code == 200

    link = client.put(f"/admin/users/{user_id}/reset-password", headers=tenant.headers()).get_json()[
        "ticketUrl"
    ]
    assert client.get("/users/profile", headers=old).status_code == 200  # a link alone ends nothing
    token = link.split("token=", 1)[1]
    assert (
        client.post("/auth/set-password", json={"token": token, "password": "second password"}).status_code
        == 200
    )

    refused = client.get("/users/profile", headers=old)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "UNAUTHORIZED"
    refresh = client.post("/auth/refresh", json={"refresh_token": login["data"]["refresh_token"]})
    assert refresh.status_code == 401
    again = client.post(
        "/auth/login", json={"email": "ana@acme.com", "password": "second password"}
    ).get_json()
    fresh = {"Authorization": f"Bearer {again['data']['access_token']}"}
    assert client.get("/users/profile", headers=fresh).status_code == 200
    renewed = client.post("/auth/refresh", json={"refresh_token": again["data"]["refresh_token"]}).get_json()
    assert (
        client.get(
            "/users/profile", headers={"Authorization": f"Bearer {renewed['data']['access_token']}"}
        ).status_code
        == 200
    )


# --- Supabase linking needs a verified email --------------------------------------------------


def _supabase(settings: Settings, sub: str, email: str, **claims: Any) -> str:
    import time

    now = int(time.time())
    payload = {
        "sub": sub,
        "aud": "authenticated",
        "iss": settings.supabase_jwt_issuer,
        "iat": now,
        "exp": now + 3600,
        "email": email,
        **claims,
    }
    return jwt.encode(payload, settings.supabase_jwt_secret, algorithm="HS256")


def test_supabase_links_an_invited_user_only_with_a_verified_email(client, make_tenant, make_user, settings):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id, email="invited@acme.com")
    for claims in ({}, {"user_metadata": {"email_verified": False}}, {"email_verified": "true"}):
        token = _supabase(settings, str(uuid.uuid4()), "invited@acme.com", **claims)
        response = client.post("/auth/login", json={"access_token": token})
        assert response.status_code == 403, claims
        assert response.get_json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
    with db.session_scope() as session:
        assert session.get_one(User, user_id).auth_user_id is None
    sub = str(uuid.uuid4())
    verified = _supabase(settings, sub, "invited@acme.com", user_metadata={"email_verified": True})
    assert client.post("/auth/login", json={"access_token": verified}).status_code == 200
    with db.session_scope() as session:
        assert session.get_one(User, user_id).auth_user_id == sub
    # Once linked, the account's own later tokens need no further proof.
    assert (
        client.post(
            "/auth/login", json={"access_token": _supabase(settings, sub, "invited@acme.com")}
        ).status_code
        == 200
    )


# --- production guards ------------------------------------------------------------------------

PROD = {
    "APP_ENV": "prod",
    "DATABASE_URL": "postgresql://u@h/db",
    "REDIS_URL": "redis://h:6379/0",
    "SMTP_URL": "smtps://u:p@mail.example:465",
    "PUBLIC_API_URL": "https://api.example.com",
    "JWT_SECRET": "s" * 32,
}


@pytest.mark.parametrize("app_env", ["prod", "homolog"])
def test_production_refuses_short_secrets(app_env):
    base = {**PROD, "APP_ENV": app_env}
    for secret in ("a", "s" * 31, "é" * 15):
        with pytest.raises(ConfigError, match="JWT_SECRET"):
            load_settings({**base, "JWT_SECRET": secret})
    with pytest.raises(ConfigError, match="SUPABASE_JWT_SECRET"):
        load_settings({**base, "SUPABASE_JWT_SECRET": "short"})
    good = load_settings(base)
    assert good.jwt_secret == "s" * 32 and good.rate_limits_enabled and not good.api_docs_enabled
    assert load_settings({**PROD, "APP_ENV": "dev", "JWT_SECRET": "a"}).jwt_secret == "a"  # dev is lax


def test_production_needs_a_public_api_url():
    without = {k: v for k, v in PROD.items() if k != "PUBLIC_API_URL"}
    with pytest.raises(ConfigError, match="PUBLIC_API_URL"):
        load_settings(without)
    railway = load_settings({**without, "RAILWAY_PUBLIC_DOMAIN": "valorize-api.up.railway.app"})
    assert railway.public_api_url == "https://valorize-api.up.railway.app"
    assert load_settings({**PROD, "PUBLIC_API_URL": "https://api.example.com/"}).public_api_url == (
        "https://api.example.com"
    )
    with pytest.raises(ConfigError, match="PUBLIC_API_URL"):
        load_settings({**PROD, "PUBLIC_API_URL": "api.example.com"})


def test_seed_demo_refuses_to_run_in_production(app, settings):
    runtime.init(replace(settings, app_env="prod"))
    try:
        result = app.test_cli_runner().invoke(args=["seed-demo"])
    finally:
        runtime.init(settings)
    assert result.exit_code != 0
    assert "never seeded" in result.output
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Company)) == 0


@pytest.mark.slow
def test_the_demo_admin_is_a_company_admin_on_the_demo_domain(app, client):
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    login = client.post("/auth/login", json={"email": "ana.souza@valorize.demo", "password": "valorize-demo"})
    info = login.get_json()["data"]["user_info"]
    assert info["role"] == "Company Admin" and "Super Admin" not in info["roles"]
    headers = {"Authorization": f"Bearer {login.get_json()['data']['access_token']}"}
    assert [d["domain"] for d in client.get("/admin/company/domains", headers=headers).get_json()] == [
        "valorize.demo"
    ]
    assert client.post("/admin/cron/weekly-reset/run", headers=headers).status_code == 403  # not an operator
    created = client.post(
        "/admin/users", json={"name": "Nova Pessoa", "email": "nova@valorize.demo"}, headers=headers
    )
    assert created.status_code == 201
    assert (
        client.post(
            "/admin/users", json={"name": "Fora", "email": "x@gmail.com"}, headers=headers
        ).status_code
        == 400
    )


def test_json_bodies_still_parse_normally(client, make_tenant):
    h = make_tenant().headers()
    body = json.dumps({"name": "Nested ok", "description": "ü" * 10, "permissionNames": ["praise:send"]})
    assert _raw_json(client, "POST", "/admin/roles", body, h).status_code == 201
