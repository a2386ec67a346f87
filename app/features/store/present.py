"""Response bodies of the store routes (contract §S1-§S5): bare objects, camelCase, lowercase
statuses, `…Z` timestamps, BRL as numbers with two decimals. Views call these; services never do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.api import format_utc
from app.features.identity.models import User
from app.features.store.models import (
    Address,
    Prize,
    PrizeType,
    PrizeVariant,
    Redemption,
    RedemptionTracking,
    VoucherProduct,
    VoucherRedemption,
)


def _ts(value: datetime | None) -> str | None:
    return format_utc(value) if value is not None else None


def brl(cents: int | None) -> float:
    return round((cents or 0) / 100, 2)


def variant(v: PrizeVariant) -> dict[str, Any]:
    return {
        "id": v.id,
        "prizeId": v.prize_id,
        "name": v.name,
        "value": v.value,
        "stock": v.stock,
        "isActive": v.is_active,
    }


def prize(p: Prize, variants: list[PrizeVariant] | None = None) -> dict[str, Any]:
    body = admin_prize(p)
    body["variants"] = [variant(v) for v in variants or []]
    return body


def admin_prize(p: Prize) -> dict[str, Any]:
    return {
        "id": p.id,
        "companyId": p.company_id,
        "name": p.name,
        "description": p.description,
        "type": p.type,
        "category": p.category,
        "images": list(p.images or []),
        "coinPrice": p.coin_price,
        "brand": p.brand,
        "specifications": p.specifications,
        "stock": p.stock,
        "isActive": p.is_active,
        "voucherProductId": p.voucher_product_id,
        "createdAt": _ts(p.created_at),
        "updatedAt": _ts(p.updated_at),
    }


def redemption_row(r: Redemption) -> dict[str, Any]:
    return {
        "id": r.id,
        "userId": r.user_id,
        "prizeId": r.prize_id,
        "variantId": r.variant_id,
        "companyId": r.company_id,
        "addressId": r.address_id,
        "coinsSpent": r.coins_spent,
        "status": r.status,
        "trackingCode": r.tracking_code,
        "redeemedAt": _ts(r.redeemed_at),
    }


def tracking(rows: list[RedemptionTracking], *, with_author: bool = False) -> list[dict[str, Any]]:
    items = []
    for t in rows:
        item: dict[str, Any] = {
            "id": t.id,
            "status": t.status,
            "notes": t.notes,
            "createdAt": _ts(t.created_at),
        }
        if with_author:
            item["createdBy"] = t.created_by
        items.append(item)
    return items


def _variant_ref(v: PrizeVariant | None) -> dict[str, Any] | None:
    return {"id": v.id, "name": v.name, "value": v.value} if v else None


def my_item(
    r: Redemption, p: Prize, v: PrizeVariant | None, track: list[RedemptionTracking]
) -> dict[str, Any]:
    return {
        **redemption_row(r),
        "prize": {
            "id": p.id,
            "name": p.name,
            "images": list(p.images or []),
            "category": p.category or "",
            "type": p.type,
        },
        "variant": _variant_ref(v),
        "tracking": tracking(track),
    }


def my_detail(
    r: Redemption, p: Prize, v: PrizeVariant | None, track: list[RedemptionTracking]
) -> dict[str, Any]:
    images = list(p.images or [])
    return {
        **redemption_row(r),
        "prize": {
            "id": p.id,
            "name": p.name,
            "images": images,
            "image": images[0] if images else None,
            "category": p.category or "",
            "type": p.type,
            "description": p.description,
        },
        "variant": _variant_ref(v),
        "tracking": tracking(track),
    }


def admin_type(r: Redemption) -> str:
    return "voucher" if r.kind == PrizeType.VOUCHER else "physical"


def admin_item(r: Redemption, u: User | None, p: Prize | None) -> dict[str, Any]:
    images = list(p.images or []) if p else []
    return {
        "id": r.id,
        "userId": r.user_id,
        "userName": u.name if u else None,
        "userEmail": u.email if u else None,
        "userAvatar": u.avatar if u else None,
        "prizeId": r.prize_id,
        "prizeName": p.name if p else None,
        "prizeType": r.kind,
        "prizeImage": images[0] if images else None,
        "type": admin_type(r),
        "status": r.status,
        "coinsSpent": r.coins_spent,
        "valueBRL": brl(r.value_cents),
        "paidBy": r.paid_by,
        "redeemedAt": _ts(r.redeemed_at),
        "trackingCode": r.tracking_code,
    }


def voucher_info(v: VoucherRedemption | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "provider": v.provider,
        "voucherCode": v.voucher_code,
        "voucherLink": v.voucher_link,
        "status": v.status,
        "amount": brl(v.amount_cents),
        "currency": v.currency,
        "completedAt": _ts(v.completed_at),
        "deliveredAt": _ts(v.delivered_at),
        "redeemedAt": _ts(v.delivered_at),
        "expiresAt": _ts(v.expires_at),
        "errorMessage": v.error_message,
    }


def admin_detail(
    r: Redemption,
    u: User | None,
    p: Prize | None,
    v: PrizeVariant | None,
    voucher: VoucherRedemption | None,
    track: list[RedemptionTracking],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": r.id,
        "userId": r.user_id,
        "user": {"id": u.id, "name": u.name, "email": u.email, "avatar": u.avatar} if u else None,
        "prizeId": r.prize_id,
        "prize": {"id": p.id, "name": p.name, "type": p.type, "description": p.description} if p else None,
        "prizeType": r.kind,
        "type": admin_type(r),
        "variantId": r.variant_id,
        "variant": {"id": v.id, "name": v.name} if v else None,
        "status": r.status,
        "coinsSpent": r.coins_spent,
        "valueBRL": brl(r.value_cents),
        "paidBy": r.paid_by,
        "redeemedAt": _ts(r.redeemed_at),
        "addressId": r.address_id,
        "address": r.address_snapshot,
        "trackingCode": r.tracking_code,
        "trackingCarrier": r.tracking_carrier,
        "tracking": tracking(track, with_author=True),
    }
    if voucher is not None:
        body["voucherRedemption"] = voucher_info(voucher)
    return body


def address(a: Address) -> dict[str, Any]:
    return {
        "id": a.id,
        "userId": a.user_id,
        "name": a.name,
        "street": a.street,
        "number": a.number,
        "complement": a.complement,
        "neighborhood": a.neighborhood,
        "city": a.city,
        "state": a.state,
        "zipCode": a.zip_code,
        "country": a.country,
        "phone": a.phone,
        "isDefault": a.is_default,
        "createdAt": _ts(a.created_at),
        "updatedAt": _ts(a.updated_at),
    }


def voucher_product(p: VoucherProduct, prize_id: str | None = None) -> dict[str, Any]:
    return {
        "id": p.id,
        "provider": p.provider,
        "externalId": p.external_id,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "brand": p.brand,
        "images": list(p.images or []),
        "minValue": brl(p.min_value_cents),
        "maxValue": brl(p.max_value_cents),
        "currency": p.currency,
        "countries": list(p.countries or []),
        "isActive": p.is_active,
        "lastSyncAt": _ts(p.last_sync_at),
        "createdAt": _ts(p.created_at),
        "updatedAt": _ts(p.updated_at),
        "prizeId": prize_id,
    }
