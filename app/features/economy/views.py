"""Economy routes: the admin Economy page (contract §10, store contract §S6) and the platform
operator's money and plan routes (store contract §S10, `{success, data}` envelope)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, request_session
from app.auth import current_user, require_permission
from app.errors import Forbidden, NotFound
from app.features.economy import dashboard, service
from app.features.economy.schemas import (
    CompanyPlanSchema,
    CompanyWalletSchema,
    DepositedSchema,
    DepositSchema,
    EconomyDashboardSchema,
    HistoryQuerySchema,
    PlanChangedSchema,
    PlanSchema,
    WalletHistorySchema,
)
from app.features.identity import service as identity
from app.features.identity.models import Company

economy_blp = Blueprint(
    "economy_dashboard",
    __name__,
    url_prefix="/admin/dashboard/economy",
    description="Economy dashboard (admin)",
)
backoffice_blp = Blueprint(
    "backoffice_economy",
    __name__,
    url_prefix="/backoffice/companies",
    description="Platform operators: company fund and plan",
)

PROFESSIONAL = "PROFESSIONAL"


@economy_blp.route("")
class Economy(MethodView):
    @require_permission("admin:view_analytics")
    @economy_blp.response(200, EconomyDashboardSchema)
    @economy_blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """Fund balance, runway, coin coverage, engagement, redemption rate, alerts and the last 10
        deposits, from the company's BRL ledger and the coin ledger."""
        return dashboard.economy_dashboard(request_session(), current_user().company_id)


@economy_blp.route("/wallet-history")
class WalletHistory(MethodView):
    @require_permission("admin:view_analytics")
    @economy_blp.arguments(HistoryQuerySchema, location="query")
    @economy_blp.response(200, WalletHistorySchema)
    @economy_blp.alt_response(403, description="Missing admin:view_analytics, or PLAN_RESTRICTION")
    @economy_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Deposits, newest first, with the balance right after each; `total` is the real count.
        PROFESSIONAL plan only (403 PLAN_RESTRICTION)."""
        session = request_session()
        company_id = current_user().company_id
        company = session.get(Company, company_id)
        plan = company.plan if company else None
        if plan != PROFESSIONAL:
            raise Forbidden(
                f"Wallet history requires the {PROFESSIONAL} plan",
                "PLAN_RESTRICTION",
                {
                    "featureName": "Wallet history",
                    "requiredPlan": PROFESSIONAL,
                    "currentPlan": plan,
                    "upgradeRequired": True,
                },
            )
        return dashboard.wallet_history(session, company_id, query["limit"])


def _company(session: Any, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("Company not found")
    return company


def _wallet(session: Any, company_id: str) -> dict[str, Any]:
    acct = service.account(session, company_id)
    return {
        "companyId": company_id,
        "balance": service.cents_to_brl(acct.balance_cents),
        "totalDeposited": service.cents_to_brl(acct.total_deposited_cents),
        "totalSpent": service.cents_to_brl(acct.total_spent_cents),
        "isFrozen": acct.is_frozen,
        "ledgerBalance": service.cents_to_brl(service.ledger_sum(session, company_id)),
    }


@backoffice_blp.route("/<company_id>/wallet")
class CompanyWallet(MethodView):
    @require_permission("admin:manage_system")
    @backoffice_blp.response(200, CompanyWalletSchema)
    @backoffice_blp.alt_response(404, description="Unknown company")
    @backoffice_blp.doc(security=BEARER)
    def get(self, company_id: str) -> dict[str, Any]:
        session = request_session()
        _company(session, company_id)
        return {"success": True, "data": _wallet(session, company_id)}


@backoffice_blp.route("/<company_id>/wallet/credits")
class CompanyWalletCredits(MethodView):
    @require_permission("admin:manage_system")
    @backoffice_blp.arguments(DepositSchema)
    @backoffice_blp.response(201, DepositedSchema)
    @backoffice_blp.alt_response(404, description="Unknown company")
    @backoffice_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], company_id: str) -> tuple[dict[str, Any], int]:
        """Record money received from the company (a deposit row in its ledger)."""
        session = request_session()
        _company(session, company_id)
        entry = service.deposit(
            session,
            company_id,
            round(body["amount"] * 100),
            body["reason"],
            created_by=current_user().id,
            payment_method=body.get("paymentMethod"),
        )
        session.commit()
        return {
            "success": True,
            "message": "Credits added successfully",
            "data": {"depositId": entry.id, **_wallet(session, company_id)},
        }, 201


@backoffice_blp.route("/<company_id>/plan")
class CompanyPlan(MethodView):
    @require_permission("admin:manage_system")
    @backoffice_blp.response(200, CompanyPlanSchema)
    @backoffice_blp.alt_response(404, description="Unknown company")
    @backoffice_blp.doc(security=BEARER)
    def get(self, company_id: str) -> dict[str, Any]:
        company = _company(request_session(), company_id)
        return {
            "success": True,
            "data": {"companyId": company.id, "planType": company.plan, "isActive": True},
        }

    @require_permission("admin:manage_system")
    @backoffice_blp.arguments(PlanSchema)
    @backoffice_blp.response(200, PlanChangedSchema)
    @backoffice_blp.alt_response(404, description="Unknown company")
    @backoffice_blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any], company_id: str) -> dict[str, Any]:
        """Change the company's plan (ESSENTIAL or PROFESSIONAL); effective on the next request."""
        session = request_session()
        company = identity.set_plan(session, company_id, body["planType"])
        session.commit()
        return {
            "success": True,
            "message": "Plan updated successfully",
            "data": {"companyId": company.id, "planType": company.plan},
        }
