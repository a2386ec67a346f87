"""/admin/roles/* (contract §8), envelope `{success, data}`, `GET /admin/roles/me` included.
Static segments are registered before `/<role_id>` (Werkzeug ranks them first too)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, request_session
from app.auth import current_user, require_permission
from app.features.roles import schemas, service
from app.features.roles.schemas import (
    AssignResponse,
    AssignRoleBody,
    CatalogueResponse,
    CategoryNamesResponse,
    MyRolesResponse,
    PageQuery,
    PermissionNamesBody,
    PermissionsAddedResponse,
    PermissionsRemovedResponse,
    PermissionsReplacedResponse,
    RoleCreateBody,
    RoleDetailResponse,
    RoleItemResponse,
    RolePermissionsResponse,
    RolesPageResponse,
    RolesQuery,
    RoleUpdateBody,
    RoleUsersListResponse,
    RoleUsersPageResponse,
    SuccessResponse,
    UserRolesResponse,
)

blp = Blueprint(
    "admin_roles", __name__, url_prefix="/admin/roles", description="Admin: roles and permissions"
)


_ok = schemas.ok


@blp.route("")
class Roles(MethodView):
    @require_permission("roles:read")
    @blp.arguments(RolesQuery, location="query")
    @blp.response(200, RolesPageResponse)
    @blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Roles of the company by name, with user and permission counts."""
        page, limit = query["page"], query["limit"]
        roles, total = service.list_roles(
            request_session(), current_user().company_id, page, limit, query.get("search")
        )
        return schemas.roles_page(roles, total, page, limit)

    @require_permission("roles:create")
    @blp.arguments(RoleCreateBody)
    @blp.response(201, RoleItemResponse)
    @blp.alt_response(409, description="ROLE_ALREADY_EXISTS")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a role (400 PERMISSION_NOT_FOUND for an unknown permission name)."""
        session = request_session()
        caller = current_user()
        role = service.create_role(session, caller.company_id, caller.id, caller.permissions, body)
        session.commit()
        return _ok(schemas.role_item(role))


@blp.route("/assign-role")
class AssignRole(MethodView):
    @require_permission("users:manage_roles")
    @blp.arguments(AssignRoleBody)
    @blp.response(200, AssignResponse)
    @blp.alt_response(404, description="Role or user not in the company")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Give a role to users; those who already hold it are reported as failed."""
        session = request_session()
        caller = current_user()
        result = service.assign_role(
            session, caller.company_id, caller.id, caller.permissions, body["roleId"], body["userIds"]
        )
        session.commit()
        return _ok(schemas.assignment(result))


@blp.route("/me")
class MyRoles(MethodView):
    @require_permission("roles:read")
    @blp.response(200, MyRolesResponse)
    @blp.alt_response(403, description="Missing roles:read")
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The caller's permissions and roles (the admin sidebar reads `data.roles`)."""
        caller = current_user()
        roles = service.roles_of(request_session(), caller.company_id, caller.id)
        return _ok({"permissions": sorted(caller.permissions), "roles": roles})


@blp.route("/users/list")
class AssignableUsers(MethodView):
    @require_permission("roles:read")
    @blp.response(200, RoleUsersListResponse)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """Every active user of the company (the "add user to role" picker)."""
        users = service.assignable_users(request_session(), current_user().company_id)
        return _ok([schemas.user_ref(u) for u in users])


@blp.route("/users/<user_id>/roles")
class UserRoles(MethodView):
    @require_permission("users:read")
    @blp.response(200, UserRolesResponse)
    @blp.alt_response(404, description="User not in the company")
    @blp.doc(security=BEARER)
    def get(self, user_id: str) -> dict[str, Any]:
        """The roles a user holds."""
        roles = service.roles_of_user(request_session(), current_user().company_id, user_id)
        return _ok(schemas.user_roles(user_id, roles))


@blp.route("/users/<user_id>/roles/<role_id>")
class UserRole(MethodView):
    @require_permission("users:manage_roles")
    @blp.response(200, SuccessResponse)
    @blp.alt_response(404, description="User, role or assignment not found")
    @blp.doc(security=BEARER)
    def delete(self, user_id: str, role_id: str) -> dict[str, Any]:
        """Take a role away from a user."""
        session = request_session()
        caller = current_user()
        service.unassign_role(session, caller.company_id, caller.id, caller.permissions, user_id, role_id)
        session.commit()
        return {"success": True, "message": "Role removed from user"}


@blp.route("/system/permissions-info")
class PermissionsInfo(MethodView):
    @require_permission("permissions:read_all")
    @blp.response(200, CatalogueResponse)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The permission catalogue by category (role-creation picker and tooltips)."""
        return _ok(schemas.catalogue(service.catalogue(request_session())))


@blp.route("/system/permissions")
class SystemPermissions(MethodView):
    @require_permission("roles:read")
    @blp.response(200, CatalogueResponse)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The catalogue with `id` = perm_<name> and `inUse` by some role of the company."""
        rows = service.catalogue_with_usage(request_session(), current_user().company_id)
        return _ok(schemas.catalogue_with_usage(rows))


@blp.route("/system/permissions/categories")
class PermissionCategories(MethodView):
    @require_permission("roles:read")
    @blp.response(200, CategoryNamesResponse)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The permission category names (the route the frontend defines)."""
        return _ok(schemas.category_names(service.catalogue_categories(request_session())))


@blp.route("/system/categories")
class SystemCategories(MethodView):
    @require_permission("roles:read")
    @blp.response(200, CategoryNamesResponse)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The same list under the old backend's path."""
        return _ok(schemas.category_names(service.catalogue_categories(request_session())))


@blp.route("/<role_id>")
class Role(MethodView):
    @require_permission("roles:read")
    @blp.response(200, RoleDetailResponse)
    @blp.alt_response(404, description="ROLE_NOT_FOUND")
    @blp.doc(security=BEARER)
    def get(self, role_id: str) -> dict[str, Any]:
        """A role with its permissions and users."""
        return _ok(
            schemas.role_detail(service.role_detail(request_session(), current_user().company_id, role_id))
        )

    @require_permission("roles:update")
    @blp.arguments(RoleUpdateBody)
    @blp.response(200, RoleItemResponse)
    @blp.alt_response(404, description="ROLE_NOT_FOUND")
    @blp.alt_response(409, description="ROLE_ALREADY_EXISTS")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any], role_id: str) -> dict[str, Any]:
        """Rename a role or change its description."""
        session = request_session()
        caller = current_user()
        role = service.update_role(session, caller.company_id, caller.id, role_id, body)
        session.commit()
        return _ok(schemas.role_item(role))

    @require_permission("roles:delete")
    @blp.response(200, SuccessResponse)
    @blp.alt_response(404, description="ROLE_NOT_FOUND")
    @blp.alt_response(409, description="ROLE_HAS_USERS (details.usersCount)")
    @blp.doc(security=BEARER)
    def delete(self, role_id: str) -> dict[str, Any]:
        """Delete a role nobody holds."""
        session = request_session()
        caller = current_user()
        service.delete_role(session, caller.company_id, caller.id, role_id)
        session.commit()
        return {"success": True, "message": "Role deleted"}


@blp.route("/<role_id>/users")
class RoleUsers(MethodView):
    @require_permission("roles:read")
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, RoleUsersPageResponse)
    @blp.alt_response(404, description="ROLE_NOT_FOUND")
    @blp.doc(security=BEARER)
    def get(self, query: dict[str, Any], role_id: str) -> dict[str, Any]:
        """Holders of a role, paginated (the route the frontend defines)."""
        page, limit = query["page"], query["limit"]
        users, total = service.users_of_role(
            request_session(), current_user().company_id, role_id, page, limit
        )
        return schemas.users_page(users, total, page, limit)


@blp.route("/<role_id>/permissions")
class RolePermissions(MethodView):
    @require_permission("roles:read")
    @blp.response(200, RolePermissionsResponse)
    @blp.alt_response(404, description="ROLE_NOT_FOUND")
    @blp.doc(security=BEARER)
    def get(self, role_id: str) -> dict[str, Any]:
        """The role's permissions grouped by category."""
        permissions = service.permissions_of_role(request_session(), current_user().company_id, role_id)
        return _ok(schemas.role_permissions(role_id, permissions))

    @require_permission("roles:manage_permissions")
    @blp.arguments(PermissionNamesBody)
    @blp.response(200, PermissionsAddedResponse)
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], role_id: str) -> dict[str, Any]:
        """Add permissions (those already held are skipped)."""
        session = request_session()
        caller = current_user()
        result = service.add_permissions(
            session, caller.company_id, caller.id, caller.permissions, role_id, body["permissionNames"]
        )
        session.commit()
        return _ok(schemas.permissions_added(result))

    @require_permission("roles:manage_permissions")
    @blp.arguments(PermissionNamesBody)
    @blp.response(200, PermissionsRemovedResponse)
    @blp.doc(security=BEARER)
    def delete(self, body: dict[str, Any], role_id: str) -> dict[str, Any]:
        """Remove permissions; the names come in a JSON body on DELETE."""
        session = request_session()
        caller = current_user()
        result = service.remove_permissions(
            session, caller.company_id, caller.id, caller.permissions, role_id, body["permissionNames"]
        )
        session.commit()
        return _ok(schemas.permissions_removed(result))

    @require_permission("roles:manage_permissions")
    @blp.arguments(PermissionNamesBody)
    @blp.response(200, PermissionsReplacedResponse)
    @blp.doc(security=BEARER)
    def put(self, body: dict[str, Any], role_id: str) -> dict[str, Any]:
        """Replace the role's permissions."""
        session = request_session()
        caller = current_user()
        result = service.replace_permissions(
            session, caller.company_id, caller.id, caller.permissions, role_id, body["permissionNames"]
        )
        session.commit()
        return _ok(schemas.permissions_replaced(result))
