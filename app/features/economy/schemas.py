"""Request shapes of the economy and operator routes."""

from __future__ import annotations

from marshmallow import fields, validate

from app.api import BaseSchema


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
