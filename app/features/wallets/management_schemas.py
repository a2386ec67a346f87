"""Schemas of the operator wallet routes (contract §5 reset, §10 wallet management)."""

from __future__ import annotations

import marshmallow as ma

from app.api import BaseSchema, UtcDateTime


class ResetQuerySchema(BaseSchema):
    companyId = ma.fields.String(
        validate=ma.validate.Length(min=1, max=32),
        metadata={"description": "Reset one company; without it, every active company"},
    )


class CompanyResetSchema(BaseSchema):
    message = ma.fields.String(required=True)
    companyId = ma.fields.String(required=True)
    companyName = ma.fields.String(required=True)
    walletsUpdated = ma.fields.Integer(required=True)
    weeklyLimit = ma.fields.Integer(required=True)
    resetBy = ma.fields.String(required=True)
    alreadyReset = ma.fields.Boolean(
        metadata={"description": "This week's reset had already happened: nothing changed (extra field)"}
    )


class AllResetSchema(BaseSchema):
    message = ma.fields.String(required=True)
    companiesUpdated = ma.fields.Integer(required=True)
    walletsUpdated = ma.fields.Integer(required=True)
    resetBy = ma.fields.String(required=True)
    companiesAlreadyReset = ma.fields.Integer(metadata={"description": "Extra field"})


class ExpireQuerySchema(BaseSchema):
    dryRun = ma.fields.Boolean(load_default=False)


class UserExpirationSchema(BaseSchema):
    userId = ma.fields.String(required=True)
    userName = ma.fields.String(required=True)
    coinsExpired = ma.fields.Integer(required=True)
    transactions = ma.fields.Integer(required=True, metadata={"description": "Credit lots expired"})


class ExpireDataSchema(BaseSchema):
    usersAffected = ma.fields.Integer(required=True)
    totalCoinsExpired = ma.fields.Integer(required=True)
    expirationsByUser = ma.fields.List(ma.fields.Nested(UserExpirationSchema), required=True)
    dryRun = ma.fields.Boolean(required=True)


class ExpireResponseSchema(BaseSchema):
    success = ma.fields.Boolean(required=True)
    message = ma.fields.String(required=True)
    data = ma.fields.Nested(ExpireDataSchema, required=True)


class ReportQuerySchema(BaseSchema):
    days = ma.fields.Integer(load_default=90, validate=ma.validate.Range(min=1, max=365))


class WindowSchema(BaseSchema):
    users = ma.fields.Integer(required=True)
    coins = ma.fields.Integer(required=True)


class ExpiringUserSchema(BaseSchema):
    userId = ma.fields.String(required=True)
    userName = ma.fields.String(required=True)
    coinsExpiring = ma.fields.Integer(required=True)
    earliestExpiration = UtcDateTime(required=True)


class ReportDataSchema(BaseSchema):
    next30Days = ma.fields.Nested(WindowSchema, required=True)
    next90Days = ma.fields.Nested(WindowSchema, required=True)
    details = ma.fields.List(ma.fields.Nested(ExpiringUserSchema), required=True)


class ReportResponseSchema(BaseSchema):
    success = ma.fields.Boolean(required=True)
    message = ma.fields.String(required=True)
    data = ma.fields.Nested(ReportDataSchema, required=True)
