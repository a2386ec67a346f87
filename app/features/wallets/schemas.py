"""Wallet request/response schemas (contract §5), plus the ISO-`Z` datetime field."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.api import BaseSchema, UtcDateTime
from app.features.wallets.models import BalanceType, TransactionType


class ExpiringDetailSchema(BaseSchema):
    amount = ma.fields.Integer(required=True)
    expiresAt = UtcDateTime(required=True)
    expirationDate = UtcDateTime(required=True, metadata={"description": "Same as expiresAt (UI name)"})
    daysLeft = ma.fields.Integer(required=True)
    isUrgent = ma.fields.Boolean(required=True)
    source = ma.fields.String(metadata={"description": "Reason of the credit the coins came from"})


class ExpiringCoinsSchema(BaseSchema):
    next30Days = ma.fields.Integer(required=True, metadata={"description": "Coins expiring within 30 days"})
    next90Days = ma.fields.Integer(required=True, metadata={"description": "Coins expiring within 90 days"})
    urgentExpiration = ma.fields.Boolean(
        required=True, metadata={"description": "Some coins expire within 7 days"}
    )
    details = ma.fields.List(ma.fields.Nested(ExpiringDetailSchema), required=True)


class WalletBalanceSchema(BaseSchema):
    complimentBalance = ma.fields.Integer(required=True, metadata={"description": "Weekly allowance to give"})
    redeemableBalance = ma.fields.Integer(required=True, metadata={"description": "Coins received"})
    expiringCoins = ma.fields.Nested(ExpiringCoinsSchema, required=True)


class TransactionQuerySchema(BaseSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=100))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    balanceType = ma.fields.String(validate=ma.validate.OneOf([t.value for t in BalanceType]))
    transactionType = ma.fields.String(validate=ma.validate.OneOf([t.value for t in TransactionType]))
    fromDate = UtcDateTime(metadata={"description": "ISO datetime, inclusive"})
    toDate = UtcDateTime(metadata={"description": "ISO datetime, inclusive"})

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("fromDate") and data.get("toDate") and data["fromDate"] > data["toDate"]:
            raise ma.ValidationError("fromDate must not be after toDate", "fromDate")


class TransactionSchema(BaseSchema):
    id = ma.fields.String(required=True)
    transactionType = ma.fields.String(attribute="transaction_type", required=True)
    balanceType = ma.fields.String(attribute="balance_type", required=True)
    amount = ma.fields.Integer(required=True)
    previousBalance = ma.fields.Integer(attribute="previous_balance", required=True)
    newBalance = ma.fields.Integer(attribute="new_balance", required=True)
    reason = ma.fields.String(required=True)
    metadata = ma.fields.Dict(attribute="metadata_", allow_none=True, required=True)
    createdAt = UtcDateTime(attribute="created_at", required=True)
    remainingAmount = ma.fields.Integer(attribute="remaining_amount", allow_none=True)
    expiresAt = UtcDateTime(attribute="expires_at", allow_none=True)


class TransactionPaginationSchema(BaseSchema):
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    offset = ma.fields.Integer(required=True)
    hasMore = ma.fields.Boolean(required=True)


class TransactionPageSchema(BaseSchema):
    transactions = ma.fields.List(ma.fields.Nested(TransactionSchema), required=True)
    pagination = ma.fields.Nested(TransactionPaginationSchema, required=True)
