"""/auth: password and Supabase logins, rotating refresh tokens, verify, invite password setup."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import time_machine
from sqlalchemy import func, select

from app import db, runtime
from app.auth import issue_access_token
from app.config import DEV_JWT_SECRET
from app.features.auth import service as auth_service
from app.features.auth.models import PasswordSetupToken, RefreshToken
from app.features.identity.models import Company, User

SUPABASE_SECRET = "supabase-test-secret-0123456789abcdef"
SUPABASE_ISSUER = "https://project.supabase.co/auth/v1"
PASSWORD = "correct horse battery"
STALE = {"Authorization": "Bearer stale.garbage.token"}  # the frontend sends it to public routes too


def _set_password(user_id: str, password: str = PASSWORD) -> None:
    with db.session_scope() as session:
        auth_service.set_password(session, session.get_one(User, user_id), password)


def _user(user_id: str) -> User:
    with db.session_scope() as session:
        return session.get_one(User, user_id)


def _email(user_id: str) -> str:
    return _user(user_id).email


def _count(model: Any) -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _login(client, email: str, password: str = PASSWORD, headers: dict[str, str] | None = None):
    return client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


def _supabase_token(sub: str, email: str | None, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "aud": "authenticated",
        "iss": SUPABASE_ISSUER,
        "iat": now,
        "exp": now + 3600,
        "role": "authenticated",
    }
    if email is not None:
        claims["email"] = email
        # What Supabase puts in a Google session's token: the provider vouched for the address.
        claims["user_metadata"] = {"email": email, "email_verified": True}
    claims.update(overrides)
    return jwt.encode(claims, SUPABASE_SECRET, algorithm="HS256")


def _alg_none_token(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.fixture
def member(make_tenant, make_user):
    """A company and an employee with a password; returns (tenant, user_id, email)."""
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id, email=f"Ana-{secrets.token_hex(3)}@Example.com")
    _set_password(user_id)
    return tenant, user_id, _email(user_id)


# --- password login ---------------------------------------------------------------------------


def test_password_login_returns_the_contract_envelope_and_ignores_a_stale_bearer(client, member):
    tenant, user_id, email = member
    response = _login(client, f"  {email.upper()} ", headers=STALE)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True
    data = body["data"]
    assert data["token_type"] == "Bearer"
    assert data["scope"] == "openid profile email"
    assert data["expires_in"] == 3600
    assert data["refresh_token"] and data["access_token"]
    info = data["user_info"]
    assert info["sub"] == user_id and info["id"] == user_id
    assert info["companyId"] == tenant.company_id
    assert info["email"] == email
    assert info["name"] == "User"
    assert info["isActive"] is True
    assert info["role"] == "Employee"
    assert {"avatar", "department", "jobTitle", "email_verified"} <= set(info)
    # The access token is ours and works.
    verify = client.get(
        "/auth/verify?minimal=true", headers={"Authorization": f"Bearer {data['access_token']}"}
    )
    assert verify.status_code == 200
    assert _user(user_id).last_login_at is not None


def test_admin_login_needs_an_admin_permission(client, member, make_user):
    tenant, _employee_id, employee_email = member
    refused = client.post("/auth/admin/login", json={"email": employee_email, "password": PASSWORD})
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "Access denied: Admin permissions required"
    lead_id, _ = make_user(tenant.company_id, role="Team Lead")  # holds admin:access_panel
    _set_password(lead_id)
    response = client.post(
        "/auth/admin/login", json={"email": f" {_email(lead_id)} ", "password": PASSWORD, "extra": 1}
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["user_info"]["sub"] == lead_id and data["refresh_token"]
    headers = {"Authorization": f"Bearer {data['access_token']}"}
    assert client.get("/auth/verify?minimal=true", headers=headers).status_code == 200
    wrong = client.post("/auth/admin/login", json={"email": _email(lead_id), "password": "wrong password"})
    assert wrong.status_code == 401
    assert client.post("/auth/admin/login", json={"email": _email(lead_id)}).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nobody@example.com", "password": PASSWORD},
        {"email": "__EMAIL__", "password": "wrong password"},
    ],
)
def test_bad_credentials_are_401_and_issue_nothing(client, member, body):
    _, _, email = member
    body = {**body, "email": body["email"].replace("__EMAIL__", email)}
    response = client.post("/auth/login", json=body)
    assert response.status_code == 401
    assert response.get_json()["message"] == "Invalid email or password"
    assert _count(RefreshToken) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "a@example.com"}, {"password": "x"}, {"email": "not-an-email", "password": "x"}, []],
)
def test_login_without_a_credential_form_is_400(client, member, body):
    response = client.post("/auth/login", json=body)
    assert response.status_code == 400
    assert response.get_json()["message"]
    assert _count(RefreshToken) == 0


def test_unknown_login_fields_are_ignored(client, member):
    _, _, email = member
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD, "remember": True})
    assert response.status_code == 200


def test_user_without_password_must_use_the_invite_link(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id)
    response = _login(client, _email(user_id), "anything-at-all")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "PASSWORD_NOT_SET"
    assert _count(RefreshToken) == 0


def test_deactivated_user_and_company_get_403(client, member, make_tenant, make_user):
    _tenant, user_id, email = member
    with db.session_scope() as session:
        session.get_one(User, user_id).is_active = False
    assert _login(client, email).status_code == 403

    other = make_tenant()
    other_user, _ = make_user(other.company_id)
    _set_password(other_user)
    with db.session_scope() as session:
        session.get_one(Company, other.company_id).is_active = False
    assert _login(client, _email(other_user)).status_code == 403
    assert _count(RefreshToken) == 0


def test_same_email_in_two_companies_logs_into_the_one_whose_password_matches(client, make_tenant, make_user):
    email = f"shared-{secrets.token_hex(3)}@example.com"
    first, second = make_tenant("One"), make_tenant("Two")
    user_a, _ = make_user(first.company_id, email=email)
    user_b, _ = make_user(second.company_id, email=email)
    _set_password(user_a, "password-of-a")
    _set_password(user_b, "password-of-b")
    info = _login(client, email, "password-of-b").get_json()["data"]["user_info"]
    assert (info["id"], info["companyId"]) == (user_b, second.company_id)


# --- Supabase (Google) login ------------------------------------------------------------------


def test_supabase_login_links_by_email_then_by_auth_id(client, member):
    tenant, user_id, email = member
    sub = str(uuid.uuid4())
    response = client.post(
        "/auth/login",
        json={"access_token": _supabase_token(sub, email.upper()), "refresh_token": "sb-refresh"},
        headers=STALE,
    )
    assert response.status_code == 200, response.get_json()
    info = response.get_json()["data"]["user_info"]
    assert info["sub"] == user_id and info["companyId"] == tenant.company_id
    assert _user(user_id).auth_user_id == sub
    # Next time the auth id alone finds the user, whatever email the provider reports.
    again = client.post("/auth/login", json={"access_token": _supabase_token(sub, "changed@example.com")})
    assert again.status_code == 200
    assert again.get_json()["data"]["user_info"]["id"] == user_id


def test_supabase_login_for_an_unknown_account_is_403_not_provisioned(client, member):
    token = _supabase_token(str(uuid.uuid4()), "stranger@example.com")
    response = client.post("/auth/login", json={"access_token": token})
    assert response.status_code == 403
    assert response.get_json()["message"] == "Access denied. This account is not provisioned in Valorize"
    assert _count(RefreshToken) == 0


def test_supabase_login_whose_email_is_linked_to_another_auth_id_is_403(client, member):
    _, user_id, email = member
    with db.session_scope() as session:
        session.get_one(User, user_id).auth_user_id = str(uuid.uuid4())
    response = client.post("/auth/login", json={"access_token": _supabase_token(str(uuid.uuid4()), email)})
    assert response.status_code == 403
    assert _count(RefreshToken) == 0


def test_supabase_login_of_a_deactivated_user_is_403_and_does_not_link(client, member):
    _, user_id, email = member
    with db.session_scope() as session:
        session.get_one(User, user_id).is_active = False
    response = client.post("/auth/login", json={"access_token": _supabase_token(str(uuid.uuid4()), email)})
    assert response.status_code == 403
    assert _user(user_id).auth_user_id is None


@pytest.mark.parametrize(
    "make_token",
    [
        lambda email: _supabase_token(str(uuid.uuid4()), email, iss="https://evil.example.com/auth/v1"),
        lambda email: _supabase_token(str(uuid.uuid4()), email, exp=int(time.time()) - 10),
        lambda email: _supabase_token(str(uuid.uuid4()), email, aud="anon-other"),
        lambda email: jwt.encode(
            {
                "sub": str(uuid.uuid4()),
                "email": email,
                "aud": "authenticated",
                "iss": SUPABASE_ISSUER,
                "exp": int(time.time()) + 3600,
            },
            "a-different-secret-0123456789abcdef",
            algorithm="HS256",
        ),
        lambda email: _alg_none_token(
            {
                "sub": str(uuid.uuid4()),
                "email": email,
                "aud": "authenticated",
                "iss": SUPABASE_ISSUER,
                "exp": int(time.time()) + 3600,
            }
        ),
        lambda email: "not-a-jwt",
    ],
    ids=["wrong-issuer", "expired", "wrong-audience", "wrong-secret", "alg-none", "garbage"],
)
def test_bad_supabase_tokens_are_401(client, member, make_token):
    _, user_id, email = member
    response = client.post("/auth/login", json={"access_token": make_token(email)})
    assert response.status_code == 401
    assert response.get_json()["message"]
    assert _user(user_id).auth_user_id is None
    assert _count(RefreshToken) == 0


def test_our_own_access_token_cannot_be_exchanged_for_a_session(client, member):
    tenant, user_id, _ = member
    response = client.post(
        "/auth/login", json={"access_token": issue_access_token(user_id, tenant.company_id)}
    )
    assert response.status_code == 401
    assert _count(RefreshToken) == 0


# --- refresh ----------------------------------------------------------------------------------


def _session_tokens(client, email: str) -> dict[str, Any]:
    response = _login(client, email)
    assert response.status_code == 200
    return response.get_json()["data"]


def _refresh(client, token: str, headers: dict[str, str] | None = None):
    return client.post("/auth/refresh", json={"refresh_token": token}, headers=headers)


def test_refresh_rotates_and_returns_the_contract_envelope(client, member):
    _, user_id, email = member
    first = _session_tokens(client, email)
    response = _refresh(client, first["refresh_token"], headers=STALE)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert data["refresh_token"] != first["refresh_token"]
    assert data["token_type"] == "Bearer" and data["expires_in"] == 3600
    me = client.get("/auth/verify", headers={"Authorization": f"Bearer {data['access_token']}"})
    assert me.get_json()["data"]["user"]["id"] == user_id
    # The new token rotates in turn.
    assert _refresh(client, data["refresh_token"]).status_code == 200
    with db.session_scope() as session:
        hashes = set(session.scalars(select(RefreshToken.token_hash)))
    assert first["refresh_token"] not in hashes  # only digests are stored


def test_reuse_within_the_grace_window_gets_a_valid_pair(client, member):
    _, _, email = member
    token = _session_tokens(client, email)["refresh_token"]
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        first = _refresh(client, token)
        clock.shift(timedelta(seconds=5))
        second = _refresh(client, token)  # a parallel tab with the same token
    assert first.status_code == 200 and second.status_code == 200
    for response in (first, second):
        assert _refresh(client, response.get_json()["data"]["refresh_token"]).status_code == 200


def test_parallel_refreshes_with_one_token_all_succeed(app, member):
    _, _, email = member
    token = _session_tokens(app.test_client(), email)["refresh_token"]
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(_refresh(client, token).status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6


def test_reuse_after_the_grace_window_revokes_the_whole_family(client, member):
    _, _, email = member
    token = _session_tokens(client, email)["refresh_token"]
    other_session = _session_tokens(client, email)["refresh_token"]  # another device: its own family
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        rotated = _refresh(client, token).get_json()["data"]["refresh_token"]
        clock.shift(timedelta(seconds=11))
        replay = _refresh(client, token)
        assert replay.status_code == 401
        assert replay.get_json()["message"] == "Invalid or expired refresh token"
        # The legitimate descendant dies with the family; the other device is untouched.
        assert _refresh(client, rotated).status_code == 401
        assert _refresh(client, other_session).status_code == 200


def test_grace_window_is_configurable(client, member, settings):
    runtime.init(replace(settings, refresh_reuse_grace_seconds=0))
    _, _, email = member
    token = _session_tokens(client, email)["refresh_token"]
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        assert _refresh(client, token).status_code == 200
        clock.shift(timedelta(seconds=1))
        assert _refresh(client, token).status_code == 401


def test_expired_refresh_token_is_401(client, member, settings):
    runtime.init(replace(settings, refresh_token_ttl_days=2))
    _, _, email = member
    token = _session_tokens(client, email)["refresh_token"]
    with time_machine.travel(datetime.now(UTC) + timedelta(days=2, seconds=1)):
        assert _refresh(client, token).status_code == 401


def test_unknown_refresh_token_is_401_and_missing_is_400(client, member):
    assert _refresh(client, "not-a-token").status_code == 401
    response = client.post("/auth/refresh", json={})
    assert response.status_code == 400
    assert response.get_json()["message"]


def test_refresh_of_a_deactivated_user_is_401(client, member):
    _, user_id, email = member
    token = _session_tokens(client, email)["refresh_token"]
    with db.session_scope() as session:
        session.get_one(User, user_id).is_active = False
    assert _refresh(client, token).status_code == 401


# --- verify -----------------------------------------------------------------------------------


def test_verify_minimal_and_full(client, member):
    tenant, user_id, email = member
    access = _session_tokens(client, email)["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    minimal = client.get("/auth/verify?minimal=true", headers=headers).get_json()
    assert minimal["success"] is True
    assert set(minimal["data"]) == {"isValid", "timeRemaining", "message"}
    assert minimal["data"]["isValid"] is True
    assert 0 < minimal["data"]["timeRemaining"] <= 3600

    full = client.get("/auth/verify", headers=headers).get_json()["data"]
    assert full["isValid"] is True and full["needsRefresh"] is False
    assert full["expiresAt"].endswith("Z")
    assert full["timeRemainingFormatted"].startswith(("0h", "1h"))
    user = full["user"]
    assert user["sub"] == user_id and user["id"] == user_id
    assert user["companyId"] == tenant.company_id
    assert {"email", "name", "avatar", "isActive"} <= set(user)
    # minimal=false (a string) is coerced, not rejected.
    assert "user" in client.get("/auth/verify?minimal=false", headers=headers).get_json()["data"]


def test_verify_flags_a_token_close_to_expiry(client, member):
    tenant, user_id, _ = member
    # The member has set a password: a token minted now carries the token version that moved on.
    token = issue_access_token(user_id, tenant.company_id, ttl_seconds=120, tv=_user(user_id).token_version)
    data = client.get("/auth/verify", headers={"Authorization": f"Bearer {token}"}).get_json()["data"]
    assert data["needsRefresh"] is True


def test_verify_with_a_supabase_token_of_a_linked_user(client, member):
    _, user_id, _ = member
    sub = str(uuid.uuid4())
    with db.session_scope() as session:
        session.get_one(User, user_id).auth_user_id = sub
    response = client.get("/auth/verify", headers={"Authorization": f"Bearer {_supabase_token(sub, None)}"})
    assert response.status_code == 200
    assert response.get_json()["data"]["user"]["sub"] == user_id


def _bad_access_tokens(user_id: str, company_id: str) -> dict[str, str]:
    now = int(time.time())
    base = {"sub": user_id, "companyId": company_id, "iss": "valorize", "iat": now, "type": "access"}
    return {
        "expired": jwt.encode({**base, "exp": now - 5}, DEV_JWT_SECRET, algorithm="HS256"),
        "wrong-issuer": jwt.encode(
            {**base, "iss": "someone-else", "exp": now + 600}, DEV_JWT_SECRET, "HS256"
        ),
        "wrong-secret": jwt.encode({**base, "exp": now + 600}, "x" * 40, algorithm="HS256"),
        "alg-none": _alg_none_token({**base, "exp": now + 600}),
        "garbage": "abc.def.ghi",
    }


@pytest.mark.parametrize(
    "kind", ["expired", "wrong-issuer", "wrong-secret", "alg-none", "garbage", "missing"]
)
def test_verify_rejects_bad_tokens_with_401(client, member, kind):
    tenant, user_id, _ = member
    headers = (
        {}
        if kind == "missing"
        else {"Authorization": f"Bearer {_bad_access_tokens(user_id, tenant.company_id)[kind]}"}
    )
    response = client.get("/auth/verify?minimal=true", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["message"]


def test_verify_of_a_deactivated_user_is_401(client, member):
    tenant, user_id, _ = member
    token = issue_access_token(user_id, tenant.company_id)
    with db.session_scope() as session:
        session.get_one(User, user_id).is_active = False
    assert client.get("/auth/verify", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# --- invite links (password setup tokens) -----------------------------------------------------


def _invite(user_id: str, ttl: timedelta | None = None) -> str:
    with db.session_scope() as session:
        return auth_service.create_password_setup_token(session, session.get_one(User, user_id), ttl)


def test_set_password_through_an_invite_link_then_log_in(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id)
    token = _invite(user_id)
    with db.session_scope() as session:
        assert token not in set(session.scalars(select(PasswordSetupToken.token_hash)))
    response = client.post(
        "/auth/set-password", json={"token": token, "password": "a-new-password"}, headers=STALE
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["success"] is True
    assert _login(client, _email(user_id), "a-new-password").status_code == 200
    # One-time: a second use is refused and the password stays.
    again = client.post("/auth/set-password", json={"token": token, "password": "another-password"})
    assert again.status_code == 400
    assert _login(client, _email(user_id), "a-new-password").status_code == 200


def test_set_password_validation_changes_nothing(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id)
    token = _invite(user_id)
    for body in (
        {"token": token, "password": "short"},
        {"token": token},
        {"password": "long-enough-password"},
        {"token": "made-up", "password": "long-enough-password"},
    ):
        response = client.post("/auth/set-password", json=body)
        assert response.status_code == 400, body
        assert response.get_json()["message"]
    assert _user(user_id).password_hash is None
    # The token survived the failed attempts.
    ok = client.post("/auth/set-password", json={"token": token, "password": "long-enough-password"})
    assert ok.status_code == 200


def test_expired_invite_link_is_400(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id)
    token = _invite(user_id, ttl=timedelta(hours=1))
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1, seconds=1)):
        response = client.post(
            "/auth/set-password", json={"token": token, "password": "long-enough-password"}
        )
    assert response.status_code == 400
    assert _user(user_id).password_hash is None


def test_setting_a_password_ends_existing_sessions_and_older_links(client, member):
    _, user_id, email = member
    refresh = _session_tokens(client, email)["refresh_token"]
    older, newer = _invite(user_id), _invite(user_id)
    assert (
        client.post("/auth/set-password", json={"token": newer, "password": "brand-new-pass"}).status_code
        == 200
    )
    assert _refresh(client, refresh).status_code == 401
    assert (
        client.post("/auth/set-password", json={"token": older, "password": "yet-another-1"}).status_code
        == 400
    )


def test_cli_set_password(app, client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, _ = make_user(tenant.company_id)
    email = _email(user_id)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "set-password",
            "--email",
            email.upper(),
            "--company-id",
            tenant.company_id,
            "--password",
            "cli-password",
        ]
    )
    assert result.exit_code == 0, result.output
    assert _login(client, email, "cli-password").status_code == 200
    missing = runner.invoke(
        args=[
            "set-password",
            "--email",
            "nobody@example.com",
            "--company-id",
            tenant.company_id,
            "--password",
            "x" * 9,
        ]
    )
    assert missing.exit_code != 0
    short = runner.invoke(
        args=["set-password", "--email", email, "--company-id", tenant.company_id, "--password", "short"]
    )
    assert short.exit_code != 0
    assert _login(client, email, "cli-password").status_code == 200


# --- docs -------------------------------------------------------------------------------------


def test_openapi_spec_and_offline_docs(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    for path in ("/auth/login", "/auth/refresh", "/auth/verify", "/auth/set-password"):
        assert path in paths
    assert "requestBody" in paths["/auth/login"]["post"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    html = docs.get_data(as_text=True)
    assert "/openapi.json" in html
    assert "https://" not in html and "http://" not in html  # every asset is served by us
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.get_data()) > 10_000
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def test_user_info_carries_department_and_job_title_names(client, member):
    from app.features.identity.models import Department, JobTitle

    tenant, user_id, email = member
    with db.session_scope() as session:
        department = Department(company_id=tenant.company_id, name="Engineering")
        session.add(department)
        session.flush()
        title = JobTitle(company_id=tenant.company_id, department_id=department.id, name="Developer")
        session.add(title)
        session.flush()
        user = session.get_one(User, user_id)
        user.department_id, user.job_title_id = department.id, title.id
    info = _session_tokens(client, email)["user_info"]
    assert (info["department"], info["jobTitle"]) == ("Engineering", "Developer")
