"""Operator wallet routes: the weekly reset (contract §5) and wallet management (contract §10).

The slow ones run as jobs through `respond_when_done`: `Prefer: respond-async` → 202 + job id at
once; otherwise the request waits for the job (up to SYNC_WAIT_SECONDS) and answers the contract's
synchronous body, or 202 + job id when the bound runs out (a failed job: `app/jobs/http.py:job_answer`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView

from app.api import Blueprint, idempotency_key, request_session
from app.auth import current_user, require_permission
from app.features.wallets import expiry, weekly_reset
from app.features.wallets.management_schemas import (
    AllResetSchema,
    CompanyResetSchema,
    ExpireQuerySchema,
    ExpireResponseSchema,
    ReportQuerySchema,
    ReportResponseSchema,
    ResetQuerySchema,
)
from app.jobs import enqueue
from app.jobs.http import respond_when_done
from app.jobs.models import Job
from app.jobs.schemas import AcceptedSchema
from app.ratelimit import creates_job

reset_blp = Blueprint(
    "wallet_reset", __name__, url_prefix="/wallets", description="Operator: weekly allowance reset"
)
management_blp = Blueprint(
    "wallet_management",
    __name__,
    url_prefix="/admin/wallet-management",
    description="Operator: coin expiry and expiration report",
)


def _company_scope() -> str | None:
    """The caller's company, or None (every company) for a platform operator."""
    user = current_user()
    return None if user.can("admin:manage_system") else user.company_id


@reset_blp.route("/reset-weekly-balance")
class ResetWeeklyBalance(MethodView):
    @require_permission("admin:manage_system")
    @creates_job
    @reset_blp.arguments(ResetQuerySchema, location="query")
    @reset_blp.response(202, AcceptedSchema)
    @reset_blp.alt_response(200, schema=CompanyResetSchema, description="With companyId")
    @reset_blp.alt_response(
        200, schema=AllResetSchema, description="Without companyId (every active company)"
    )
    def post(self, query: dict[str, Any]) -> Any:
        """Reset the weekly compliment allowance now (this week's reset, once per company and week).

        A company already reset this week is not reset again: it reports 0 wallets updated and
        `alreadyReset: true`."""
        user = current_user()
        session = request_session()
        company_id = query.get("companyId")
        if company_id:
            weekly_reset.require_active_company(session, company_id)
        job, _ = enqueue(
            session,
            "wallets.reset_weekly",
            {"company_id": company_id},
            company_id=user.company_id,
            requested_by=user.id,
            idempotency_key=idempotency_key(),
        )
        session.commit()
        return respond_when_done(session, job, lambda done: _render_reset(done, company_id, user.id))


def _render_reset(job: Job, company_id: str | None, user_id: str) -> Response:
    result: dict[str, Any] = job.result or {}
    if company_id:
        [company] = result["companies"]
        already = company["alreadyReset"]
        body = {
            "message": (
                "Weekly balance was already reset this week; nothing changed"
                if already
                else "Weekly balance reset successfully"
            ),
            "companyId": company["companyId"],
            "companyName": company["companyName"],
            "walletsUpdated": company["walletsUpdated"],
            "weeklyLimit": company["weeklyLimit"],
            "resetBy": user_id,
            "alreadyReset": already,
        }
        return jsonify(CompanyResetSchema().dump(body))
    body = {
        "message": f"Weekly balance reset for {result['companies_reset']} companies",
        "companiesUpdated": result["companies_reset"],
        "walletsUpdated": result["wallets_changed"],
        "resetBy": user_id,
        "companiesAlreadyReset": result["companies_already_reset"],
    }
    return jsonify(AllResetSchema().dump(body))


@management_blp.route("/expire-coins")
class ExpireCoins(MethodView):
    @require_permission("admin:access_panel")
    @creates_job
    @management_blp.arguments(ExpireQuerySchema, location="query")
    @management_blp.response(202, AcceptedSchema)
    @management_blp.alt_response(200, schema=ExpireResponseSchema, description="The job finished in time")
    def post(self, query: dict[str, Any]) -> Any:
        """Expire redeemable coins past their expiry (the caller's company; every company for a
        platform operator). `dryRun=true` only reports what would expire."""
        user = current_user()
        session = request_session()
        job, _ = enqueue(
            session,
            "wallets.expire_coins",
            {"company_id": _company_scope(), "dry_run": query["dryRun"]},
            company_id=user.company_id,
            requested_by=user.id,
            idempotency_key=idempotency_key(),
        )
        session.commit()
        return respond_when_done(session, job, _render_expiry)


def _render_expiry(job: Job) -> Response:
    data: dict[str, Any] = job.result or {}
    verb = "would expire" if data.get("dryRun") else "expired"
    message = f"{data.get('totalCoinsExpired', 0)} coins of {data.get('usersAffected', 0)} users {verb}"
    return jsonify(ExpireResponseSchema().dump({"success": True, "message": message, "data": data}))


@management_blp.route("/expiration-report")
class ExpirationReport(MethodView):
    @require_permission("admin:access_panel")
    @management_blp.arguments(ReportQuerySchema, location="query")
    @management_blp.response(200, ReportResponseSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Coins expiring in the next 30 and 90 days, and per user within `days` (1-365, default 90)."""
        data = expiry.expiration_report(request_session(), company_id=_company_scope(), days=query["days"])
        return {"success": True, "message": "Expiration report generated", "data": data}
