"""The prize catalogue: what an employee may see and redeem, and the admin's prize management.

Tenancy: a company sees its own prizes and the global ones (`company_id IS NULL`); it may edit only
its own. Another company's prize answers 404, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, true, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.features.store.models import Prize, PrizeType, PrizeVariant, Redemption, VoucherProduct

PRIZE_NOT_FOUND = "Prize not found"
_TYPE_ALIASES = {"produto": PrizeType.PRODUCT, "physical": PrizeType.PRODUCT, "fisico": PrizeType.PRODUCT}


def parse_type(raw: str) -> str:
    value = raw.strip().lower()
    value = _TYPE_ALIASES.get(value, value)
    if value not in PrizeType.ALL:
        raise Invalid(f"Unknown prize type {raw!r}: use voucher or product")
    return value


def visible_to(company_id: str) -> ColumnElement[bool]:
    return or_(Prize.company_id == company_id, Prize.company_id.is_(None))


def _active_variant(prize_id: Any, in_stock: bool) -> ColumnElement[bool]:
    conditions = [PrizeVariant.prize_id == prize_id, PrizeVariant.is_active.is_(True)]
    if in_stock:
        conditions.append(PrizeVariant.stock > 0)
    return exists().where(*conditions)


def redeemable_now() -> ColumnElement[bool]:
    """Active, and something left: an in-stock active variant when the prize has active variants,
    else prize-level stock (global voucher prizes never run out)."""
    has_variants = _active_variant(Prize.id, in_stock=False)
    return and_(
        Prize.is_active.is_(True),
        or_(
            and_(has_variants, _active_variant(Prize.id, in_stock=True)),
            and_(
                ~has_variants,
                or_(Prize.stock > 0, and_(Prize.company_id.is_(None), Prize.type == PrizeType.VOUCHER)),
            ),
        ),
    )


@dataclass
class CatalogQuery:
    category: str | None = None
    search: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    sort_by: str | None = None
    page: int | None = None
    page_size: int | None = None


def list_catalog(session: Session, company_id: str, q: CatalogQuery) -> tuple[list[Prize], int]:
    stmt: Select[Prize] = select(Prize).where(visible_to(company_id), redeemable_now())
    if q.category:
        stmt = stmt.where(Prize.category == q.category)
    if q.search:
        pattern = f"%{_escape_like(q.search)}%"
        stmt = stmt.where(
            or_(Prize.name.ilike(pattern, escape="\\"), Prize.description.ilike(pattern, escape="\\"))
        )
    if q.min_price is not None:
        stmt = stmt.where(Prize.coin_price >= q.min_price)
    if q.max_price is not None:
        stmt = stmt.where(Prize.coin_price <= q.max_price)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    sort = (q.sort_by or "newest").lower()
    if sort == "price_asc":
        stmt = stmt.order_by(Prize.coin_price.asc(), Prize.created_at.desc(), Prize.id)
    elif sort == "price_desc":
        stmt = stmt.order_by(Prize.coin_price.desc(), Prize.created_at.desc(), Prize.id)
    elif sort in ("most_redeemed", "popular"):
        since = utcnow() - timedelta(days=30) if sort == "popular" else None
        counted = select(func.count(Redemption.id)).where(Redemption.prize_id == Prize.id)
        if since is not None:
            counted = counted.where(Redemption.redeemed_at >= since)
        stmt = stmt.order_by(counted.scalar_subquery().desc(), Prize.created_at.desc(), Prize.id)
    else:  # newest (and anything unknown)
        stmt = stmt.order_by(Prize.created_at.desc(), Prize.id)
    if q.page_size:
        stmt = stmt.offset(((q.page or 1) - 1) * q.page_size).limit(q.page_size)
    return list(session.scalars(stmt)), int(total)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def categories(session: Session, company_id: str) -> list[str]:
    rows = session.scalars(
        select(Prize.category)
        .where(visible_to(company_id), redeemable_now(), Prize.category.is_not(None), Prize.category != "")
        .distinct()
        .order_by(Prize.category)
    )
    return [r for r in rows if r]


def active_variants(
    session: Session, prize_ids: list[str], in_stock: bool = True
) -> dict[str, list[PrizeVariant]]:
    if not prize_ids:
        return {}
    stmt = select(PrizeVariant).where(PrizeVariant.prize_id.in_(prize_ids), PrizeVariant.is_active.is_(True))
    if in_stock:
        stmt = stmt.where(PrizeVariant.stock > 0)
    found: dict[str, list[PrizeVariant]] = {pid: [] for pid in prize_ids}
    for variant in session.scalars(stmt.order_by(PrizeVariant.name, PrizeVariant.id)):
        found[variant.prize_id].append(variant)
    return found


def visible_prize(session: Session, company_id: str, prize_id: str, *, active_only: bool = True) -> Prize:
    """A prize the company may see (own or global); 404 otherwise (inactive too, when active_only)."""
    stmt = select(Prize).where(Prize.id == prize_id, visible_to(company_id))
    if active_only:
        stmt = stmt.where(Prize.is_active.is_(True))
    prize = session.scalars(stmt).first()
    if prize is None:
        raise NotFound(PRIZE_NOT_FOUND)
    return prize


def has_active_variants(session: Session, prize_id: str) -> bool:
    return bool(session.scalar(select(_active_variant(prize_id, in_stock=False))))


def variant_of(session: Session, prize_id: str, variant_id: str) -> PrizeVariant:
    variant = session.scalars(
        select(PrizeVariant).where(PrizeVariant.id == variant_id, PrizeVariant.prize_id == prize_id)
    ).first()
    if variant is None:
        raise Invalid("Variant not found", "VARIANT_NOT_FOUND")
    if not variant.is_active:
        raise Invalid("Variant is not active", "VARIANT_INACTIVE")
    return variant


def take_stock(session: Session, prize: Prize, variant_id: str | None) -> bool:
    """Decrement the variant's (or the prize's) stock by one, only while some is left (one
    conditional UPDATE: two last-unit redemptions can never both win). False when out of stock.
    Global voucher prizes are unlimited: nothing to take (returns True, takes nothing)."""
    if variant_id is not None:
        taken = session.execute(
            update(PrizeVariant)
            .where(PrizeVariant.id == variant_id, PrizeVariant.stock > 0, PrizeVariant.is_active.is_(True))
            .values(stock=PrizeVariant.stock - 1)
            .returning(PrizeVariant.id)
        ).first()
        return taken is not None
    if prize.unlimited_stock:
        return True
    taken = session.execute(
        update(Prize)
        .where(Prize.id == prize.id, Prize.stock > 0, Prize.is_active.is_(True))
        .values(stock=Prize.stock - 1, updated_at=func.now())
        .returning(Prize.id)
    ).first()
    return taken is not None


def restock(session: Session, prize_id: str, variant_id: str | None) -> None:
    """Give one unit back (a cancelled or failed redemption that had taken one)."""
    if variant_id is not None:
        session.execute(
            update(PrizeVariant).where(PrizeVariant.id == variant_id).values(stock=PrizeVariant.stock + 1)
        )
    else:
        session.execute(
            update(Prize).where(Prize.id == prize_id).values(stock=Prize.stock + 1, updated_at=func.now())
        )


# --- admin ---------------------------------------------------------------------------------------


@dataclass
class AdminPrizeQuery:
    limit: int = 20
    offset: int = 0
    search: str | None = None
    category: str | None = None
    type: str | None = None
    is_active: bool | None = None
    is_global: bool | None = None
    order_by: str = "createdAt"
    order: str = "desc"


_ORDER_COLUMNS = {
    "createdAt": Prize.created_at,
    "updatedAt": Prize.updated_at,
    "coinPrice": Prize.coin_price,
    "name": Prize.name,
}


def admin_list(session: Session, company_id: str, q: AdminPrizeQuery) -> tuple[list[Prize], int]:
    # The tenant scope is always ANDed with every filter (the old API let `search` replace it).
    scope: ColumnElement[bool] = visible_to(company_id)
    if q.is_global is True:
        scope = Prize.company_id.is_(None)
    elif q.is_global is False:
        scope = Prize.company_id == company_id
    stmt = select(Prize).where(scope)
    if q.search:
        pattern = f"%{_escape_like(q.search)}%"
        stmt = stmt.where(
            or_(Prize.name.ilike(pattern, escape="\\"), Prize.description.ilike(pattern, escape="\\"))
        )
    if q.category:
        stmt = stmt.where(Prize.category.ilike(_escape_like(q.category), escape="\\"))
    if q.type:
        stmt = stmt.where(Prize.type == parse_type(q.type))
    if q.is_active is not None:
        stmt = stmt.where(Prize.is_active.is_(true() if q.is_active else false()))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    column = _ORDER_COLUMNS.get(q.order_by, Prize.created_at)
    ordering = column.asc() if q.order.lower() == "asc" else column.desc()
    rows = session.scalars(stmt.order_by(ordering, Prize.id).offset(q.offset).limit(q.limit))
    return list(rows), int(total)


def own_prize(session: Session, company_id: str, prize_id: str, *, lock: bool = False) -> Prize:
    """A prize the company owns (global prizes are not editable: 404, as the contract says)."""
    stmt = select(Prize).where(Prize.id == prize_id, Prize.company_id == company_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    prize = session.scalars(stmt).first()
    if prize is None:
        raise NotFound(
            "Prize not found or you do not have permission to update it. "
            "Only company-owned prizes can be updated."
        )
    return prize


_EDITABLE = (
    "name",
    "description",
    "category",
    "brand",
    "coin_price",
    "stock",
    "is_active",
    "specifications",
    "images",
)


def create_prize(
    session: Session, company_id: str, data: dict[str, Any], *, may_create_global: bool
) -> Prize:
    is_global = bool(data.pop("is_global", False))
    if is_global and not may_create_global:
        raise Forbidden("Creating global prizes requires prizes:create_global", "INSUFFICIENT_PERMISSION")
    prize_type = parse_type(data.pop("type"))
    product_id = data.pop("voucher_product_id", None)
    prize = Prize(company_id=None if is_global else company_id, type=prize_type, images=[], is_active=True)
    for key in _EDITABLE:
        if key in data and data[key] is not None:
            setattr(prize, key, data[key])
    if product_id:
        if prize_type != PrizeType.VOUCHER:
            raise Invalid("Only voucher prizes can be linked to a voucher product")
        product = session.get(VoucherProduct, product_id)
        if product is None or not product.is_active:
            raise Invalid("Voucher product not found or inactive", "VOUCHER_PRODUCT_NOT_FOUND")
        prize.voucher_product_id = product.id
        prize.voucher_value_cents = product.min_value_cents
        if not prize.images:
            prize.images = list(product.images or [])
    session.add(prize)
    session.flush()
    return prize


def update_prize(session: Session, company_id: str, prize_id: str, data: dict[str, Any]) -> Prize:
    prize = own_prize(session, company_id, prize_id, lock=True)
    if "type" in data and data["type"] is not None:
        new_type = parse_type(data.pop("type"))
        if new_type != prize.type and prize.voucher_product_id:
            raise Conflict("A prize linked to a voucher product stays a voucher")
        prize.type = new_type
    data.pop("images", None)  # images change through the image routes only
    for key in _EDITABLE:
        if key in data and data[key] is not None:
            setattr(prize, key, data[key])
    if "specifications" in data and data["specifications"] is None:
        prize.specifications = None
    session.flush()
    return prize


def deactivate_prize(session: Session, company_id: str, prize_id: str) -> None:
    prize = own_prize(session, company_id, prize_id, lock=True)
    prize.is_active = False
    session.flush()


def voucher_product_prizes(session: Session, product_ids: list[str]) -> dict[str, str]:
    """product id -> id of its global prize."""
    if not product_ids:
        return {}
    rows = session.execute(
        select(Prize.voucher_product_id, Prize.id).where(
            Prize.voucher_product_id.in_(product_ids), Prize.company_id.is_(None)
        )
    ).all()
    return {pid: prize_id for pid, prize_id in rows if pid}


def voucher_product(session: Session, product_id: str) -> VoucherProduct:
    product = session.get(VoucherProduct, product_id)
    if product is None:
        raise NotFound("Product not found")
    return product


def resolve_voucher_product(session: Session, company_id: str, some_id: str) -> VoucherProduct:
    """A VoucherProduct id, or the id of a visible voucher prize linked to one (contract §S5)."""
    product = session.get(VoucherProduct, some_id)
    if product is None:
        prize = session.scalars(
            select(Prize).where(Prize.id == some_id, visible_to(company_id), Prize.type == PrizeType.VOUCHER)
        ).first()
        if prize is not None and prize.voucher_product_id:
            product = session.get(VoucherProduct, prize.voucher_product_id)
    if product is None or not product.is_active:
        raise NotFound("Voucher product not found or inactive")
    return product


def list_voucher_products(
    session: Session,
    *,
    provider: str | None,
    category: str | None,
    currency: str | None,
    country: str | None,
    is_active: bool | None,
    search: str | None,
    limit: int,
    offset: int,
) -> tuple[list[VoucherProduct], int]:
    stmt = select(VoucherProduct)
    if provider:
        stmt = stmt.where(VoucherProduct.provider == provider.lower())
    if category:
        stmt = stmt.where(VoucherProduct.category == category)
    if currency:
        stmt = stmt.where(VoucherProduct.currency == currency.upper())
    if country:
        stmt = stmt.where(VoucherProduct.countries.contains([country.upper()]))
    if is_active is not None:
        stmt = stmt.where(VoucherProduct.is_active.is_(is_active))
    if search:
        pattern = f"%{_escape_like(search)}%"
        stmt = stmt.where(
            or_(
                VoucherProduct.name.ilike(pattern, escape="\\"),
                VoucherProduct.brand.ilike(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(VoucherProduct.name, VoucherProduct.id).offset(offset).limit(limit))
    return list(rows), int(total)
