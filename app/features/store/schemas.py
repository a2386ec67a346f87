"""Request shapes of the store routes (contract §S1-§S5). Unknown fields are ignored (§1.4); query
numbers and booleans arrive as strings and are coerced."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime

UFS = (
    "AC",
    "AL",
    "AP",
    "AM",
    "BA",
    "CE",
    "DF",
    "ES",
    "GO",
    "MA",
    "MT",
    "MS",
    "MG",
    "PA",
    "PB",
    "PR",
    "PE",
    "PI",
    "RJ",
    "RN",
    "RS",
    "RO",
    "RR",
    "SC",
    "SP",
    "SE",
    "TO",
)
_DIGITS = re.compile(r"\D")


class CatalogQuerySchema(BaseSchema):
    page = fields.Integer(validate=validate.Range(min=1))
    pageSize = fields.Integer(validate=validate.Range(min=1, max=100))
    category = fields.String()
    minPrice = fields.Integer(validate=validate.Range(min=0))
    maxPrice = fields.Integer(validate=validate.Range(min=0))
    search = fields.String()
    sortBy = fields.String(
        validate=validate.OneOf(["popular", "most_redeemed", "price_asc", "price_desc", "newest"])
    )


class RedeemSchema(BaseSchema):
    prizeId = fields.String(required=True, validate=validate.Length(min=1, max=64))
    variantId = fields.String(allow_none=True, validate=validate.Length(max=64))
    addressId = fields.String(allow_none=True, validate=validate.Length(max=64))


class MyRedemptionsQuerySchema(BaseSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    status = fields.String()
    fromDate = UtcDateTime()
    toDate = UtcDateTime()
    search = fields.String()


class CancelSchema(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))

    @ma.validates("reason")
    def _not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ma.ValidationError("Tell us why you are cancelling")


def _digits(value: Any) -> Any:
    return _DIGITS.sub("", value) if isinstance(value, str) else value


class AddressSchema(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=3, max=100))
    street = fields.String(required=True, validate=validate.Length(min=3, max=200))
    number = fields.String(required=True, validate=validate.Length(min=1, max=10))
    complement = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=100))
    neighborhood = fields.String(allow_none=True, load_default="", validate=validate.Length(max=100))
    city = fields.String(required=True, validate=validate.Length(min=2, max=100))
    state = fields.String(required=True)
    zipCode = fields.String(required=True)
    country = fields.String(load_default="BR")
    phone = fields.String(allow_none=True, load_default="")
    isDefault = fields.Boolean(load_default=False)

    @ma.pre_load
    def _normalise(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("name", "street", "number", "complement", "neighborhood", "city"):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip()
        if isinstance(data.get("state"), str):
            data["state"] = data["state"].strip().upper()
        if isinstance(data.get("country"), str):
            data["country"] = data["country"].strip().upper()
        for key in ("zipCode", "phone"):
            data[key] = _digits(data.get(key)) if key in data else data.get(key)
            if data[key] is None and key == "zipCode":
                data.pop(key)
        if data.get("phone") is None:
            data.pop("phone", None)
        return data

    @ma.validates_schema
    def _rules(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, str] = {}
        if data.get("state") not in UFS:
            errors["state"] = "Use a Brazilian state abbreviation (UF), e.g. SP"
        if not re.fullmatch(r"\d{8}", data.get("zipCode") or ""):
            errors["zipCode"] = "The CEP has 8 digits"
        if not re.fullmatch(r"[A-Z]{2}", data.get("country") or ""):
            errors["country"] = "Use a 2-letter country code"
        phone = data.get("phone") or ""
        if phone and not re.fullmatch(r"\d{10,11}", phone):
            errors["phone"] = "The phone has 10 or 11 digits (with area code)"
        neighborhood = data.get("neighborhood") or ""
        if neighborhood and len(neighborhood) < 2:
            errors["neighborhood"] = "At least 2 characters"
        if errors:
            raise ma.ValidationError(errors)


# --- admin --------------------------------------------------------------------------------------


class AdminPrizeQuerySchema(BaseSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(validate=validate.Range(min=0))
    page = fields.Integer(validate=validate.Range(min=1))
    search = fields.String()
    category = fields.String()
    type = fields.String()
    isActive = fields.Boolean()
    isGlobal = fields.Boolean()
    orderBy = fields.String(load_default="createdAt")
    order = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc", "ASC", "DESC"]))


class _PrizeFields(BaseSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=2000))
    type = fields.String()
    category = fields.String(allow_none=True, validate=validate.Length(max=100))
    brand = fields.String(allow_none=True, validate=validate.Length(max=100))
    coinPrice = fields.Integer(strict=False, validate=validate.Range(min=1, max=10_000_000))
    stock = fields.Integer(strict=False, validate=validate.Range(min=0, max=10_000_000))
    isActive = fields.Boolean()
    specifications = fields.Dict(keys=fields.String(), values=fields.Raw(), allow_none=True)
    images = fields.List(fields.Url(), validate=validate.Length(max=4))
    voucherProductId = fields.String(allow_none=True)

    def to_service(self, data: dict[str, Any]) -> dict[str, Any]:
        names = {
            "coinPrice": "coin_price",
            "isActive": "is_active",
            "voucherProductId": "voucher_product_id",
            "isGlobal": "is_global",
        }
        out = {names.get(k, k): v for k, v in data.items()}
        if isinstance(out.get("specifications"), dict):
            out["specifications"] = {str(k): str(v) for k, v in out["specifications"].items()}
        return out


class PrizeCreateSchema(_PrizeFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    type = fields.String(required=True)
    coinPrice = fields.Integer(required=True, strict=False, validate=validate.Range(min=1, max=10_000_000))
    stock = fields.Integer(required=True, strict=False, validate=validate.Range(min=0, max=10_000_000))
    isGlobal = fields.Boolean(load_default=False)


class PrizeUpdateSchema(_PrizeFields):
    pass


class AdminRedemptionsQuerySchema(BaseSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    search = fields.String()
    status = fields.String()
    type = fields.String()
    prizeType = fields.String()


class StatusSchema(BaseSchema):
    status = fields.String(required=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=500))


class TrackingSchema(BaseSchema):
    trackingCode = fields.String(required=True, validate=validate.Length(min=1, max=100))
    carrier = fields.String(allow_none=True, validate=validate.Length(max=100))
    notes = fields.String(allow_none=True, validate=validate.Length(max=500))


class NoteSchema(BaseSchema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AdminCancelSchema(BaseSchema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class MetricsQuerySchema(BaseSchema):
    startDate = UtcDateTime()
    endDate = UtcDateTime()


class SendToUserSchema(BaseSchema):
    userId = fields.String(required=True)
    email = fields.Email(required=True)
    prizeId = fields.String(required=True)
    customAmount = fields.Float(required=True, validate=validate.Range(min=0.01))


class _BulkUser(BaseSchema):
    userId = fields.String(required=True)
    email = fields.String(required=True)


class BulkRedeemSchema(BaseSchema):
    prizeId = fields.String(required=True)
    customAmount = fields.Float(required=True, validate=validate.Range(min=0.01))
    users = fields.List(fields.Nested(_BulkUser), load_default=list)
    allUsersSelected = fields.Boolean(load_default=False)


class VoucherProductQuerySchema(BaseSchema):
    provider = fields.String()
    category = fields.String()
    currency = fields.String()
    country = fields.String()
    isActive = fields.Boolean()
    search = fields.String()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
