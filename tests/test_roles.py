"""/admin/roles (contract §8): the roles screens' calls replayed, static routes before parametric
ones, 409s, no privilege escalation, tenancy, permissions and the audit trail."""

from __future__ import annotations

from sqlalchemy import select

from app import db
from app.features.audit.models import AuditLog
from app.features.identity.models import Role

ROLE_ITEM = {
    "id",
    "name",
    "description",
    "companyId",
    "usersCount",
    "permissionsCount",
    "createdAt",
    "updatedAt",
}
B = "/admin/roles"


def test_roles_screens_replay(client, make_tenant, make_user):
    tenant = make_tenant()
    h = tenant.headers()
    listed = client.get(f"{B}?page=1&limit=10", headers=h)
    assert listed.status_code == 200
    body = listed.json
    assert body["success"] is True and (body["totalCount"], body["pageCount"], body["currentPage"]) == (
        5,
        1,
        1,
    )
    assert body["pagination"] == {"total": 5, "page": 1, "limit": 10, "hasNextPage": False}
    assert all(set(r) == ROLE_ITEM for r in body["data"])
    assert client.get(f"{B}?search=admin", headers=h).json["totalCount"] == 2

    info = client.get(f"{B}/system/permissions-info", headers=h).json
    assert info["success"] and info["data"]["total"] >= 40
    assert set(info["data"]["categories"][0]["permissions"][0]) == {"name", "description", "category"}

    created = client.post(
        B,
        json={"name": "Reviewers", "description": "Review stuff", "permissionNames": ["users:read"]},
        headers=h,
    )
    assert created.status_code == 201, created.json
    role = created.json["data"]
    assert set(role) == ROLE_ITEM and role["description"] == "Review stuff"
    assert (role["usersCount"], role["permissionsCount"]) == (0, 1)
    assert (
        client.post(B, json={"name": "reviewers"}, headers=h).json["error"]["code"] == "ROLE_ALREADY_EXISTS"
    )
    bad = client.post(B, json={"name": "X", "permissionNames": ["nope:nope"]}, headers=h)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "PERMISSION_NOT_FOUND"

    rid = role["id"]
    patched = client.patch(f"{B}/{rid}", json={"description": "Reviews"}, headers=h).json
    assert patched["data"]["id"] == rid and patched["data"]["description"] == "Reviews"

    added = client.post(
        f"{B}/{rid}/permissions", json={"permissionNames": ["roles:read", "users:read"]}, headers=h
    )
    assert added.json["data"] == {"roleId": rid, "addedPermissions": ["roles:read"], "totalPermissions": 2}
    perms = client.get(f"{B}/{rid}/permissions", headers=h).json["data"]
    assert perms["roleId"] == rid
    assert {c["category"] for c in perms["categories"]} == {"roles", "users"}
    assert set(perms["categories"][0]["permissions"][0]) == {"id", "name", "category"}
    removed = client.delete(f"{B}/{rid}/permissions", json={"permissionNames": ["roles:read"]}, headers=h)
    assert removed.json["data"] == {
        "roleId": rid,
        "removedPermissions": ["roles:read"],
        "totalPermissions": 1,
    }
    replaced = client.put(f"{B}/{rid}/permissions", json={"permissionNames": ["praise:send"]}, headers=h)
    assert replaced.json["data"] == {"roleId": rid, "permissions": ["praise:send"]}

    user_id, _ = make_user(tenant.company_id)
    pickers = client.get(f"{B}/users/list", headers=h).json["data"]
    assert {p["id"] for p in pickers} == {tenant.admin_id, user_id}
    assert set(pickers[0]) == {"id", "name", "email", "avatar"}
    assigned = client.post(f"{B}/assign-role", json={"roleId": rid, "userIds": [user_id]}, headers=h).json[
        "data"
    ]
    assert (assigned["successCount"], assigned["failedCount"]) == (1, 0) and assigned["summary"]
    again = client.post(f"{B}/assign-role", json={"roleId": rid, "userIds": [user_id]}, headers=h).json[
        "data"
    ]
    assert again["failedAssignments"] == [{"userId": user_id, "reason": "Role is already assigned to user"}]

    detail = client.get(f"{B}/{rid}", headers=h).json["data"]
    assert set(detail) == ROLE_ITEM | {"permissions", "users"}
    assert detail["usersCount"] == 1 and detail["users"][0]["id"] == user_id
    assert set(detail["permissions"][0]) == {"id", "name", "description", "category"}
    holders = client.get(f"{B}/{rid}/users?page=1&limit=10", headers=h).json
    assert (holders["totalCount"], holders["pageCount"], holders["currentPage"]) == (1, 1, 1)
    user_roles = client.get(f"{B}/users/{user_id}/roles", headers=h).json["data"]
    assert user_roles["userId"] == user_id and user_roles["total"] == 2

    busy = client.delete(f"{B}/{rid}", headers=h)
    assert busy.status_code == 409 and busy.json["error"]["code"] == "ROLE_HAS_USERS"
    assert busy.json["error"]["details"] == {"usersCount": 1} and busy.json["message"]
    assert client.delete(f"{B}/users/{user_id}/roles/{rid}", headers=h).json == {
        "success": True, "message": "Role removed from user",
    }  # fmt: skip
    assert client.delete(f"{B}/{rid}", headers=h).json["success"] is True
    assert client.get(f"{B}/{rid}", headers=h).status_code == 404

    cats = client.get(f"{B}/system/permissions/categories", headers=h).json["data"]
    assert "users" in cats["categories"] and cats["total"] == len(cats["categories"])
    system = client.get(f"{B}/system/permissions", headers=h).json["data"]
    first = system["categories"][0]["permissions"][0]
    assert first["id"] == f"perm_{first['name']}" and isinstance(first["inUse"], bool)
    assert client.get(f"{B}/me", headers=h).status_code == 200  # owned by the users feature

    with db.session_scope() as session:
        actions = session.scalars(select(AuditLog.action).where(AuditLog.entity_id == rid)).all()
    assert set(actions) == {
        "role.create", "role.update", "role.permissions_add", "role.permissions_remove",
        "role.permissions_replace", "role.assign", "role.unassign", "role.delete",
    }  # fmt: skip
    log = client.get("/admin/audit-log?entityType=role&limit=100", headers=h)
    assert log.status_code == 200 and log.json["totalCount"] == len(actions)
    assert {"id", "actorId", "action", "entityType", "entityId", "changes", "createdAt"} <= set(
        log.json["data"][0]
    )


def test_no_escalation_tenancy_and_permissions(client, make_tenant, make_user):
    tenant, other = make_tenant(), make_tenant("Other")
    with db.session_scope() as session:
        theirs = session.scalars(select(Role.id).where(Role.company_id == other.company_id)).first()
    h = tenant.headers()
    for method, path, body in [
        ("get", f"{B}/{theirs}", None),
        ("patch", f"{B}/{theirs}", {"name": "Hacked"}),
        ("delete", f"{B}/{theirs}", None),
        ("get", f"{B}/{theirs}/permissions", None),
        ("post", f"{B}/{theirs}/permissions", {"permissionNames": ["users:read"]}),
        ("get", f"{B}/{theirs}/users", None),
        ("post", f"{B}/assign-role", {"roleId": theirs, "userIds": [tenant.admin_id]}),
        ("get", f"{B}/users/{other.admin_id}/roles", None),
        ("delete", f"{B}/users/{other.admin_id}/roles/{theirs}", None),
    ]:
        assert getattr(client, method)(path, json=body, headers=h).status_code == 404, (method, path)

    admin_id, admin_token = make_user(tenant.company_id, "Company Admin")
    ah = tenant.headers(admin_token)
    mint = client.post(B, json={"name": "God", "permissionNames": ["admin:manage_system"]}, headers=ah)
    assert mint.status_code == 403 and mint.json["error"]["code"] == "PERMISSION_ESCALATION"
    with db.session_scope() as session:
        super_admin = session.scalars(
            select(Role.id).where(Role.company_id == tenant.company_id, Role.name == "Super Admin")
        ).one()
    take = client.post(f"{B}/assign-role", json={"roleId": super_admin, "userIds": [admin_id]}, headers=ah)
    assert take.status_code == 403
    # The company's creator is its Company Admin too: it cannot make itself a platform operator.
    mine = {"roleId": super_admin, "userIds": [tenant.admin_id]}
    own = client.post(f"{B}/assign-role", json=mine, headers=h)
    assert own.status_code == 403 and own.json["error"]["code"] == "PERMISSION_ESCALATION"
    # The audit log is the company's own: its admins read it, an HR manager does not.
    assert client.get("/admin/audit-log", headers=ah).status_code == 200
    _, hr_token = make_user(tenant.company_id, "HR Manager")
    assert client.get("/admin/audit-log", headers=tenant.headers(hr_token)).status_code == 403

    _, employee = make_user(tenant.company_id)
    eh = tenant.headers(employee)
    for method, path, body in [
        ("get", B, None),
        ("post", B, {"name": "Nope"}),
        ("get", f"{B}/system/permissions-info", None),
        ("post", f"{B}/assign-role", {"roleId": super_admin, "userIds": [employee]}),
        ("delete", f"{B}/{super_admin}", None),
    ]:
        response = getattr(client, method)(path, json=body, headers=eh)
        assert response.status_code == 403 and response.json["message"], (method, path)


def test_a_company_creator_is_not_a_platform_operator(client, make_tenant):
    """`admin:manage_system` acts across companies, so creating a company must not grant it."""
    tenant, other = make_tenant(), make_tenant("Other")
    h = tenant.headers()
    roles = client.get(f"{B}/me", headers=h).json["data"]
    assert [r["name"] for r in roles["roles"]] == ["Company Admin"]
    assert "admin:manage_system" not in roles["permissions"]
    for method, path in [
        ("post", f"/wallets/reset-weekly-balance?companyId={other.company_id}"),
        ("post", "/wallets/reset-weekly-balance"),
        ("post", "/admin/cron/weekly-reset/run"),
        ("get", "/admin/cron-runs"),
    ]:
        assert getattr(client, method)(path, headers=h).status_code == 403, path
    operator = make_tenant("Platform", super_admin=True)
    assert client.get("/admin/cron-runs", headers=operator.headers()).status_code == 200
