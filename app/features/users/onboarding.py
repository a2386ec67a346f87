"""Onboarding, a flow across identity and wallets: every path that creates users comes through
here, so each new user gets its role and a wallet starting at the company's weekly allowance (with
the ledger row that explains it).

- `create_company`: a company, its default roles and its first user (the `scripts`/CLI path);
- `create_user`: one user (the admin panel, the demo seed);
- `create_users`: many users at once, set-based (the CSV import).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Select, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import db
from app.db import utcnow
from app.features.identity import service as identity
from app.features.identity.catalogue import CREATOR_ROLE, EMPLOYEE_KEY, EMPLOYEE_ROLE, SUPER_ADMIN_ROLE
from app.features.identity.models import Company, User, UserRole
from app.features.wallets import service as wallets

# The columns `create_users` reads from its `people` select, in this order.
PEOPLE_COLUMNS = ("id", "email", "name", "department_id", "job_title_id")


def create_company(
    session: Session,
    name: str,
    admin_email: str,
    admin_name: str,
    timezone: str | None = None,
    super_admin: bool = False,
) -> tuple[Company, User]:
    """A company with its default roles and a first user who is its Company Admin (everything
    within the company), or with `super_admin` a Super Admin (a platform operator)."""
    company = Company(name=name)
    if timezone:
        company.timezone = timezone
    session.add(company)
    session.flush()
    identity.create_default_roles(session, company)
    admin = create_user(
        session, company.id, admin_email, admin_name, role=SUPER_ADMIN_ROLE if super_admin else CREATOR_ROLE
    )
    return company, admin


def create_user(
    session: Session,
    company_id: str,
    email: str,
    name: str,
    *,
    role: str | None = EMPLOYEE_ROLE,
    avatar: str | None = None,
    department_id: str | None = None,
    job_title_id: str | None = None,
    password_hash: str | None = None,
    now: datetime | None = None,
) -> User:
    """One user, with `role` and a wallet (flushed, not committed)."""
    user = User(
        company_id=company_id,
        email=email.strip().lower(),
        name=name,
        avatar=avatar,
        department_id=department_id,
        job_title_id=job_title_id,
        password_hash=password_hash,
    )
    session.add(user)
    session.flush()
    if role:
        identity.assign_role(session, user, role)
    wallets.create_wallet(session, user, now)
    return user


def create_users(
    session: Session,
    company_id: str,
    people: Select[str, str, str, str | None, str | None],
    expected: int,
    *,
    now: datetime | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> int:
    """Insert the users `people` selects (PEOPLE_COLUMNS: new ids, lowercased emails, names,
    department and job title ids), each with the Employee role and a starting wallet: a handful
    of set-based statements whatever the number. Returns how many users were inserted; when an
    email was taken meanwhile that is fewer than `expected`, and nothing else is written (roll
    back to drop the others). `step` is told "users", "roles" and "wallets" as each is written."""
    moment = now or utcnow()
    ids = people.with_only_columns(people.selected_columns[0])
    people = people.add_columns(literal(company_id), literal(True), literal(moment), literal(moment))
    inserted = db.affected(
        session.execute(
            insert(User)
            .from_select([*PEOPLE_COLUMNS, "company_id", "is_active", "created_at", "updated_at"], people)
            .on_conflict_do_nothing(index_elements=["company_id", "email"])
        )
    )
    step("users")
    if inserted != expected:
        return inserted
    role_id = identity.default_role_id(session, company_id, EMPLOYEE_KEY)  # a renamed Employee still works
    session.execute(
        insert(UserRole).from_select(
            ["user_id", "role_id", "assigned_at"],
            select(ids.subquery().c[0], literal(role_id), literal(moment)),
        )
    )
    step("roles")
    wallets.create_starting_wallets(session, company_id, ids, moment)
    step("wallets")
    return inserted
