"""GET /admin/cron-runs: the run history of scheduled tasks, for platform operators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import Blueprint, page_fields, request_session
from app.auth import require_permission
from app.features.ops import service
from app.features.ops.schemas import CronRunPageSchema, CronRunQuerySchema

blp = Blueprint(
    "cron_runs", __name__, url_prefix="/admin/cron-runs", description="Operator: scheduled task run history"
)


@blp.route("")
class CronRuns(MethodView):
    @require_permission("admin:manage_system")
    @blp.arguments(CronRunQuerySchema, location="query")
    @blp.response(200, CronRunPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Runs of every scheduled task (one-shot, scheduled or run-now), newest first; filter by
        `task` and `outcome`; paginated by `page` and `limit`."""
        rows, total = service.list_cron_runs(
            request_session(),
            task=query.get("task"),
            outcome=query.get("outcome"),
            page=query["page"],
            limit=query["limit"],
        )
        return {
            "data": rows,
            **page_fields(total, query["page"], query["limit"]),
        }
