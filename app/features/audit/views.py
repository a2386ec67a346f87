"""GET /admin/audit-log: the admin actions within the caller's company, for its administrators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, page_fields, request_session
from app.auth import current_user, require_permission
from app.features.audit import service
from app.features.audit.schemas import AuditLogPageSchema, AuditLogQuery

blp = Blueprint("audit", __name__, url_prefix="/admin/audit-log", description="Audit log of admin actions")


@blp.route("")
class AuditLogList(MethodView):
    @require_permission("admin:manage_company")
    @blp.arguments(AuditLogQuery, location="query")
    @blp.response(200, AuditLogPageSchema)
    @blp.alt_response(403, description="Missing admin:manage_company")
    @blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Admin actions, newest first; filter by `entityType`, `entityId`, `action`."""
        rows, total = service.list_entries(
            request_session(),
            current_user().company_id,
            page=query["page"],
            limit=query["limit"],
            entity_type=query.get("entityType"),
            entity_id=query.get("entityId"),
            action=query.get("action"),
        )
        return {
            "data": rows,
            **page_fields(total, query["page"], query["limit"]),
        }
