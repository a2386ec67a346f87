"""Shapes of /admin/company/info and /admin/company/coin-economy (contract §9)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.api import HTTP_URL, BaseSchema, UtcDateTime
from app.features.company.service import is_valid_timezone


class CompanyInfoSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    logo_url = fields.String(allow_none=True)
    timezone = fields.String()
    is_active = fields.Boolean()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class CompanyInfoUpdatedSchema(ma.Schema):
    name = fields.String()
    logo_url = fields.String(allow_none=True)
    timezone = fields.String()


class CompanyInfoBody(BaseSchema):
    name = fields.String(validate=validate.Length(min=3, max=100))
    # null or "" clears the logo (the UI sends "" after a removal).
    logo_url = fields.String(allow_none=True, validate=validate.Length(max=2048))
    timezone = fields.String(metadata={"description": "IANA time zone name, e.g. America/Sao_Paulo"})

    @ma.validates("name")
    def _name_not_blank(self, value: str, **_: object) -> None:
        if len(value.strip()) < 3:
            raise ma.ValidationError("Name must have at least 3 non-blank characters.")

    @ma.validates("logo_url")
    def _logo_url(self, value: str | None, **_: object) -> None:
        if value:
            HTTP_URL(value)

    @ma.validates("timezone")
    def _timezone(self, value: str, **_: object) -> None:
        if not is_valid_timezone(value):
            raise ma.ValidationError("Not a valid IANA time zone name (e.g. America/Sao_Paulo).")


class CoinEconomySchema(ma.Schema):
    weekly_renewal_amount = fields.Integer()
    renewal_day = fields.Integer(metadata={"description": "1 = Monday … 7 = Sunday"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class WholeNumber(fields.Integer):
    """An integer, also from a numeric string; 100.5 is refused instead of silently truncated."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class CoinEconomyBody(BaseSchema):
    weekly_renewal_amount = WholeNumber(validate=validate.Range(min=50, max=500))
    renewal_day = WholeNumber(validate=validate.Range(min=1, max=7))
