"""Shapes of /admin/roles (contract §8): every answer is `{success, data}`. The functions at the
end build those bodies from what the service returns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime, page_fields
from app.features.identity.models import Permission, Role, User
from app.features.roles.service import Assignment, PermissionChange, RoleInfo

_PERMISSION_NAMES = fields.List(
    fields.String(validate=validate.Length(min=1, max=64)), required=True, validate=validate.Length(max=100)
)


class RolesQuery(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    search = fields.String(validate=validate.Length(max=100))


class PageQuery(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class RoleCreateBody(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(allow_none=True, validate=validate.Length(max=255))
    permissionNames = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=100)
    )

    @ma.validates("name")
    def _not_blank(self, value: str, **_: object) -> None:
        if not value.strip():
            raise ma.ValidationError("Name must not be blank.")


class RoleUpdateBody(BaseSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(allow_none=True, validate=validate.Length(max=255))

    @ma.validates("name")
    def _not_blank(self, value: str, **_: object) -> None:
        if not value.strip():
            raise ma.ValidationError("Name must not be blank.")


class PermissionNamesBody(BaseSchema):
    permissionNames = _PERMISSION_NAMES


class AssignRoleBody(BaseSchema):
    roleId = fields.String(required=True, validate=validate.Length(min=1, max=64))
    userIds = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=100),
    )


class RoleItemSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    companyId = fields.String()
    usersCount = fields.Integer()
    permissionsCount = fields.Integer()
    createdAt = UtcDateTime()
    updatedAt = UtcDateTime()


class RolePermissionSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    category = fields.String()


class RoleUserSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    avatar = fields.String(allow_none=True)


class RoleDetailSchema(RoleItemSchema):
    permissions = fields.List(fields.Nested(RolePermissionSchema))
    users = fields.List(fields.Nested(RoleUserSchema))


class PaginationSchema(ma.Schema):
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()
    hasNextPage = fields.Boolean()


class RolesPageResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.List(fields.Nested(RoleItemSchema))
    totalCount = fields.Integer()
    pageCount = fields.Integer()
    currentPage = fields.Integer()
    pagination = fields.Nested(PaginationSchema)


class RoleItemResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(RoleItemSchema)


class RoleDetailResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(RoleDetailSchema)


class SuccessResponse(ma.Schema):
    success = fields.Boolean()
    message = fields.String()


class _CategoryPermission(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    category = fields.String()


class _PermissionCategory(ma.Schema):
    category = fields.String()
    permissions = fields.List(fields.Nested(_CategoryPermission))


class _RolePermissions(ma.Schema):
    roleId = fields.String()
    categories = fields.List(fields.Nested(_PermissionCategory))


class RolePermissionsResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_RolePermissions)


class _Added(ma.Schema):
    roleId = fields.String()
    addedPermissions = fields.List(fields.String())
    totalPermissions = fields.Integer()


class PermissionsAddedResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_Added)


class _Removed(ma.Schema):
    roleId = fields.String()
    removedPermissions = fields.List(fields.String())
    totalPermissions = fields.Integer()


class PermissionsRemovedResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_Removed)


class _Replaced(ma.Schema):
    roleId = fields.String()
    permissions = fields.List(fields.String())


class PermissionsReplacedResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_Replaced)


class _CataloguePermission(ma.Schema):
    id = fields.String(metadata={"description": "perm_<name> (system/permissions only)"})
    name = fields.String()
    description = fields.String()
    category = fields.String()
    inUse = fields.Boolean(
        metadata={"description": "A role of the company holds it (system/permissions only)"}
    )


class _CatalogueCategory(ma.Schema):
    category = fields.String()
    permissions = fields.List(fields.Nested(_CataloguePermission))


class _Catalogue(ma.Schema):
    categories = fields.List(fields.Nested(_CatalogueCategory))
    total = fields.Integer()


class CatalogueResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_Catalogue)


class _CategoryNames(ma.Schema):
    categories = fields.List(fields.String())
    total = fields.Integer()


class CategoryNamesResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_CategoryNames)


class _FailedAssignment(ma.Schema):
    userId = fields.String()
    reason = fields.String()


class _AssignResult(ma.Schema):
    successCount = fields.Integer()
    failedCount = fields.Integer()
    failedAssignments = fields.List(fields.Nested(_FailedAssignment))
    summary = fields.String()


class AssignResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_AssignResult)


class RoleUsersListResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.List(fields.Nested(RoleUserSchema))


class RoleUsersPageResponse(RoleUsersListResponse):
    totalCount = fields.Integer()
    pageCount = fields.Integer()
    currentPage = fields.Integer()


class _UserRole(ma.Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    companyId = fields.String()
    createdAt = UtcDateTime()
    updatedAt = UtcDateTime()


class _UserRoles(ma.Schema):
    userId = fields.String()
    roles = fields.List(fields.Nested(_UserRole))
    total = fields.Integer()


class UserRolesResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_UserRoles)


class RoleSummarySchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)


class MyRolesDataSchema(ma.Schema):
    permissions = fields.List(fields.String())
    roles = fields.List(fields.Nested(RoleSummarySchema))


class MyRolesResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(MyRolesDataSchema)


# --- the contract's bodies, from what the service returns -------------------------------------


def ok(data: Any) -> dict[str, Any]:
    """The envelope of every /admin/roles answer."""
    return {"success": True, "data": data}


def role_item(role: RoleInfo) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "companyId": role.company_id,
        "usersCount": role.users_count,
        "permissionsCount": role.permissions_count,
        "createdAt": role.created_at,
        "updatedAt": role.updated_at,
    }


def user_ref(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email, "avatar": user.avatar}


def role_detail(role: RoleInfo) -> dict[str, Any]:
    return {
        **role_item(role),
        "permissions": [
            {"id": p.id, "name": p.name, "description": p.description, "category": p.category}
            for p in role.permissions
        ],
        "users": [user_ref(u) for u in role.users],
    }


def roles_page(roles: list[RoleInfo], total: int, page: int, limit: int) -> dict[str, Any]:
    return {
        **ok([role_item(r) for r in roles]),
        **page_fields(total, page, limit),
        "pagination": {"total": total, "page": page, "limit": limit, "hasNextPage": page * limit < total},
    }


def users_page(users: list[User], total: int, page: int, limit: int) -> dict[str, Any]:
    return {**ok([user_ref(u) for u in users]), **page_fields(total, page, limit)}


def by_category(perms: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for perm in perms:
        grouped.setdefault(perm["category"], []).append(perm)
    return [{"category": c, "permissions": grouped[c]} for c in sorted(grouped)]


def role_permissions(role_id: str, permissions: list[Permission]) -> dict[str, Any]:
    perms = [{"id": p.id, "name": p.name, "category": p.category} for p in permissions]
    return {"roleId": role_id, "categories": by_category(perms)}


def permissions_added(change: PermissionChange) -> dict[str, Any]:
    return {
        "roleId": change.role_id,
        "addedPermissions": change.added,
        "totalPermissions": len(change.permissions),
    }


def permissions_removed(change: PermissionChange) -> dict[str, Any]:
    return {
        "roleId": change.role_id,
        "removedPermissions": change.removed,
        "totalPermissions": len(change.permissions),
    }


def permissions_replaced(change: PermissionChange) -> dict[str, Any]:
    return {"roleId": change.role_id, "permissions": change.permissions}


def catalogue(permissions: list[Permission]) -> dict[str, Any]:
    perms = [{"name": p.name, "description": p.description, "category": p.category} for p in permissions]
    return {"categories": by_category(perms), "total": len(perms)}


def catalogue_with_usage(rows: list[tuple[Permission, bool]]) -> dict[str, Any]:
    perms = [
        {
            "id": f"perm_{p.name}",
            "name": p.name,
            "description": p.description,
            "category": p.category,
            "inUse": in_use,
        }
        for p, in_use in rows
    ]
    return {"categories": by_category(perms), "total": len(perms)}


def category_names(names: list[str]) -> dict[str, Any]:
    return {"categories": names, "total": len(names)}


def assignment(result: Assignment) -> dict[str, Any]:
    failed = [{"userId": u, "reason": "Role is already assigned to user"} for u in result.already_held]
    assigned = len(result.assigned)
    return {
        "successCount": assigned,
        "failedCount": len(failed),
        "failedAssignments": failed,
        "summary": f"{assigned} user(s) assigned to role {result.role_name}, {len(failed)} failed",
    }


def role_ref(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "companyId": role.company_id,
        "createdAt": role.created_at,
        "updatedAt": role.updated_at,
    }


def user_roles(user_id: str, roles: list[Role]) -> dict[str, Any]:
    items = [role_ref(r) for r in roles]
    return {"userId": user_id, "roles": items, "total": len(items)}
