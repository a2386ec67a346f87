"""Roles of a company, their permissions and who holds them. Every query is scoped by company;
a role or user of another company is "not found". Functions never commit; each mutation writes
its audit entry in the caller's transaction. They return rows and plain values; the contract's
shapes (`{success, data}`, camelCase, pages) are built by `schemas.py` and `views.py`.

A caller can only hand out permissions they hold themselves (creating, editing or assigning a
role), so a company admin cannot mint a role with `admin:manage_system` and take it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.features.audit import service as audit
from app.features.identity.catalogue import PERMISSIONS
from app.features.identity.models import Permission, Role, User, UserRole, role_permissions
from app.features.identity.service import sync_permission_catalogue
from app.features.roles.authority import require_authority_over


@dataclass(frozen=True)
class RoleInfo:
    """A role with how many users hold it and how many permissions it has."""

    id: str
    name: str
    description: str | None
    company_id: str
    users_count: int
    permissions_count: int
    created_at: datetime
    updated_at: datetime
    permissions: list[Permission] = field(default_factory=list)  # filled by role_detail
    users: list[User] = field(default_factory=list)  # filled by role_detail


@dataclass(frozen=True)
class PermissionChange:
    """What a change of a role's permissions did: the names added and removed, and what it holds now."""

    role_id: str
    added: list[str]
    removed: list[str]
    permissions: list[str]


@dataclass(frozen=True)
class Assignment:
    """The outcome of giving a role to users: who got it, and who already had it."""

    role_name: str
    assigned: list[str]
    already_held: list[str]


def _role_not_found() -> NotFound:
    return NotFound("Role not found", "ROLE_NOT_FOUND")


def _user_not_found() -> NotFound:
    return NotFound("User not found", "USER_NOT_FOUND")


def _users_count() -> Any:
    return (
        select(func.count())
        .select_from(UserRole)
        .where(UserRole.role_id == Role.id)
        .scalar_subquery()
        .label("users_count")
    )


def _permissions_count() -> Any:
    return (
        select(func.count())
        .select_from(role_permissions)
        .where(role_permissions.c.role_id == Role.id)
        .scalar_subquery()
        .label("permissions_count")
    )


def _role_info(role: Role, users_count: int, permissions_count: int) -> RoleInfo:
    return RoleInfo(
        id=role.id,
        name=role.name,
        description=role.description,
        company_id=role.company_id,
        users_count=int(users_count),
        permissions_count=int(permissions_count),
        created_at=role.created_at,
        updated_at=role.updated_at,
    )


def list_roles(
    session: Session, company_id: str, page: int, limit: int, search: str | None
) -> tuple[list[RoleInfo], int]:
    """One page of the company's roles by name, and how many match."""
    where = [Role.company_id == company_id]
    if search and search.strip():
        escaped = search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Role.name.ilike(f"%{escaped}%", escape="\\"))
    total = int(session.scalar(select(func.count()).select_from(Role).where(*where)) or 0)
    rows = session.execute(
        select(Role, _users_count(), _permissions_count())
        .where(*where)
        .order_by(Role.name, Role.id)
        .offset((page - 1) * limit)
        .limit(limit)
    ).all()
    return [_role_info(*r) for r in rows], total


def get_role(session: Session, company_id: str, role_id: str, *, lock: bool = False) -> Role:
    query = select(Role).where(Role.id == role_id, Role.company_id == company_id)
    if lock:
        query = query.with_for_update()
    role = session.scalars(query).first()
    if role is None:
        raise _role_not_found()
    return role


def role_with_counts(session: Session, company_id: str, role_id: str) -> RoleInfo:
    row = session.execute(
        select(Role, _users_count(), _permissions_count()).where(
            Role.id == role_id, Role.company_id == company_id
        )
    ).first()
    if row is None:
        raise _role_not_found()
    return _role_info(*row)


def _role_permissions(session: Session, role_id: str) -> list[Permission]:
    return list(
        session.scalars(
            select(Permission)
            .join(role_permissions, role_permissions.c.permission_id == Permission.id)
            .where(role_permissions.c.role_id == role_id)
            .order_by(Permission.category, Permission.name)
        )
    )


def role_detail(session: Session, company_id: str, role_id: str) -> RoleInfo:
    """The role with its permissions (by category, name) and its holders (by name)."""
    item = role_with_counts(session, company_id, role_id)
    users = session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_id == role_id, User.company_id == company_id)
        .order_by(User.name, User.id)
    )
    item.permissions.extend(_role_permissions(session, role_id))
    item.users.extend(users)
    return item


def _resolve(session: Session, names: Iterable[str]) -> dict[str, int]:
    """name -> permission id; 400 PERMISSION_NOT_FOUND for a name outside the catalogue."""
    wanted = list(dict.fromkeys(n.strip() for n in names))
    unknown = [n for n in wanted if n not in PERMISSIONS]
    if unknown:
        raise Invalid(
            f"Permission not found: {', '.join(unknown)}",
            "PERMISSION_NOT_FOUND",
            {"permissions": unknown},
        )
    if not wanted:
        return {}
    ids = dict(
        session.execute(select(Permission.name, Permission.id).where(Permission.name.in_(wanted)))
        .tuples()
        .all()
    )
    if len(ids) < len(wanted):  # catalogue not synced yet in this database
        ids = {n: i for n, i in sync_permission_catalogue(session).items() if n in wanted}
    return ids


def _forbid_escalation(granted: Iterable[str], caller_permissions: frozenset[str]) -> None:
    beyond = sorted(set(granted) - caller_permissions)
    if beyond:
        raise Forbidden(
            f"You cannot grant permissions you do not hold: {', '.join(beyond)}",
            "PERMISSION_ESCALATION",
            {"permissions": beyond},
        )


def _name_taken(session: Session, company_id: str, name: str, except_id: str | None = None) -> bool:
    query = select(Role.id).where(Role.company_id == company_id, func.lower(Role.name) == name.lower())
    if except_id:
        query = query.where(Role.id != except_id)
    return session.scalar(query) is not None


def _lock_company_roles(session: Session, company_id: str) -> None:
    """Serialise role-name changes of one company (the case-insensitive check sees every writer)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"roles:{company_id}"))))


def create_role(
    session: Session, company_id: str, actor_id: str, caller_permissions: frozenset[str], body: dict[str, Any]
) -> RoleInfo:
    name = body["name"].strip()
    ids = _resolve(session, body.get("permissionNames") or [])
    _forbid_escalation(ids, caller_permissions)
    _lock_company_roles(session, company_id)
    if _name_taken(session, company_id, name):
        raise Conflict("A role with this name already exists", "ROLE_ALREADY_EXISTS")
    role = Role(company_id=company_id, name=name, description=_description(body.get("description")))
    session.add(role)
    session.flush()
    if ids:
        session.execute(
            role_permissions.insert(), [{"role_id": role.id, "permission_id": i} for i in ids.values()]
        )
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="role.create",
        entity_type="role",
        entity_id=role.id,
        changes={"name": name, "description": role.description, "permissions": sorted(ids)},
    )
    return role_with_counts(session, company_id, role.id)


def _description(value: str | None) -> str | None:
    return (value or "").strip() or None


def update_role(
    session: Session, company_id: str, actor_id: str, role_id: str, body: dict[str, Any]
) -> RoleInfo:
    _lock_company_roles(session, company_id)
    role = get_role(session, company_id, role_id, lock=True)
    before = {"name": role.name, "description": role.description}
    if "name" in body:
        name = body["name"].strip()
        if _name_taken(session, company_id, name, except_id=role.id):
            raise Conflict("A role with this name already exists", "ROLE_ALREADY_EXISTS")
        role.name = name
    if "description" in body:
        role.description = _description(body["description"])
    session.flush()
    changes = audit.diff(before, {"name": role.name, "description": role.description})
    if changes:
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="role.update",
            entity_type="role",
            entity_id=role.id,
            changes=changes,
        )
    return role_with_counts(session, company_id, role.id)


def delete_role(session: Session, company_id: str, actor_id: str, role_id: str) -> None:
    role = get_role(session, company_id, role_id, lock=True)  # assignments wait for us, and v.v.
    if role.key is not None:
        raise Conflict(
            "This is a default role and cannot be deleted; rename it or change its permissions instead",
            "ROLE_IS_DEFAULT",
            {"key": role.key},
        )
    users = int(
        session.scalar(select(func.count()).select_from(UserRole).where(UserRole.role_id == role.id)) or 0
    )
    if users:
        raise Conflict(
            f"The role is assigned to {users} user(s); remove them first",
            "ROLE_HAS_USERS",
            {"usersCount": users},
        )
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="role.delete",
        entity_type="role",
        entity_id=role.id,
        changes={"name": role.name},
    )
    session.delete(role)
    session.flush()


def permissions_of_role(session: Session, company_id: str, role_id: str) -> list[Permission]:
    """The role's permissions, by category and name."""
    role = get_role(session, company_id, role_id)
    return _role_permissions(session, role.id)


def _permission_names(session: Session, role_id: str) -> set[str]:
    return {p.name for p in _role_permissions(session, role_id)}


def _require_authority_over_holders(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role: Role,
    action: str,
) -> None:
    """Changing a role's permissions changes every holder: refused when a holder is above the caller."""
    holders = list(session.scalars(select(UserRole.user_id).where(UserRole.role_id == role.id)))
    require_authority_over(
        session,
        company_id=company_id,
        actor_id=actor_id,
        caller_permissions=caller_permissions,
        user_ids=holders,
        action=action,
    )


def add_permissions(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    names: list[str],
) -> PermissionChange:
    role = get_role(session, company_id, role_id, lock=True)
    _require_authority_over_holders(
        session, company_id, actor_id, caller_permissions, role, "role.permissions_add"
    )
    ids = _resolve(session, names)
    _forbid_escalation(ids, caller_permissions)
    have = _permission_names(session, role.id)
    added = sorted(n for n in ids if n not in have)
    if added:
        session.execute(
            insert(role_permissions)
            .values([{"role_id": role.id, "permission_id": ids[n]} for n in added])
            .on_conflict_do_nothing()
        )
        _touch(session, role)
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="role.permissions_add",
            entity_type="role",
            entity_id=role.id,
            changes={"added": added},
        )
    return PermissionChange(role.id, added, [], sorted(have | set(added)))


def remove_permissions(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    names: list[str],
) -> PermissionChange:
    role = get_role(session, company_id, role_id, lock=True)
    _require_authority_over_holders(
        session, company_id, actor_id, caller_permissions, role, "role.permissions_remove"
    )
    ids = _resolve(session, names)
    _forbid_escalation(ids, caller_permissions)  # taking away what you lack is also not yours to do
    have = _permission_names(session, role.id)
    removed = sorted(n for n in ids if n in have)
    if removed:
        session.execute(
            delete(role_permissions).where(
                role_permissions.c.role_id == role.id,
                role_permissions.c.permission_id.in_([ids[n] for n in removed]),
            )
        )
        _touch(session, role)
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="role.permissions_remove",
            entity_type="role",
            entity_id=role.id,
            changes={"removed": removed},
        )
    return PermissionChange(role.id, [], removed, sorted(have - set(removed)))


def replace_permissions(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    names: list[str],
) -> PermissionChange:
    role = get_role(session, company_id, role_id, lock=True)
    _require_authority_over_holders(
        session, company_id, actor_id, caller_permissions, role, "role.permissions_replace"
    )
    ids = _resolve(session, names)
    have = _permission_names(session, role.id)
    added, removed = sorted(set(ids) - have), sorted(have - set(ids))
    _forbid_escalation([*added, *removed], caller_permissions)
    if added or removed:
        session.execute(delete(role_permissions).where(role_permissions.c.role_id == role.id))
        if ids:
            session.execute(
                role_permissions.insert(), [{"role_id": role.id, "permission_id": i} for i in ids.values()]
            )
        _touch(session, role)
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="role.permissions_replace",
            entity_type="role",
            entity_id=role.id,
            changes={"added": added, "removed": removed},
        )
    return PermissionChange(role.id, added, removed, sorted(ids))


def _touch(session: Session, role: Role) -> None:
    role.updated_at = func.now()
    session.flush()
    session.refresh(role, ["updated_at"])


# --- the catalogue ---------------------------------------------------------------------------


def catalogue(session: Session) -> list[Permission]:
    """Every permission, by category and name."""
    return list(session.scalars(select(Permission).order_by(Permission.category, Permission.name)))


def catalogue_with_usage(session: Session, company_id: str) -> list[tuple[Permission, bool]]:
    """Every permission, with whether some role of the company holds it (one GROUP BY)."""
    used = (
        select(role_permissions.c.permission_id)
        .join(Role, Role.id == role_permissions.c.role_id)
        .where(Role.company_id == company_id)
        .distinct()
        .subquery()
    )
    rows = session.execute(
        select(Permission, used.c.permission_id.is_not(None))
        .outerjoin(used, used.c.permission_id == Permission.id)
        .order_by(Permission.category, Permission.name)
    ).tuples()
    return [(permission, bool(in_use)) for permission, in_use in rows]


def catalogue_categories(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(Permission.category))))


# --- who holds which role ----------------------------------------------------------------------


def assign_role(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    user_ids: list[str],
) -> Assignment:
    role = get_role(session, company_id, role_id, lock=True)
    _forbid_escalation(_permission_names(session, role.id), caller_permissions)
    wanted = list(dict.fromkeys(user_ids))
    found = set(session.scalars(select(User.id).where(User.company_id == company_id, User.id.in_(wanted))))
    missing = [u for u in wanted if u not in found]
    if missing:
        raise NotFound("User not found in this company", "USER_NOT_FOUND", {"userIds": missing})
    require_authority_over(
        session,
        company_id=company_id,
        actor_id=actor_id,
        caller_permissions=caller_permissions,
        user_ids=wanted,
        action="role.assign",
    )
    holders = set(
        session.scalars(
            select(UserRole.user_id).where(UserRole.role_id == role.id, UserRole.user_id.in_(wanted))
        )
    )
    new = [u for u in wanted if u not in holders]
    if new:
        session.execute(
            insert(UserRole)
            .values([{"user_id": u, "role_id": role.id} for u in new])
            .on_conflict_do_nothing()
        )
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="role.assign",
            entity_type="role",
            entity_id=role.id,
            changes={"userIds": new},
        )
    return Assignment(role.name, new, [u for u in wanted if u in holders])


def unassign_role(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    user_id: str,
    role_id: str,
) -> None:
    role = get_role(session, company_id, role_id, lock=True)
    if session.scalar(select(User.id).where(User.id == user_id, User.company_id == company_id)) is None:
        raise _user_not_found()
    _forbid_escalation(_permission_names(session, role.id), caller_permissions)
    require_authority_over(
        session,
        company_id=company_id,
        actor_id=actor_id,
        caller_permissions=caller_permissions,
        user_ids=[user_id],
        action="role.unassign",
    )
    removed = session.execute(
        delete(UserRole)
        .where(UserRole.user_id == user_id, UserRole.role_id == role.id)
        .returning(UserRole.user_id)
    ).first()
    if removed is None:
        raise NotFound("The user does not hold this role", "ROLE_NOT_ASSIGNED")
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="role.unassign",
        entity_type="role",
        entity_id=role.id,
        changes={"userId": user_id},
    )


def assignable_users(session: Session, company_id: str) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.company_id == company_id, User.is_active.is_(True))
            .order_by(User.name, User.id)
        )
    )


def roles_of(session: Session, company_id: str, user_id: str) -> list[Role]:
    """The roles a user of the company holds, by name."""
    return list(
        session.scalars(
            select(Role)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id, Role.company_id == company_id)
            .order_by(Role.name)
        )
    )


def roles_of_user(session: Session, company_id: str, user_id: str) -> list[Role]:
    """`roles_of`, NotFound when the user is not the company's."""
    if session.scalar(select(User.id).where(User.id == user_id, User.company_id == company_id)) is None:
        raise _user_not_found()
    return roles_of(session, company_id, user_id)


def users_of_role(
    session: Session, company_id: str, role_id: str, page: int, limit: int
) -> tuple[list[User], int]:
    """One page of a role's holders by name, and how many there are."""
    role = get_role(session, company_id, role_id)
    where = [UserRole.role_id == role.id, User.company_id == company_id]
    total = int(
        session.scalar(
            select(func.count()).select_from(User).join(UserRole, UserRole.user_id == User.id).where(*where)
        )
        or 0
    )
    rows = session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(*where)
        .order_by(User.name, User.id)
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), total
