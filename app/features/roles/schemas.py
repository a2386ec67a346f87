"""Shapes of /admin/roles (contract §8): every answer is `{success, data}`."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime

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
