"""Request and response shapes of the store routes (contract §S1-§S5). Unknown request fields are
ignored (§1.4); query numbers and booleans arrive as strings and are coerced. Response schemas
document (and dump) the bodies `present.py` builds: every key it sends is declared here, nullable
ones with `allow_none`."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, Timestamp, UtcDateTime
from app.features.store.models import Payer, PrizeType, Status, VoucherState

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


# --- responses ------------------------------------------------------------------------------------

_STATUS = validate.OneOf(Status.ALL)
_PRIZE_TYPE = validate.OneOf(PrizeType.ALL)
_ADMIN_TYPE = validate.OneOf(["voucher", "physical"])
_PAYER = validate.OneOf([Payer.USER, Payer.COMPANY])


def _status(**kwargs: Any) -> fields.String:
    return fields.String(validate=_STATUS, metadata={"description": "Lowercase"}, **kwargs)


class MessageSchema(ma.Schema):
    message = fields.String()


class VariantSchema(ma.Schema):
    id = fields.String()
    prizeId = fields.String()
    name = fields.String()
    value = fields.String()
    stock = fields.Integer()
    isActive = fields.Boolean()


class AdminPrizeSchema(ma.Schema):
    id = fields.String()
    companyId = fields.String(allow_none=True, metadata={"description": "null: a global prize"})
    name = fields.String()
    description = fields.String()
    type = fields.String(validate=_PRIZE_TYPE)
    category = fields.String(allow_none=True)
    images = fields.List(fields.String(), metadata={"description": "Image URLs (at most 4 uploaded)"})
    coinPrice = fields.Integer()
    brand = fields.String(allow_none=True)
    specifications = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    stock = fields.Integer()
    isActive = fields.Boolean()
    voucherProductId = fields.String(allow_none=True)
    createdAt = Timestamp()
    updatedAt = Timestamp()


class PrizeSchema(AdminPrizeSchema):
    variants = fields.List(fields.Nested(VariantSchema), metadata={"description": "Active, in stock"})


class CatalogSchema(ma.Schema):
    prizes = fields.List(fields.Nested(PrizeSchema))
    total = fields.Integer(metadata={"description": "With `pageSize` only"})
    page = fields.Integer(metadata={"description": "With `pageSize` only"})
    pageSize = fields.Integer(metadata={"description": "With `pageSize` only"})


class PrizeEnvelopeSchema(ma.Schema):
    prize = fields.Nested(PrizeSchema)


class CategoriesSchema(ma.Schema):
    categories = fields.List(fields.String())


class RedemptionRowSchema(ma.Schema):
    id = fields.String()
    userId = fields.String()
    prizeId = fields.String()
    variantId = fields.String(allow_none=True)
    companyId = fields.String()
    addressId = fields.String(allow_none=True)
    coinsSpent = fields.Integer()
    status = _status()
    trackingCode = fields.String(allow_none=True)
    redeemedAt = Timestamp()


class RedeemedSchema(ma.Schema):
    message = fields.String()
    redemption = fields.Nested(RedemptionRowSchema)


class TrackingEntrySchema(ma.Schema):
    id = fields.String()
    status = _status()
    notes = fields.String(allow_none=True)
    createdAt = Timestamp()


class AdminTrackingEntrySchema(TrackingEntrySchema):
    createdBy = fields.String(allow_none=True, metadata={"description": "The user who wrote it"})


class _NamedRefSchema(ma.Schema):
    id = fields.String()
    name = fields.String()


class VariantRefSchema(_NamedRefSchema):
    value = fields.String()


class MyPrizeRefSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    images = fields.List(fields.String())
    category = fields.String(metadata={"description": "'' when the prize has none"})
    type = fields.String(validate=_PRIZE_TYPE)


class MyPrizeDetailSchema(MyPrizeRefSchema):
    image = fields.String(allow_none=True, metadata={"description": "The first image"})
    description = fields.String()


class MyRedemptionSchema(RedemptionRowSchema):
    prize = fields.Nested(MyPrizeRefSchema)
    variant = fields.Nested(VariantRefSchema, allow_none=True)
    tracking = fields.List(fields.Nested(TrackingEntrySchema), metadata={"description": "Oldest first"})


class MyRedemptionDetailSchema(MyRedemptionSchema):
    prize = fields.Nested(MyPrizeDetailSchema)


class ListMetaSchema(ma.Schema):
    limit = fields.Integer()
    offset = fields.Integer()
    count = fields.Integer(metadata={"description": "Items in this page (not a total)"})


class MyRedemptionsSchema(ma.Schema):
    redemptions = fields.List(fields.Nested(MyRedemptionSchema))
    meta = fields.Nested(ListMetaSchema)


class MyRedemptionEnvelopeSchema(ma.Schema):
    redemption = fields.Nested(MyRedemptionDetailSchema)


class CancelledSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    coinsRefunded = fields.Integer()
    newBalance = fields.Integer(allow_none=True, metadata={"description": "Redeemable coins after"})


class AddressSnapshotSchema(ma.Schema):
    name = fields.String()
    street = fields.String()
    number = fields.String()
    complement = fields.String(allow_none=True)
    neighborhood = fields.String()
    city = fields.String()
    state = fields.String()
    zipCode = fields.String()
    country = fields.String()
    phone = fields.String()


class AddressOutSchema(AddressSnapshotSchema):
    id = fields.String()
    userId = fields.String()
    isDefault = fields.Boolean()
    createdAt = Timestamp()
    updatedAt = Timestamp()


class AddressesSchema(ma.Schema):
    addresses = fields.List(fields.Nested(AddressOutSchema))


class AddressEnvelopeSchema(ma.Schema):
    address = fields.Nested(AddressOutSchema)


class AddressSavedSchema(AddressEnvelopeSchema):
    message = fields.String()


# --- admin responses ------------------------------------------------------------------------------


class AdminPaginationSchema(ma.Schema):
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()
    totalPages = fields.Integer()


class AdminPrizesSchema(ma.Schema):
    prizes = fields.List(fields.Nested(AdminPrizeSchema))
    total = fields.Integer()
    pagination = fields.Nested(AdminPaginationSchema)


class AdminPrizeEnvelopeSchema(ma.Schema):
    prize = fields.Nested(AdminPrizeSchema)


class PrizeImagesSchema(ma.Schema):
    success = fields.Boolean()
    images = fields.List(fields.String(), metadata={"description": "The prize's full list of URLs"})
    message = fields.String()


class VoucherProductSchema(ma.Schema):
    id = fields.String()
    provider = fields.String()
    externalId = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String()
    brand = fields.String(allow_none=True)
    images = fields.List(fields.String())
    minValue = fields.Float(metadata={"description": "BRL"})
    maxValue = fields.Float(metadata={"description": "BRL"})
    currency = fields.String()
    countries = fields.List(fields.String())
    isActive = fields.Boolean()
    lastSyncAt = Timestamp(allow_none=True)
    createdAt = Timestamp()
    updatedAt = Timestamp()
    prizeId = fields.String(allow_none=True, metadata={"description": "Its global prize, if any"})


class VoucherProductsSchema(ma.Schema):
    success = fields.Boolean()
    items = fields.List(fields.Nested(VoucherProductSchema))
    total = fields.Integer()


class VoucherProductEnvelopeSchema(ma.Schema):
    success = fields.Boolean()
    product = fields.Nested(VoucherProductSchema)


class SyncCountsSchema(ma.Schema):
    synced = fields.Integer()
    deactivated = fields.Integer()
    total = fields.Integer()


class SyncStartedSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    jobId = fields.String()
    job_id = fields.String()
    status = fields.String(metadata={"description": "The job's status"})
    result = fields.Nested(
        SyncCountsSchema, metadata={"description": "Zeros: the job's result has the counts"}
    )


class _AdminRedemptionSchema(ma.Schema):
    """What the admin's list and detail both show of a redemption."""

    id = fields.String()
    userId = fields.String()
    prizeId = fields.String()
    prizeType = fields.String(validate=_PRIZE_TYPE)
    type = fields.String(validate=_ADMIN_TYPE)
    status = _status()
    coinsSpent = fields.Integer()
    valueBRL = fields.Float()
    paidBy = fields.String(validate=_PAYER)
    redeemedAt = Timestamp()
    trackingCode = fields.String(allow_none=True)


class AdminRedemptionItemSchema(_AdminRedemptionSchema):
    userName = fields.String(allow_none=True)
    userEmail = fields.String(allow_none=True)
    userAvatar = fields.String(allow_none=True)
    prizeName = fields.String(allow_none=True)
    prizeImage = fields.String(allow_none=True)


class AdminRedemptionsPaginationSchema(ma.Schema):
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()
    pages = fields.Integer()
    hasMore = fields.Boolean()


class AdminRedemptionsSchema(ma.Schema):
    data = fields.List(fields.Nested(AdminRedemptionItemSchema))
    pagination = fields.Nested(AdminRedemptionsPaginationSchema)


class _UserRefSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    avatar = fields.String(allow_none=True)


class _AdminPrizeRefSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    type = fields.String(validate=_PRIZE_TYPE)
    description = fields.String()


class VoucherInfoSchema(ma.Schema):
    provider = fields.String()
    voucherCode = fields.String(allow_none=True)
    voucherLink = fields.String(allow_none=True)
    status = fields.String(
        validate=validate.OneOf(VoucherState.ALL), metadata={"description": "The issuance"}
    )
    amount = fields.Float(metadata={"description": "BRL"})
    currency = fields.String()
    completedAt = Timestamp(allow_none=True)
    deliveredAt = Timestamp(allow_none=True)
    redeemedAt = Timestamp(allow_none=True, metadata={"description": "Same as deliveredAt"})
    expiresAt = Timestamp(allow_none=True)
    errorMessage = fields.String(allow_none=True)


class AdminRedemptionDetailSchema(_AdminRedemptionSchema):
    user = fields.Nested(_UserRefSchema, allow_none=True)
    prize = fields.Nested(_AdminPrizeRefSchema, allow_none=True)
    variantId = fields.String(allow_none=True)
    variant = fields.Nested(_NamedRefSchema, allow_none=True)
    addressId = fields.String(allow_none=True)
    address = fields.Nested(
        AddressSnapshotSchema, allow_none=True, metadata={"description": "As it was at redeem time"}
    )
    trackingCarrier = fields.String(allow_none=True)
    tracking = fields.List(fields.Nested(AdminTrackingEntrySchema))
    voucherRedemption = fields.Nested(VoucherInfoSchema, metadata={"description": "Vouchers only"})


class StatusUpdatedSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    redemption = fields.Nested(AdminRedemptionDetailSchema)


class TrackingSetSchema(ma.Schema):
    message = fields.String()
    redemptionId = fields.String()
    trackingCode = fields.String()
    carrier = fields.String(allow_none=True)


class NoteAddedSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    redemptionId = fields.String()
    note = fields.String()


class AdminCancelledSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
    redemptionId = fields.String()
    refundedCoins = fields.Integer()
    coinsRefunded = fields.Integer(metadata={"description": "Same as refundedCoins"})
    refundedBudget = fields.Float(metadata={"description": "BRL returned to the company's fund"})
    budgetRefunded = fields.Float(metadata={"description": "Same as refundedBudget"})


class VoucherSentSchema(ma.Schema):
    message = fields.String()
    redemptionId = fields.String()
    userId = fields.String()
    email = fields.String()
    prizeId = fields.String()
    customAmount = fields.Float(metadata={"description": "BRL"})
    status = _status()
    notes = fields.String(allow_none=True)
    jobId = fields.String(metadata={"description": "The issue job (GET /jobs/<id>)"})


class _BatchSummarySchema(ma.Schema):
    total = fields.Integer()
    successful = fields.Integer()
    failed = fields.Integer()
    queued = fields.Integer()


class _BatchResultSchema(ma.Schema):
    userId = fields.String()
    email = fields.String()
    prizeId = fields.String()
    success = fields.Boolean()
    redemptionId = fields.String()


class BatchQueuedSchema(ma.Schema):
    message = fields.String()
    summary = fields.Nested(_BatchSummarySchema)
    results = fields.List(fields.Nested(_BatchResultSchema))
    jobId = fields.String(metadata={"description": "The batch job (GET /jobs/<id>)"})


class _MetricsPeriodSchema(ma.Schema):
    startDate = Timestamp()
    endDate = Timestamp()


class _PeriodComparisonSchema(ma.Schema):
    redemptionsChange = fields.String(metadata={"example": "+12%"})
    valueChange = fields.String(metadata={"example": "+ R$ 3.00"})


class _VolumeSchema(ma.Schema):
    totalRedemptions = fields.Integer()
    totalCoinsSpent = fields.Integer()
    totalValueBRL = fields.Float()
    avgCoinsPerRedemption = fields.Float()
    periodComparison = fields.Nested(_PeriodComparisonSchema)


class _StatusCountSchema(ma.Schema):
    status = _status()
    count = fields.Integer()
    percentage = fields.Float()


class _TypeBreakdownSchema(ma.Schema):
    type = fields.String(validate=_PRIZE_TYPE)
    count = fields.Integer()
    percentage = fields.Float()
    totalValueBRL = fields.Float()
    statusBreakdown = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "status → count"}
    )


class _TopPrizeSchema(ma.Schema):
    prizeId = fields.String()
    prizeName = fields.String()
    prizeType = fields.String(allow_none=True, validate=_PRIZE_TYPE)
    redemptionCount = fields.Integer()
    totalCoinsSpent = fields.Integer()
    totalValueBRL = fields.Float()


class _RedeemerEngagementSchema(ma.Schema):
    uniqueRedeemers = fields.Integer()
    totalActiveUsers = fields.Integer()
    percentageOfActive = fields.Float()
    repeatRedeemers = fields.Integer()
    repeatRate = fields.Float()
    avgRedemptionsPerUser = fields.Float()


class _FinancialImpactSchema(ma.Schema):
    totalCost = fields.Float()
    voucherCost = fields.Float()
    productCost = fields.Float()
    physicalCost = fields.Float(metadata={"description": "Same as productCost (the UI reads this one)"})
    avgCostPerRedemption = fields.Float()
    projectedMonthlyCost = fields.Float()


class RedemptionMetricsSchema(ma.Schema):
    """BRL figures leave out cancelled, failed and refunded redemptions; counts include them."""

    period = fields.Nested(_MetricsPeriodSchema)
    volume = fields.Nested(_VolumeSchema)
    statusBreakdown = fields.List(fields.Nested(_StatusCountSchema))
    typeBreakdown = fields.List(fields.Nested(_TypeBreakdownSchema))
    topPrizes = fields.List(fields.Nested(_TopPrizeSchema), metadata={"description": "The top 5"})
    userEngagement = fields.Nested(_RedeemerEngagementSchema)
    financialImpact = fields.Nested(_FinancialImpactSchema)
