"""Operator routes for scheduled tasks (platform operators only): run one now, read the history."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.views import MethodView

from app.api import ApiError, Blueprint, idempotency_key, page_fields, request_session
from app.auth import current_user, require_permission
from app.cron import history, schedule
from app.cron.schemas import CronRunPageSchema, CronRunQuerySchema
from app.jobs import service
from app.jobs.http import respond_when_done
from app.jobs.schemas import AcceptedSchema, JobSchema
from app.ratelimit import creates_job

ops = Blueprint("ops", __name__, url_prefix="/admin/cron", description="Operator actions on scheduled tasks")
runs = Blueprint(
    "cron_runs", __name__, url_prefix="/admin/cron-runs", description="Operator: scheduled task run history"
)


@ops.route("/<string:task_name>/run")
class RunScheduledTask(MethodView):
    @require_permission("admin:manage_system")
    @creates_job
    @ops.response(202, AcceptedSchema)
    @ops.alt_response(200, schema=JobSchema, description="The job, when it finished within the wait bound")
    def post(self, task_name: str) -> Any:
        """Run a scheduled task now, as a tracked job.

        Waits for it up to SYNC_WAIT_SECONDS and answers 200 with the finished job; with
        `Prefer: respond-async`, or when the bound runs out, answers 202 + job id."""
        try:
            schedule.get(task_name)
        except LookupError as exc:
            raise ApiError(404, str(exc)) from None
        user = current_user()
        session = request_session()
        job, _ = service.enqueue(
            session,
            "cron.run",
            {"task_name": task_name},
            company_id=user.company_id,
            requested_by=user.id,
            idempotency_key=idempotency_key(),
        )
        session.commit()
        return respond_when_done(session, job, lambda done: jsonify(JobSchema().dump(done)))


@runs.route("")
class CronRuns(MethodView):
    @require_permission("admin:manage_system")
    @runs.arguments(CronRunQuerySchema, location="query")
    @runs.response(200, CronRunPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Runs of every scheduled task (one-shot, scheduled or run-now), newest first; filter by
        `task` and `outcome`; paginated by `page` and `limit`."""
        rows, total = history.list_cron_runs(
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
