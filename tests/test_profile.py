"""/users/profile, /users/me/* and /admin/roles/me: the caller's own data, envelopes per contract §4/§8."""

from __future__ import annotations

import pytest

from app import db
from app.features.identity.catalogue import DEFAULT_ROLES
from app.features.identity.models import User


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(user_id: str) -> User:
    with db.session_scope() as session:
        return session.get_one(User, user_id)


def test_get_profile_envelope(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, token = make_user(tenant.company_id, email="maria@example.com")
    response = client.get("/users/profile", headers=_bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"id", "authUserId", "email", "name", "avatar", "isActive", "createdAt", "updatedAt"}
    assert (data["id"], data["email"], data["name"]) == (user_id, "maria@example.com", "User")
    assert data["avatar"] is None and data["isActive"] is True
    assert data["createdAt"].endswith("Z")


def test_put_profile_changes_name_and_avatar(client, make_tenant, make_user):
    tenant = make_tenant()
    user_id, token = make_user(tenant.company_id)
    response = client.put(
        "/users/profile",
        json={"name": "  Maria Silva ", "avatar": "https://cdn.example.com/a.png", "id": "ignored", "x": 1},
        headers=_bearer(token),
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert (data["id"], data["name"], data["avatar"]) == (
        user_id,
        "Maria Silva",
        "https://cdn.example.com/a.png",
    )
    # Leaving the avatar out keeps it; an empty string clears it.
    client.put("/users/profile", json={"name": "Maria"}, headers=_bearer(token))
    assert _user(user_id).avatar == "https://cdn.example.com/a.png"
    client.put("/users/profile", json={"name": "Maria", "avatar": ""}, headers=_bearer(token))
    assert _user(user_id).avatar is None
    assert _user(user_id).name == "Maria"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "A"},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 42},
        {"name": "Valid Name", "avatar": "not a url"},
        {"name": "Valid Name", "avatar": "javascript:alert(1)"},
    ],
)
def test_put_profile_validation_is_400_and_changes_nothing(client, make_tenant, make_user, body):
    tenant = make_tenant()
    user_id, token = make_user(tenant.company_id)
    response = client.put("/users/profile", json=body, headers=_bearer(token))
    assert response.status_code == 400
    assert response.get_json()["message"]
    user = _user(user_id)
    assert (user.name, user.avatar) == ("User", None)


def test_profile_needs_a_token(client, make_tenant):
    make_tenant()
    assert client.get("/users/profile").status_code == 401
    assert client.put("/users/profile", json={"name": "Someone"}).status_code == 401
    assert client.get("/users/profile", headers=_bearer("garbage")).status_code == 401


def test_profile_is_the_callers_own(client, make_tenant, make_user):
    first, second = make_tenant("One"), make_tenant("Two")
    _, token_a = make_user(first.company_id)
    user_b, _ = make_user(second.company_id)
    client.put("/users/profile", json={"name": "Changed"}, headers=_bearer(token_a))
    assert _user(user_b).name == "User"


def test_my_permissions_envelope(client, make_tenant, make_user):
    tenant = make_tenant()
    _, token = make_user(tenant.company_id, role="Employee")
    response = client.get("/users/me/permissions", headers=_bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert body["data"] == sorted(DEFAULT_ROLES["Employee"][1])


def test_my_balance_is_bare(client, make_tenant, make_user):
    from app.features.wallets.service import get_balances

    tenant = make_tenant()
    user_id, token = make_user(tenant.company_id)
    response = client.get("/users/me/get-my-balance", headers=_bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"complimentBalance", "redeemableBalance"}
    with db.session_scope() as session:
        assert (body["complimentBalance"], body["redeemableBalance"]) == get_balances(session, user_id)
    assert client.get("/users/me/get-my-balance").status_code == 401


def test_roles_me(client, make_tenant, make_user):
    tenant = make_tenant()
    response = client.get("/admin/roles/me", headers=tenant.headers())
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    roles = body["data"]["roles"]
    assert [r["name"] for r in roles] == ["Company Admin"]
    assert set(roles[0]) == {"id", "name", "description"}
    assert body["data"]["permissions"] == sorted(DEFAULT_ROLES["Company Admin"][1])


def test_roles_me_needs_roles_read(client, make_tenant, make_user):
    tenant = make_tenant()
    _, token = make_user(tenant.company_id, role="Employee")
    response = client.get("/admin/roles/me", headers=_bearer(token))
    assert response.status_code == 403
    assert response.get_json()["message"]
