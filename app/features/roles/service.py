"""Roles of a company, their permissions and who holds them. Every query is scoped by company;
a role or user of another company is "not found". Functions never commit; each mutation writes
its audit entry in the caller's transaction.

A caller can only hand out permissions they hold themselves (creating, editing or assigning a
role), so a company admin cannot mint a role with `admin:manage_system` and take it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.api import page_fields
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.features.audit import service as audit
from app.features.identity.authority import require_authority_over
from app.features.identity.catalogue import PERMISSIONS
from app.features.identity.models import Permission, Role, User, UserRole, role_permissions
from app.features.identity.service import sync_permission_catalogue


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


def _role_item(role: Role, users_count: int, permissions_count: int) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "companyId": role.company_id,
        "usersCount": int(users_count),
        "permissionsCount": int(permissions_count),
        "createdAt": role.created_at,
        "updatedAt": role.updated_at,
    }


def _page(total: int, page: int, limit: int) -> dict[str, Any]:
    return {
        **page_fields(total, page, limit),
        "pagination": {"total": total, "page": page, "limit": limit, "hasNextPage": page * limit < total},
    }


def list_roles(
    session: Session, company_id: str, page: int, limit: int, search: str | None
) -> dict[str, Any]:
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
    return {"success": True, "data": [_role_item(*r) for r in rows], **_page(total, page, limit)}


def get_role(session: Session, company_id: str, role_id: str, *, lock: bool = False) -> Role:
    query = select(Role).where(Role.id == role_id, Role.company_id == company_id)
    if lock:
        query = query.with_for_update()
    role = session.scalars(query).first()
    if role is None:
        raise _role_not_found()
    return role


def role_with_counts(session: Session, company_id: str, role_id: str) -> dict[str, Any]:
    row = session.execute(
        select(Role, _users_count(), _permissions_count()).where(
            Role.id == role_id, Role.company_id == company_id
        )
    ).first()
    if row is None:
        raise _role_not_found()
    return _role_item(*row)


def _role_permissions(session: Session, role_id: str) -> list[Permission]:
    return list(
        session.scalars(
            select(Permission)
            .join(role_permissions, role_permissions.c.permission_id == Permission.id)
            .where(role_permissions.c.role_id == role_id)
            .order_by(Permission.category, Permission.name)
        )
    )


def role_detail(session: Session, company_id: str, role_id: str) -> dict[str, Any]:
    item = role_with_counts(session, company_id, role_id)
    item["permissions"] = [
        {"id": p.id, "name": p.name, "description": p.description, "category": p.category}
        for p in _role_permissions(session, role_id)
    ]
    item["users"] = [
        {"id": u.id, "name": u.name, "email": u.email, "avatar": u.avatar}
        for u in session.scalars(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role_id == role_id, User.company_id == company_id)
            .order_by(User.name, User.id)
        )
    ]
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
) -> dict[str, Any]:
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
) -> dict[str, Any]:
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


def _categories(perms: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for perm in perms:
        grouped.setdefault(perm["category"], []).append(perm)
    return [{"category": c, "permissions": grouped[c]} for c in sorted(grouped)]


def role_permission_categories(session: Session, company_id: str, role_id: str) -> dict[str, Any]:
    role = get_role(session, company_id, role_id)
    perms = [
        {"id": p.id, "name": p.name, "category": p.category} for p in _role_permissions(session, role.id)
    ]
    return {"roleId": role.id, "categories": _categories(perms)}


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
) -> dict[str, Any]:
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
    return {"roleId": role.id, "addedPermissions": added, "totalPermissions": len(have) + len(added)}


def remove_permissions(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    names: list[str],
) -> dict[str, Any]:
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
    return {"roleId": role.id, "removedPermissions": removed, "totalPermissions": len(have) - len(removed)}


def replace_permissions(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    names: list[str],
) -> dict[str, Any]:
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
    return {"roleId": role.id, "permissions": sorted(ids)}


def _touch(session: Session, role: Role) -> None:
    role.updated_at = func.now()  # type: ignore[assignment]
    session.flush()
    session.refresh(role, ["updated_at"])


# --- the catalogue ---------------------------------------------------------------------------


def catalogue_info(session: Session) -> dict[str, Any]:
    rows = session.scalars(select(Permission).order_by(Permission.category, Permission.name)).all()
    perms = [{"name": p.name, "description": p.description, "category": p.category} for p in rows]
    return {"categories": _categories(perms), "total": len(perms)}


def catalogue_with_usage(session: Session, company_id: str) -> dict[str, Any]:
    """Every permission, `inUse` when some role of the company holds it (one GROUP BY)."""
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
    ).all()
    perms = [
        {
            "id": f"perm_{p.name}",
            "name": p.name,
            "description": p.description,
            "category": p.category,
            "inUse": bool(in_use),
        }
        for p, in_use in rows
    ]
    return {"categories": _categories(perms), "total": len(perms)}


def catalogue_categories(session: Session) -> dict[str, Any]:
    names = sorted(set(session.scalars(select(Permission.category))))
    return {"categories": names, "total": len(names)}


# --- who holds which role ----------------------------------------------------------------------


def assign_role(
    session: Session,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    role_id: str,
    user_ids: list[str],
) -> dict[str, Any]:
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
    failed = [{"userId": u, "reason": "Role is already assigned to user"} for u in wanted if u in holders]
    return {
        "successCount": len(new),
        "failedCount": len(failed),
        "failedAssignments": failed,
        "summary": f"{len(new)} user(s) assigned to role {role.name}, {len(failed)} failed",
    }


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


def assignable_users(session: Session, company_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(User)
        .where(User.company_id == company_id, User.is_active.is_(True))
        .order_by(User.name, User.id)
    )
    return [{"id": u.id, "name": u.name, "email": u.email, "avatar": u.avatar} for u in rows]


def roles_of_user(session: Session, company_id: str, user_id: str) -> dict[str, Any]:
    if session.scalar(select(User.id).where(User.id == user_id, User.company_id == company_id)) is None:
        raise _user_not_found()
    roles = session.scalars(
        select(Role)
        .join(UserRole, UserRole.role_id == Role.id)
        .where(UserRole.user_id == user_id, Role.company_id == company_id)
        .order_by(Role.name)
    ).all()
    items = [
        {
            "id": r.id,
            "name": r.name,
            "description": r.description,
            "companyId": r.company_id,
            "createdAt": r.created_at,
            "updatedAt": r.updated_at,
        }
        for r in roles
    ]
    return {"userId": user_id, "roles": items, "total": len(items)}


def users_of_role(session: Session, company_id: str, role_id: str, page: int, limit: int) -> dict[str, Any]:
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
    data = [{"id": u.id, "name": u.name, "email": u.email, "avatar": u.avatar} for u in rows]
    page_info = _page(total, page, limit)
    page_info.pop("pagination")
    return {"success": True, "data": data, **page_info}
