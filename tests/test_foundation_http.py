"""HTTP basics: bearer auth (ours and Supabase's), tenancy, permissions, errors, health."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from dataclasses import replace

import jwt
import pytest
from sqlalchemy import update

from app import create_app, db, runtime
from app import logging as app_logging
from app.features.identity.models import Company, User
from app.jobs import enqueue
from tests.conftest import kill_tree, start_worker_process, wait_for

SUPABASE_SECRET = "supabase-test-secret-0123456789abcdef"
SUPABASE_ISSUER = "https://project.supabase.co/auth/v1"


def _job_for(tenant, requested_by: str | None = None) -> str:
    with db.session_scope() as session:
        job, _ = enqueue(
            session,
            "probe.effect",
            company_id=tenant.company_id,
            requested_by=requested_by or tenant.admin_id,
        )
        return job.id


def _supabase_token(sub: str, **overrides: object) -> str:
    claims = {"sub": sub, "aud": "authenticated", "iss": SUPABASE_ISSUER, "exp": int(time.time()) + 600}
    claims.update(overrides)
    return jwt.encode(claims, SUPABASE_SECRET, algorithm="HS256")


def test_user_of_another_company_gets_404_for_a_job(client, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    job_id = _job_for(b)
    assert client.get(f"/jobs/{job_id}", headers=b.headers()).status_code == 200
    response = client.get(f"/jobs/{job_id}", headers=a.headers())
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"
    assert client.post(f"/jobs/{job_id}/cancel", headers=a.headers()).status_code == 404
    assert client.post(f"/jobs/{job_id}/retry", headers=a.headers()).status_code == 404
    assert client.get("/jobs", headers=a.headers()).get_json()["totalCount"] == 0


def test_employee_sees_own_jobs_only_and_cannot_operate_them(client, make_tenant, make_user):
    tenant = make_tenant()
    employee_id, employee_token = make_user(tenant.company_id, "Employee")
    own = _job_for(tenant, requested_by=employee_id)
    someone_elses = _job_for(tenant)
    headers = tenant.headers(employee_token)
    assert client.get(f"/jobs/{own}", headers=headers).status_code == 200
    assert client.get(f"/jobs/{someone_elses}", headers=headers).status_code == 404
    assert [j["id"] for j in client.get("/jobs", headers=headers).get_json()["data"]] == [own]
    forbidden = client.post(f"/jobs/{own}/cancel", headers=headers)
    assert forbidden.status_code == 403
    body = forbidden.get_json()
    assert body["error"]["code"] == "INSUFFICIENT_PERMISSION"
    assert body["error"]["details"]["missingPermissions"] == ["jobs:manage"]
    assert "jobs:manage" in body["message"]
    assert client.post("/admin/cron/reconcile-jobs/run", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer "
        + jwt.encode({"sub": "x", "iss": "valorize", "exp": int(time.time()) + 60}, "wrong-secret-" * 3),
    ],
    ids=["missing", "empty", "basic", "garbage", "wrong-secret"],
)
def test_missing_or_bad_token_is_401(client, make_tenant, authorization):
    make_tenant()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/jobs", headers=headers)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert body["message"] and body["request_id"]


def test_expired_token_is_401(client, make_tenant):
    from app.auth import issue_access_token

    tenant = make_tenant()
    token = issue_access_token(tenant.admin_id, tenant.company_id, ttl_seconds=-10)
    response = client.get("/jobs", headers=tenant.headers(token))
    assert response.status_code == 401
    assert response.get_json()["message"] == "Access token expired"


def test_alg_none_token_is_refused(client, make_tenant):
    tenant = make_tenant()

    def b64(part: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    claims = {"sub": tenant.admin_id, "iss": "valorize", "exp": int(time.time()) + 600}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert client.get("/jobs", headers=tenant.headers(unsigned)).status_code == 401


def test_token_of_a_deactivated_user_or_company_is_401(client, make_tenant):
    tenant = make_tenant()
    assert client.get("/jobs", headers=tenant.headers()).status_code == 200
    with db.session_scope() as session:
        session.execute(update(User).where(User.id == tenant.admin_id).values(is_active=False))
    assert client.get("/jobs", headers=tenant.headers()).status_code == 401
    with db.session_scope() as session:
        session.execute(update(User).where(User.id == tenant.admin_id).values(is_active=True))
        session.execute(update(Company).where(Company.id == tenant.company_id).values(is_active=False))
    assert client.get("/jobs", headers=tenant.headers()).status_code == 401


def test_supabase_token_maps_sub_to_the_linked_local_user(client, make_tenant):
    tenant = make_tenant()
    with db.session_scope() as session:
        session.execute(update(User).where(User.id == tenant.admin_id).values(auth_user_id="supa-0001"))
    job_id = _job_for(tenant)
    ok = client.get(f"/jobs/{job_id}", headers=tenant.headers(_supabase_token("supa-0001")))
    assert ok.status_code == 200
    for token in (
        _supabase_token("supa-0001", iss="https://evil.example/auth/v1"),
        _supabase_token("supa-0001", aud="anon-client"),
        _supabase_token("supa-0001", exp=int(time.time()) - 5),
        _supabase_token("supa-unknown"),
        jwt.encode({"sub": "supa-0001", "aud": "authenticated", "iss": SUPABASE_ISSUER}, SUPABASE_SECRET),
    ):
        assert client.get(f"/jobs/{job_id}", headers=tenant.headers(token)).status_code == 401


def test_errors_share_one_shape_and_every_response_has_a_request_id(client):
    response = client.get("/no/such/route", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "req-123"
    body = response.get_json()
    assert body["request_id"] == "req-123"
    assert body["error"]["code"] == "NOT_FOUND" and body["message"] == body["error"]["message"]
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["X-Request-ID"] and " " not in generated.headers["X-Request-ID"]
    wrong_method = client.delete("/health")
    assert (
        wrong_method.status_code == 405 and wrong_method.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    )


@pytest.fixture
def access_lines(monkeypatch):
    """The JSON lines the app's access logger writes, formatted exactly as in production."""
    stream = io.StringIO()
    handler = app_logging.json_handler(stream)
    logger = app_logging.access_log
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the test profile logs at WARNING; setLevel also clears the level cache
    monkeypatch.setattr(logger, "propagate", False)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_every_request_writes_one_json_access_line_with_its_request_id(client, make_tenant, access_lines):
    tenant = make_tenant()
    ok = client.get("/jobs?page=1", headers={**tenant.headers(), "X-Request-ID": "req-access-200"})
    missing = client.get("/no/such/route")
    assert ok.status_code == 200 and missing.status_code == 404

    first, second = access_lines()  # exactly one line per request
    assert first["logger"] == "app.access" and first["level"] == "INFO"
    assert first["request_id"] == ok.headers["X-Request-ID"] == "req-access-200"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/jobs", 200)
    assert first["route"] == "/jobs"  # the URL rule, for grouping by endpoint
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["remote_addr"] == "127.0.0.1"
    assert (first["user_id"], first["company_id"]) == (tenant.admin_id, tenant.company_id)
    assert "page=1" not in json.dumps(first)  # never the query string

    assert second["request_id"] == missing.headers["X-Request-ID"]
    assert second["request_id"] != first["request_id"]
    assert (second["path"], second["status"]) == ("/no/such/route", 404)
    assert "user_id" not in second and "company_id" not in second  # nothing left from the last request


def test_health_hits_are_debug_but_errors_and_500s_are_logged(app, client, monkeypatch, access_lines):
    assert client.get("/health").status_code == 200
    assert access_lines() == []  # a liveness probe's success is a DEBUG line

    def boom():
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(app.view_functions, "health.health", boom)
    failed = client.get("/health", headers={"X-Request-ID": "req-access-500"})
    assert failed.status_code == 500
    [line] = access_lines()
    assert (line["level"], line["path"], line["status"]) == ("INFO", "/health", 500)
    assert line["request_id"] == failed.headers["X-Request-ID"] == "req-access-500"


def test_trailing_slash_is_accepted(client, make_tenant):
    tenant = make_tenant()
    assert client.get("/jobs/", headers=tenant.headers()).status_code == 200


def test_health_and_ready_when_everything_is_up(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    checks = ready.get_json()["checks"]
    assert {name: checks[name] for name in ("database", "migrations", "redis")} == {
        "database": "ok",
        "migrations": "ok",
        "redis": "ok",
    }
    # The job side is detail here (the web stays ready without workers), and a probe of its own.
    assert checks["workers"]["live"] == 0
    assert checks["reconciler"] == {"last_success_age_seconds": None}
    workers = client.get("/ready/workers")
    assert workers.status_code == 503
    assert "no worker heartbeat" in workers.get_json()["message"]


@pytest.mark.slow
def test_ready_workers_turns_200_once_a_worker_beats_and_the_reconciler_ran(settings, client, private_redis):
    process = start_worker_process(REDIS_URL=private_redis.url)  # its pump beats and reconciles
    try:
        ready = wait_for(lambda: (r := client.get("/ready/workers")).status_code == 200 and r, timeout=60)
    finally:
        kill_tree(process)
    body = ready.get_json()
    assert body["workers"]["live"] == 1
    assert body["reconciler"]["last_success_age_seconds"] < 60


@pytest.mark.slow
def test_ready_is_503_naming_redis_when_redis_is_unreachable(settings, client, private_redis):
    private_redis.stop()
    response = client.get("/ready", headers={"X-Request-ID": "ready-probe-1"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["redis"]
    assert "redis" in body["message"]
    assert body["checks"]["database"] == "ok"
    assert body["status"] == "unavailable"
    # ... and the shared error shape beside those keys.
    assert body["error"] == {
        "code": "NOT_READY",
        "message": body["message"],
        "details": {"failed": ["redis"]},
    }
    assert body["request_id"] == response.headers["X-Request-ID"] == "ready-probe-1"


def test_ready_is_503_naming_the_database_when_it_is_unreachable(settings):
    app = create_app(replace(settings, database_url="postgresql+psycopg2://postgres@127.0.0.1:1/none"))
    try:
        response = app.test_client().get("/ready")
        assert response.status_code == 503
        assert response.get_json()["failed"] == ["database"]
    finally:
        runtime.init(settings)


def test_ready_is_503_when_migrations_are_behind(client, settings):
    with db.engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    try:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.get_json()["failed"] == ["migrations"]
    finally:
        from app.health import migration_heads

        with db.engine().begin() as conn:
            conn.exec_driver_sql(
                "UPDATE alembic_version SET version_num = %s", (next(iter(migration_heads())),)
            )


def test_cors_preflight_needs_no_token_and_only_listed_origins_are_allowed(settings, make_tenant):
    app = create_app(replace(settings, cors_origins=("https://app.valorize.example",)))
    client = app.test_client()
    preflight = client.options(
        "/jobs",
        headers={
            "Origin": "https://app.valorize.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
        },
    )
    assert preflight.status_code == 200  # never 401: preflights carry no token
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.valorize.example"
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]

    tenant = make_tenant()
    real = client.get("/jobs", headers={**tenant.headers(), "Origin": "https://app.valorize.example"})
    assert real.headers["Access-Control-Allow-Origin"] == "https://app.valorize.example"
    assert "Location" in real.headers["Access-Control-Expose-Headers"]

    foreign = client.options(
        "/jobs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers
