"""Welcome email routes (contract §7.3): one user, or up to 100 at once, each run as a job."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from sqlalchemy import select

from app.api import BEARER, ApiError, Blueprint, error_response, idempotency_key, request_session
from app.auth import current_user, require_permission
from app.features.emails.schemas import BulkWelcomeBody, BulkWelcomeResponse, WelcomeResponse
from app.features.emails.tasks import BULK_WELCOME_KIND, WELCOME_KIND
from app.features.identity.models import User
from app.features.roles.authority import require_authority_over
from app.jobs import enqueue
from app.jobs.http import respond_when_done
from app.jobs.models import Job
from app.jobs.schemas import AcceptedSchema
from app.ratelimit import creates_job

blp = Blueprint("welcome_emails", __name__, url_prefix="/admin/users", description="Welcome (invite) emails")

_FAILURE_STATUS = {
    "NOT_FOUND": 404,
    "INACTIVE": 400,
    "WELCOME_EMAIL_LIMIT": 409,
    "DELIVERY_FAILED": 502,
}


@blp.route("/<string:user_id>/send-welcome-email")
class SendWelcomeEmail(MethodView):
    @require_permission("users:update")
    @creates_job
    @blp.doc(security=BEARER)
    @blp.response(202, AcceptedSchema, description="Still sending (or respond-async)")
    @blp.alt_response(200, schema=WelcomeResponse, description="Sent")
    @blp.alt_response(404, description="User not in the company")
    @blp.alt_response(409, description="Limit of 3 welcome emails per user reached")
    @blp.alt_response(502, description="The mail server refused the message")
    def post(self, user_id: str) -> ResponseReturnValue:
        """Send the welcome email (a one-time set-password link) to one user; at most 3 per user."""
        caller = current_user()
        session = request_session()
        exists = session.scalar(
            select(User.id).where(User.id == user_id, User.company_id == caller.company_id)
        )
        if exists is None:
            raise ApiError(404, "User not found")
        # The email carries a set-password link: it is a password reset for a user who has one.
        require_authority_over(
            session,
            company_id=caller.company_id,
            actor_id=caller.id,
            caller_permissions=caller.permissions,
            user_ids=[user_id],
            action="user.send_welcome_email",
        )
        job, _ = enqueue(
            session,
            WELCOME_KIND,
            {"user_id": user_id},
            company_id=caller.company_id,
            requested_by=caller.id,
            idempotency_key=idempotency_key(),
        )
        session.commit()
        return respond_when_done(session, job, _render_one)


def _render_one(job: Job) -> ResponseReturnValue:
    """A finished send (a job that failed is answered by `respond_when_done`)."""
    result: dict[str, Any] = job.result or {}
    if not result.get("success"):
        code = result.get("code") or "EMAIL_FAILED"
        return error_response(_FAILURE_STATUS.get(code, 502), result.get("error") or "Not sent", code)
    user = request_session().get(User, result["userId"])
    return jsonify(
        {
            "message": "Welcome email sent",
            "onboarding": {
                "userId": result["userId"],
                "emailSendCount": result.get("emailSendCount", 0),
                "lastEmailSentAt": result.get("lastEmailSentAt"),
                "isConfirmed": bool(user and (user.password_hash or user.auth_user_id)),
            },
        }
    )


@blp.route("/send-welcome-emails-bulk")
class SendWelcomeEmailsBulk(MethodView):
    @require_permission("users:bulk_actions")
    @creates_job
    @blp.arguments(BulkWelcomeBody)
    @blp.doc(security=BEARER)
    @blp.response(202, AcceptedSchema, description="Still sending (or respond-async)")
    @blp.alt_response(200, schema=BulkWelcomeResponse, description="Per-user results")
    def post(self, body: dict[str, Any]) -> ResponseReturnValue:
        """Send welcome emails to up to 100 users, in batches over one SMTP connection each; a
        user who already had 3 is reported as failed, the others are still sent."""
        caller = current_user()
        session = request_session()
        user_ids = list(dict.fromkeys(body["userIds"]))
        require_authority_over(
            session,
            company_id=caller.company_id,
            actor_id=caller.id,
            caller_permissions=caller.permissions,
            user_ids=user_ids,
            action="user.send_welcome_email",
        )
        job, _ = enqueue(
            session,
            BULK_WELCOME_KIND,
            {"user_ids": user_ids},
            company_id=caller.company_id,
            requested_by=caller.id,
            idempotency_key=idempotency_key(),
        )
        session.commit()
        return respond_when_done(session, job, _render_bulk)


def _render_bulk(job: Job) -> ResponseReturnValue:
    return jsonify(job.result)
