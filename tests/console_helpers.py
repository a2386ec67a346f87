"""People for the operator console tests: operators (with or without jobs:operate_queues) and a
company admin, each with a password, plus the console's login and CSRF plumbing for the test client."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from flask.testing import FlaskClient
from sqlalchemy import select

from app import db
from app.features.auth import service as auth_service
from app.features.identity.models import Permission, Role, User, UserRole, role_permissions
from app.features.ops import console
from tests.conftest import Tenant

PASSWORD = "console-pass-123"


@dataclass
class Person:
    user_id: str
    company_id: str
    email: str
    password: str = PASSWORD


def _set_password(user_id: str) -> User:
    with db.session_scope() as session:
        user = session.get_one(User, user_id)
        auth_service.set_password(session, user, PASSWORD)
        return user


def person_from(tenant: Tenant) -> Person:
    with db.session_scope() as session:
        email = session.get_one(User, tenant.admin_id).email
    _set_password(tenant.admin_id)
    return Person(tenant.admin_id, tenant.company_id, email)


def operator(make_tenant: Callable[..., Tenant]) -> Person:
    """A Super Admin: admin:manage_system and jobs:operate_queues."""
    return person_from(make_tenant("Ops", super_admin=True))


def company_admin(make_tenant: Callable[..., Tenant]) -> Person:
    return person_from(make_tenant("Acme"))


def read_only_operator(company_id: str) -> Person:
    """A user whose only role grants admin:manage_system (not jobs:operate_queues)."""
    email = f"observer-{secrets.token_hex(3)}@ops.example"
    with db.session_scope() as session:
        role = Role(company_id=company_id, name=f"Observer {secrets.token_hex(2)}", description="Watches")
        user = User(company_id=company_id, email=email, name="Observer")
        session.add_all([role, user])
        session.flush()
        permission_id = session.scalar(select(Permission.id).where(Permission.name == "admin:manage_system"))
        session.execute(role_permissions.insert().values(role_id=role.id, permission_id=permission_id))
        session.add(UserRole(user_id=user.id, role_id=role.id))
        session.flush()
        user_id = user.id
    _set_password(user_id)
    return Person(user_id, company_id, email)


def log_in(client: FlaskClient, person: Person, next_path: str = "/admin/rq/") -> str:
    """Log in through the form; returns the CSRF token the console handed out."""
    response = client.post(
        "/admin/rq/login", data={"email": person.email, "password": person.password, "next": next_path}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return csrf(client)


def csrf(client: FlaskClient) -> str:
    cookie = client.get_cookie(console.CSRF_COOKIE, path=console.PREFIX)
    assert cookie is not None
    return cookie.value
