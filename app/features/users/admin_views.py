"""/admin/users (contract §7) and GET /job-titles/by-department (§7.1): bare bodies."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from app import ratelimit
from app.api import BEARER, Blueprint, request_session
from app.auth import current_user, require_permission
from app.features.users import admin_service as service
from app.features.users.admin_schemas import (
    AdminUserCreateBody,
    AdminUserCreatedSchema,
    AdminUserDetailSchema,
    AdminUsersPageSchema,
    AdminUsersQuery,
    AdminUserUpdateBody,
    AdminUserUpdatedSchema,
    BulkActionBody,
    BulkUpdatedSchema,
    ByDepartmentQuery,
    CountedRefSchema,
    ResetPasswordSchema,
)

blp = Blueprint("admin_users", __name__, url_prefix="/admin/users", description="Admin: users")
job_titles = Blueprint(
    "job_titles", __name__, url_prefix="/job-titles", description="Job titles of a department"
)


@blp.route("")
class Users(MethodView):
    @require_permission("users:read")
    @blp.arguments(AdminUsersQuery, location="query")
    @blp.response(200, AdminUsersPageSchema)
    @blp.alt_response(403, description="Missing users:read")
    @blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Users of the company, filtered and paginated (newest first unless `sortBy`)."""
        return service.list_users(request_session(), current_user().company_id, query)

    @require_permission("users:create")
    @blp.arguments(AdminUserCreateBody)
    @blp.response(201, AdminUserCreatedSchema)
    @blp.alt_response(400, description="Invalid body, email domain, department or job title")
    @blp.alt_response(409, description="Email already exists in this company")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a user with the Employee role and a wallet; `sendEmail` queues the invite,
        otherwise the answer carries `temporaryPasswordUrl`."""
        session = request_session()
        caller = current_user()
        if body.get("sendEmail"):
            ratelimit.limit_job_creation(caller.company_id)
        created = service.create_user(session, caller.company_id, caller.id, body)
        session.commit()
        return created.as_response()


# Static segment, registered before /<user_id> (Werkzeug also ranks it first).
@blp.route("/bulk/actions")
class BulkActions(MethodView):
    @require_permission("users:bulk_actions")
    @blp.arguments(BulkActionBody)
    @blp.response(200, BulkUpdatedSchema, description="activate/deactivate; export answers text/csv")
    @blp.alt_response(404, description="A user is not in the company")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> Any:
        """Activate, deactivate (`{updated}`) or export as CSV (every cell quoted and neutralised)."""
        session = request_session()
        caller = current_user()
        if body["action"] == "export":
            text = service.export_csv(session, caller.company_id, caller.id, body["userIds"])
            session.commit()
            return Response(
                text,
                mimetype="text/csv",
                headers={"Content-Disposition": 'attachment; filename="users_export.csv"'},
            )
        updated = service.bulk_set_active(
            session,
            caller.company_id,
            caller.id,
            caller.permissions,
            body["userIds"],
            body["action"] == "activate",
        )
        session.commit()
        return {"updated": updated}


@blp.route("/<user_id>")
class UserItem(MethodView):
    @require_permission("users:read")
    @blp.response(200, AdminUserDetailSchema)
    @blp.alt_response(404, description="Not a user of the company")
    @blp.doc(security=BEARER)
    def get(self, user_id: str) -> dict[str, Any]:
        """One user with statistics (compliments sent/received, redeemable coins, redemptions)."""
        return service.user_detail(request_session(), current_user().company_id, user_id)

    @require_permission("users:update")
    @blp.arguments(AdminUserUpdateBody)
    @blp.response(200, AdminUserUpdatedSchema)
    @blp.alt_response(404, description="Not a user of the company")
    @blp.alt_response(409, description="Email already exists in this company")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any], user_id: str) -> dict[str, Any]:
        """Change fields; null clears department / job title, an omitted field is unchanged."""
        session = request_session()
        caller = current_user()
        user = service.update_user(session, caller.company_id, caller.id, caller.permissions, user_id, body)
        session.commit()
        return {
            "id": user.id,
            "name": user.name,
            "email": user.email,
            "isActive": user.is_active,
            "updatedAt": user.updated_at,
        }

    @require_permission("users:delete")
    @blp.response(204)
    @blp.alt_response(404, description="Not a user of the company")
    @blp.doc(security=BEARER)
    def delete(self, user_id: str) -> None:
        """Soft delete: the user is deactivated and their sessions end."""
        session = request_session()
        caller = current_user()
        service.deactivate_user(session, caller.company_id, caller.id, caller.permissions, user_id)
        session.commit()


@blp.route("/<user_id>/reset-password")
class ResetPassword(MethodView):
    @require_permission("users:update")
    @blp.response(200, ResetPasswordSchema)
    @blp.alt_response(404, description="Not a user of the company")
    @blp.doc(security=BEARER)
    def put(self, user_id: str) -> dict[str, str]:
        """A one-time link (valid 24 hours) to the set-password page, for the admin to share."""
        session = request_session()
        caller = current_user()
        answer = service.reset_password_link(
            session, caller.company_id, caller.id, caller.permissions, user_id
        )
        session.commit()
        return answer


@job_titles.route("/by-department")
class JobTitlesByDepartment(MethodView):
    @require_permission("users:read")
    @job_titles.arguments(ByDepartmentQuery, location="query")
    @job_titles.response(200, CountedRefSchema(many=True))
    @job_titles.alt_response(404, description="Department not in the company")
    @job_titles.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Job titles of a department with their active user counts, by name."""
        return service.job_titles_with_counts(
            request_session(), current_user().company_id, query["departmentId"]
        )
