"""Nobody manages a user above them (issue 9, item 1): one rule for every user-management route.

"Above" means: the target holds a permission the caller lacks. The matrix runs every default role
against every default role ranked above it, through every user-management action; each answer is
403 and nothing changes. Refusals by callers who hold the route's permission are audit-logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app import db
from app.features.audit.models import AuditLog
from app.features.auth.models import PasswordSetupToken
from app.features.identity.catalogue import DEFAULT_ROLES
from app.features.identity.models import Role, User, UserRole

RANKED = list(DEFAULT_ROLES)  # Super Admin, Company Admin, HR Manager, Team Lead, Employee


def _role_id(company_id: str, name: str) -> str:
    with db.session_scope() as session:
        return session.scalars(select(Role.id).where(Role.company_id == company_id, Role.name == name)).one()


def _give_role(user_id: str, company_id: str, name: str) -> None:
    with db.session_scope() as session:
        session.add(UserRole(user_id=user_id, role_id=_role_id(company_id, name)))


def _snapshot(user_id: str) -> tuple[Any, ...]:
    with db.session_scope() as session:
        user = session.get_one(User, user_id)
        roles = sorted(session.scalars(select(UserRole.role_id).where(UserRole.user_id == user_id)))
        tokens = session.scalar(
            select(func.count()).select_from(PasswordSetupToken).where(PasswordSetupToken.user_id == user_id)
        )
        return user.name, user.email, user.is_active, tuple(roles), tokens


def _actions(company_id: str, target_id: str, target_role: str) -> list[tuple[str, str, Any]]:
    """Every user-management action, aimed at `target_id` (who holds `target_role` and Employee)."""
    employee_role = _role_id(company_id, "Employee")
    return [
        ("patch", f"/admin/users/{target_id}", {"name": "Renamed"}),
        ("patch", f"/admin/users/{target_id}", {"email": "attacker@acme.com"}),
        ("patch", f"/admin/users/{target_id}", {"isActive": False}),
        ("delete", f"/admin/users/{target_id}", None),
        ("put", f"/admin/users/{target_id}/reset-password", None),
        ("post", "/admin/users/bulk/actions", {"userIds": [target_id], "action": "deactivate"}),
        ("post", "/admin/users/bulk/actions", {"userIds": [target_id], "action": "activate"}),
        ("post", f"/admin/users/{target_id}/send-welcome-email", None),
        ("post", "/admin/users/send-welcome-emails-bulk", {"userIds": [target_id]}),
        ("delete", f"/admin/roles/users/{target_id}/roles/{employee_role}", None),
        (
            "post",
            "/admin/roles/assign-role",
            {"roleId": _role_id(company_id, "Team Lead"), "userIds": [target_id]},
        ),
        (
            "delete",
            f"/admin/roles/{_role_id(company_id, target_role)}/permissions",
            {"permissionNames": ["praise:send"]},
        ),
    ]


@pytest.fixture
def company(make_tenant: Callable[..., Any]) -> Any:
    return make_tenant("Acme", super_admin=True)


def test_every_role_is_refused_every_action_on_every_role_above_it(client, company, make_user):
    users: dict[str, tuple[str, str]] = {}
    for name in RANKED:
        user_id, token = make_user(
            company.company_id, role=name, email=f"{name.replace(' ', '.').lower()}@acme.com"
        )
        if name != "Employee":
            _give_role(
                user_id, company.company_id, "Employee"
            )  # so "remove Employee" has something to remove
        users[name] = (user_id, token)

    refused = 0
    for rank, caller_role in enumerate(RANKED):
        _, caller_token = users[caller_role]
        for target_role in RANKED[:rank]:  # every role above the caller's
            target_id, _ = users[target_role]
            before = _snapshot(target_id)
            for method, path, body in _actions(company.company_id, target_id, target_role):
                response = getattr(client, method)(path, json=body, headers=company.headers(caller_token))
                assert response.status_code == 403, (caller_role, target_role, method, path, response.json)
                assert response.json["error"]["code"] in ("TARGET_OUTRANKS_CALLER", "INSUFFICIENT_PERMISSION")
                assert response.json["message"]
                refused += 1
            assert _snapshot(target_id) == before, (caller_role, target_role)
    assert refused == 10 * 12  # 4 + 3 + 2 + 1 pairs, 12 actions each

    # The roles that may manage users at all were refused by the rank rule, and it was audit-logged.
    with db.session_scope() as session:
        entries = session.scalars(select(AuditLog).where(AuditLog.action == "access.refused")).all()
    attempted = {(e.actor_id, e.changes["attempted"]) for e in entries}
    hr_id = users["HR Manager"][0]
    assert (hr_id, "user.reset_password") in attempted
    assert (hr_id, "user.update") in attempted
    assert (users["Company Admin"][0], "role.permissions_remove") in attempted
    assert all(e.company_id == company.company_id for e in entries)
    assert all(e.changes["userIds"] and e.changes["permissions"] for e in entries)


def test_the_takeover_chain_fails_at_its_first_step(client, company, make_user):
    """An HR Manager asks for the Super Admin's reset link (to set a password and log in as them):
    refused, and no link exists. Changing the Super Admin's email (to receive the next link) and
    deactivating them are refused too."""
    _, hr_token = make_user(company.company_id, role="HR Manager")
    hr = company.headers(hr_token)
    reset = client.put(f"/admin/users/{company.admin_id}/reset-password", headers=hr)
    assert reset.status_code == 403 and reset.json["error"]["code"] == "TARGET_OUTRANKS_CALLER"
    assert "ticketUrl" not in reset.json
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PasswordSetupToken)) == 0
    assert (
        client.patch(
            f"/admin/users/{company.admin_id}", json={"email": "hr@acme.com"}, headers=hr
        ).status_code
        == 403
    )
    assert client.delete(f"/admin/users/{company.admin_id}", headers=hr).status_code == 403
    with db.session_scope() as session:
        admin = session.get_one(User, company.admin_id)
        assert admin.is_active and admin.email.startswith("admin-")


def test_equals_and_those_below_can_still_be_managed(client, company, make_user):
    hr_id, hr_token = make_user(company.company_id, role="HR Manager")
    other_hr, _ = make_user(company.company_id, role="HR Manager")
    employee, _ = make_user(company.company_id, role="Employee")
    hr = company.headers(hr_token)
    for target in (other_hr, employee):
        assert client.patch(f"/admin/users/{target}", json={"name": "Renamed"}, headers=hr).status_code == 200
        assert client.put(f"/admin/users/{target}/reset-password", headers=hr).status_code == 200
    assert client.put(f"/admin/users/{hr_id}/reset-password", headers=hr).status_code == 200  # oneself
    # The Super Admin is above everyone, so may manage the Company Admin.
    admin_id, _ = make_user(company.company_id, role="Company Admin")
    assert client.put(f"/admin/users/{admin_id}/reset-password", headers=company.headers()).status_code == 200


def test_bulk_actions_change_nothing_when_one_target_is_above(client, company, make_user):
    _, hr_token = make_user(company.company_id, role="HR Manager")
    employee, _ = make_user(company.company_id, role="Employee")
    response = client.post(
        "/admin/users/bulk/actions",
        json={"userIds": [employee, company.admin_id], "action": "deactivate"},
        headers=company.headers(hr_token),
    )
    assert response.status_code == 403
    assert response.json["error"]["details"]["userIds"] == [company.admin_id]
    with db.session_scope() as session:
        assert session.get_one(User, employee).is_active


def test_default_roles_are_found_by_key_and_cannot_be_deleted(client, make_tenant):
    tenant = make_tenant()
    h = tenant.headers()
    employee_role = _role_id(tenant.company_id, "Employee")
    renamed = client.patch(f"/admin/roles/{employee_role}", json={"name": "Colaborador"}, headers=h)
    assert renamed.status_code == 200, renamed.json
    created = client.post("/admin/users", json={"name": "Bia Lima", "email": "bia@example.com"}, headers=h)
    assert created.status_code == 201, created.json
    with db.session_scope() as session:
        roles = session.scalars(
            select(Role.name)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == created.json["id"])
        ).all()
    assert roles == ["Colaborador"]

    for name in RANKED:
        role_id = _role_id(tenant.company_id, "Colaborador" if name == "Employee" else name)
        response = client.delete(f"/admin/roles/{role_id}", headers=h)
        assert response.status_code == 409 and response.json["error"]["code"] == "ROLE_IS_DEFAULT", name
    custom = client.post("/admin/roles", json={"name": "Squad", "permissionNames": []}, headers=h)
    assert client.delete(f"/admin/roles/{custom.json['data']['id']}", headers=h).status_code == 200
