"""/jobs: status of slow work, scoped to the caller's company; retry and cancel for operators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import ApiError, Blueprint, accepted, page_fields, request_session
from app.auth import current_user, login_required, require_permission
from app.jobs import service
from app.jobs.models import Job
from app.jobs.schemas import AcceptedSchema, JobListQuery, JobPageSchema, JobSchema
from app.jobs.waiting import announce
from app.ratelimit import creates_job

blp = Blueprint("jobs", __name__, url_prefix="/jobs", description="Background jobs (audit and status)")


def _load_visible(job_id: str) -> Job:
    user = current_user()
    job = service.get_visible_job(
        request_session(), job_id, user.company_id, user.id, user.can("jobs:read_all")
    )
    if job is None:
        raise ApiError(404, "Job not found")
    return job


@blp.route("")
class Jobs(MethodView):
    @login_required
    @blp.arguments(JobListQuery, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List jobs (your own; the whole company's with jobs:read_all)."""
        user = current_user()
        rows, total = service.list_jobs(
            request_session(),
            user.company_id,
            user.id,
            user.can("jobs:read_all"),
            status=query.get("status"),
            kind=query.get("kind"),
            page=query["page"],
            limit=query["limit"],
        )
        return {
            "data": rows,
            **page_fields(total, query["page"], query["limit"]),
        }


@blp.route("/<string:job_id>")
class JobDetail(MethodView):
    @login_required
    @blp.response(200, JobSchema)
    def get(self, job_id: str) -> Job:
        """Status, progress, attempts, timestamps, result or error of one job."""
        return _load_visible(job_id)


@blp.route("/<string:job_id>/retry")
class JobRetry(MethodView):
    @require_permission("jobs:manage")
    @creates_job
    @blp.response(202, AcceptedSchema)
    def post(self, job_id: str) -> Any:
        """Run a failed or canceled job again with a fresh budget of attempts."""
        session = request_session()
        try:
            job = service.retry(session, _load_visible(job_id))
        except service.JobStateError as exc:
            raise ApiError(409, str(exc), "JOB_STATE") from None
        session.commit()
        return accepted(job.id, job.status)


@blp.route("/<string:job_id>/cancel")
class JobCancel(MethodView):
    @require_permission("jobs:manage")
    @blp.response(200, JobSchema)
    def post(self, job_id: str) -> Job:
        """Cancel a pending, queued or running job (a running job's transaction is rolled back)."""
        session = request_session()
        try:
            job = service.cancel(session, _load_visible(job_id))
        except service.JobStateError as exc:
            raise ApiError(409, str(exc), "JOB_STATE") from None
        session.commit()
        announce(job.id, job.status)
        return job
