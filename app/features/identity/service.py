"""Identity and tenancy: companies' default roles, role assignment and permission look-ups.

Creating companies and users (each user with a wallet) is the onboarding flow's
(`app/features/users/onboarding.py`), which calls into this module and into wallets."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.errors import Conflict, Invalid, NotFound
from app.features.identity.catalogue import DEFAULT_ROLES, PERMISSIONS, ROLE_KEYS, category_of
from app.features.identity.models import Company, Permission, Role, User, UserRole, role_permissions


def sync_permission_catalogue(session: Session) -> dict[str, int]:
    """Make the permissions table match the catalogue; returns name -> id."""
    rows = [{"name": n, "description": d, "category": category_of(n)} for n, d in PERMISSIONS.items()]
    stmt = insert(Permission).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Permission.name],
            set_={"description": stmt.excluded.description, "category": stmt.excluded.category},
        )
    )
    return dict(session.execute(select(Permission.name, Permission.id)).tuples().all())


def create_default_roles(session: Session, company: Company) -> dict[str, Role]:
    permission_ids = sync_permission_catalogue(session)
    roles: dict[str, Role] = {}
    for name, (description, permissions) in DEFAULT_ROLES.items():
        role = Role(company_id=company.id, name=name, description=description, key=ROLE_KEYS[name])
        session.add(role)
        session.flush()
        session.execute(
            role_permissions.insert(),
            [{"role_id": role.id, "permission_id": permission_ids[p]} for p in sorted(permissions)],
        )
        roles[name] = role
    return roles


def default_role_id(session: Session, company_id: str, key: str) -> str:
    """The id of a company's default role by its stable key (catalogue.ROLE_KEYS), whatever an
    admin renamed it to. Conflict when the company lacks it (it cannot be deleted, so only data
    written outside the services gets here)."""
    role_id = session.scalar(select(Role.id).where(Role.company_id == company_id, Role.key == key))
    if role_id is None:
        raise Conflict(f"The company has no default role {key!r}", "DEFAULT_ROLE_MISSING", {"key": key})
    return role_id


def assign_role(session: Session, user: User, role_name: str) -> None:
    """Give `user` a role: a default role's catalogue name is looked up by its key (so a renamed
    default still works), any other name by name."""
    key = ROLE_KEYS.get(role_name)
    if key is not None:
        role_id = default_role_id(session, user.company_id, key)
    else:
        role_id = session.scalars(
            select(Role.id).where(Role.company_id == user.company_id, Role.name == role_name)
        ).one()
    session.add(UserRole(user_id=user.id, role_id=role_id))
    session.flush()


def permissions_of(session: Session, user_id: str) -> set[str]:
    rows = session.scalars(
        select(Permission.name)
        .join(role_permissions, role_permissions.c.permission_id == Permission.id)
        .join(UserRole, UserRole.role_id == role_permissions.c.role_id)
        .where(UserRole.user_id == user_id)
        .distinct()
    )
    return set(rows)


def permissions_by_user(session: Session, company_id: str, user_ids: list[str]) -> dict[str, set[str]]:
    """user id -> the permissions held by each of the company's users in `user_ids` (users of
    other companies and users holding none are absent), in one query."""
    rows = session.execute(
        select(UserRole.user_id, Permission.name)
        .join(User, User.id == UserRole.user_id)
        .join(role_permissions, role_permissions.c.role_id == UserRole.role_id)
        .join(Permission, Permission.id == role_permissions.c.permission_id)
        .where(UserRole.user_id.in_(user_ids), User.company_id == company_id)
        .distinct()
    ).tuples()
    held: dict[str, set[str]] = {}
    for user_id, name in rows:
        held.setdefault(user_id, set()).add(name)
    return held


def active_user_with_permissions(session: Session, subject: str) -> tuple[User, set[str]] | None:
    """The active user a token's `sub` names and the permissions they hold, in one query (every
    authenticated request starts here)."""
    held = (
        select(func.array_agg(Permission.name.distinct()))
        .select_from(Permission)
        .join(role_permissions, role_permissions.c.permission_id == Permission.id)
        .join(UserRole, UserRole.role_id == role_permissions.c.role_id)
        .where(UserRole.user_id == User.id)
        .scalar_subquery()
    )
    row = session.execute(
        select(User, held)
        .join(Company, Company.id == User.company_id)
        .where((User.id == subject) | (User.auth_user_id == subject))
        .where(User.is_active.is_(True), Company.is_active.is_(True))
        .limit(1)
    ).first()
    return None if row is None else (row[0], set(row[1] or ()))


def find_active_user_by_subject(session: Session, subject: str) -> User | None:
    """A token's `sub` is our user id (local tokens) or the Supabase auth user id."""
    return session.scalars(
        select(User)
        .join(Company, Company.id == User.company_id)
        .where((User.id == subject) | (User.auth_user_id == subject))
        .where(User.is_active.is_(True), Company.is_active.is_(True))
    ).first()


PLANS = ("ESSENTIAL", "PROFESSIONAL")


def set_plan(session: Session, company_id: str, plan: str) -> Company:
    """Change a company's plan (platform operators). The plan is read per request, so the change
    applies to the next request everywhere (no cache to invalidate)."""
    value = plan.strip().upper()
    if value not in PLANS:
        raise Invalid(f"Unknown plan {plan!r}: use {' or '.join(PLANS)}")
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("Company not found")
    company.plan = value
    session.flush()
    return company
