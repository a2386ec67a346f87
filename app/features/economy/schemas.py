"""Request and response shapes of the economy and operator routes; the response schemas document
(and dump) the bodies `dashboard.py` and the views build."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, Timestamp
from app.features.identity.service import PLANS


class HistoryQuerySchema(BaseSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=500))


class DepositSchema(BaseSchema):
    amount = fields.Float(required=True, validate=validate.Range(min=0.01, max=100_000_000))
    reason = fields.String(required=True, validate=validate.Length(min=5, max=500))
    paymentMethod = fields.String(allow_none=True, validate=validate.Length(max=50))


class PlanSchema(BaseSchema):
    planType = fields.String(
        required=True, validate=validate.OneOf(["ESSENTIAL", "PROFESSIONAL", "essential", "professional"])
    )


# --- responses (contract §10, store contract §S6 and §S10) ---------------------------------------

_HEALTH = validate.OneOf(["healthy", "warning", "critical", "excess"])
_PLAN = validate.OneOf(PLANS)


class DepositItemSchema(ma.Schema):
    id = fields.String()
    amount = fields.Float(metadata={"description": "BRL"})
    status = fields.String(validate=validate.OneOf(["completed", "pending", "failed"]))
    payment_method = fields.String(metadata={"description": "Left out when none was recorded"})
    deposited_at = Timestamp()
    resulting_balance = fields.Float(allow_none=True, metadata={"description": "The fund right after it"})


class _WalletBalanceSchema(ma.Schema):
    total_loaded = fields.Float()
    total_spent = fields.Float()
    available_balance = fields.Float()
    percentage_of_ideal = fields.Float()
    status = fields.String(validate=_HEALTH)


class _PrizeFundSchema(ma.Schema):
    current_balance = fields.Float()
    avg_monthly_consumption = fields.Float()
    runway_days = fields.Integer(metadata={"description": "999 when nothing was consumed"})
    status = fields.String(validate=_HEALTH)


class _RedeemableCoinsSchema(ma.Schema):
    total_in_circulation = fields.Integer()
    equivalent_in_brl = fields.Float()
    coverage_index = fields.Float()
    status = fields.String(validate=_HEALTH)


class _ComplimentEngagementSchema(ma.Schema):
    distributed_this_week = fields.Integer()
    used = fields.Integer()
    wasted = fields.Integer()
    usage_rate = fields.Float()
    status = fields.String(validate=_HEALTH)


class _RedemptionRateSchema(ma.Schema):
    coins_redeemed_this_month = fields.Integer()
    coins_issued_this_month = fields.Integer()
    redemption_percentage = fields.Float()
    status = fields.String(validate=_HEALTH)


class _AlertSchema(ma.Schema):
    id = fields.String()
    priority = fields.String(validate=validate.OneOf(["critical", "warning", "info"]))
    title = fields.String()
    description = fields.String()
    recommended_action = fields.String()
    dismissible = fields.Boolean()


class _SuggestedDepositSchema(ma.Schema):
    amount = fields.Integer(metadata={"description": "BRL, rounded up"})
    reason = fields.String()
    target_runway_days = fields.Integer()


class EconomyDashboardSchema(ma.Schema):
    wallet_balance = fields.Nested(_WalletBalanceSchema)
    prize_fund = fields.Nested(_PrizeFundSchema)
    redeemable_coins = fields.Nested(_RedeemableCoinsSchema)
    compliment_engagement = fields.Nested(_ComplimentEngagementSchema)
    redemption_rate = fields.Nested(_RedemptionRateSchema)
    alerts = fields.List(fields.Nested(_AlertSchema))
    deposit_history = fields.List(fields.Nested(DepositItemSchema), metadata={"description": "The last 10"})
    suggested_deposit = fields.Nested(_SuggestedDepositSchema, allow_none=True)
    coin_value_brl = fields.Float(metadata={"description": "What one coin is worth in BRL"})


class WalletHistorySchema(ma.Schema):
    deposits = fields.List(fields.Nested(DepositItemSchema), metadata={"description": "Newest first"})
    total = fields.Integer(metadata={"description": "Every deposit of the company"})


class _WalletSchema(ma.Schema):
    companyId = fields.String()
    balance = fields.Float(metadata={"description": "BRL"})
    totalDeposited = fields.Float()
    totalSpent = fields.Float()
    isFrozen = fields.Boolean()
    ledgerBalance = fields.Float(metadata={"description": "The ledger's sum (equals balance)"})


class _DepositedSchema(_WalletSchema):
    depositId = fields.String()


class CompanyWalletSchema(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_WalletSchema)


class DepositedSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    data = fields.Nested(_DepositedSchema)


class _PlanSchema(ma.Schema):
    companyId = fields.String()
    planType = fields.String(validate=_PLAN)
    isActive = fields.Boolean()


class CompanyPlanSchema(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(_PlanSchema)


class _PlanChangedSchema(ma.Schema):
    companyId = fields.String()
    planType = fields.String(validate=_PLAN)


class PlanChangedSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    data = fields.Nested(_PlanChangedSchema)
