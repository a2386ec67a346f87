"""The voucher catalogue sync: the provider's products (available in Brazil, in BRL) upserted into
`voucher_products` by (provider, external id), one global voucher prize per product, and what the
provider no longer offers deactivated. Idempotent: a second run changes nothing."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.features.economy import service as economy
from app.features.store.flows import ensure_global_prize
from app.features.store.models import Prize, VoucherProduct
from app.features.vouchers import providers


def sync_catalogue(session: Session) -> dict[str, Any]:
    provider = providers.provider()
    products = provider.list_products()  # network first, then one short transaction
    now = utcnow()
    existing = {
        p.external_id: p
        for p in session.scalars(
            select(VoucherProduct).where(VoucherProduct.provider == provider.name).with_for_update()
        )
    }
    synced = created_prizes = reactivated = 0
    seen: set[str] = set()
    for item in products:
        seen.add(item.external_id)
        product = existing.get(item.external_id)
        if product is None:
            product = VoucherProduct(
                provider=provider.name,
                external_id=item.external_id,
                name=item.name,
                description=item.description,
                brand=item.brand,
                images=item.images,
                category="voucher",
                min_value_cents=item.min_cents,
                max_value_cents=item.max_cents,
                currency=item.currency,
                countries=item.countries,
                is_active=True,
            )
            session.add(product)
        else:
            # Name, range, currency and countries follow the provider; description, brand, images
            # and is_active keep an operator's edits.
            product.name = item.name
            product.min_value_cents = item.min_cents
            product.max_value_cents = item.max_cents
            product.currency = item.currency
            product.countries = item.countries
            if not product.images and item.images:
                product.images = item.images
        product.last_sync_at = now
        session.flush()
        synced += 1
        prize = session.scalars(
            select(Prize).where(Prize.voucher_product_id == product.id, Prize.company_id.is_(None))
        ).first()
        if prize is None:
            ensure_global_prize(session, product)
            created_prizes += 1
        elif not prize.is_active and product.is_active:
            prize.is_active = True
            prize.coin_price = economy.cents_to_coins(product.min_value_cents)
            prize.voucher_value_cents = product.min_value_cents
            reactivated += 1
    gone = [p.id for ext, p in existing.items() if ext not in seen and p.is_active]
    deactivated_prizes = 0
    if gone:
        session.execute(update(VoucherProduct).where(VoucherProduct.id.in_(gone)).values(is_active=False))
        deactivated_prizes = int(
            cast(
                CursorResult[Any],
                session.execute(
                    update(Prize)
                    .where(
                        Prize.voucher_product_id.in_(gone),
                        Prize.company_id.is_(None),
                        Prize.is_active.is_(True),
                    )
                    .values(is_active=False)
                ),
            ).rowcount
            or 0
        )
    return {
        "synced": synced,
        "syncedProducts": synced,
        "deactivated": len(gone),
        "deactivatedProducts": len(gone),
        "deactivatedPrizes": deactivated_prizes,
        "createdPrizes": created_prizes,
        "reactivatedPrizes": reactivated,
        "total": len(products),
        "provider": provider.name,
    }
