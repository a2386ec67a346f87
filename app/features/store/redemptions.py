"""Redemption rows: reads scoped by owner or company, the guarded status transition, tracking
entries and the voucher issuance record. Money never moves here (see `flows.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, or_, select, update
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.features.identity.models import User
from app.features.store.models import (
    Prize,
    PrizeType,
    PrizeVariant,
    Redemption,
    RedemptionTracking,
    Status,
    VoucherRedemption,
)

NOT_FOUND = "Redemption not found"


def add_tracking(
    session: Session, redemption_id: str, status: str, notes: str | None, created_by: str | None = None
) -> RedemptionTracking:
    row = RedemptionTracking(redemption_id=redemption_id, status=status, notes=notes, created_by=created_by)
    session.add(row)
    session.flush()
    return row


def transition(
    session: Session,
    redemption_id: str,
    sources: tuple[str, ...] | list[str],
    target: str,
    *,
    notes: str | None,
    actor: str | None = None,
    scope: ColumnElement[bool] | None = None,
    values: dict[str, Any] | None = None,
) -> Redemption | None:
    """Move the redemption to `target` if, at this instant, it is in one of `sources` (one
    conditional UPDATE, so of two racing transitions exactly one wins). Returns the updated row, or
    None when nothing changed; writes the tracking entry only when it changed."""
    stmt = (
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status.in_(list(sources)))
        .values(status=target, updated_at=func.now(), **(values or {}))
        .returning(Redemption)
        .execution_options(populate_existing=True)
    )
    if scope is not None:
        stmt = stmt.where(scope)
    changed = session.scalars(stmt).first()
    if changed is not None:
        add_tracking(session, redemption_id, target, notes, actor)
    return changed


def for_user(session: Session, user_id: str, redemption_id: str) -> Redemption:
    found = session.scalars(
        select(Redemption).where(Redemption.id == redemption_id, Redemption.user_id == user_id)
    ).first()
    if found is None:
        raise NotFound(NOT_FOUND)
    return found


def for_company(session: Session, company_id: str, redemption_id: str, *, lock: bool = False) -> Redemption:
    stmt = select(Redemption).where(Redemption.id == redemption_id, Redemption.company_id == company_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    found = session.scalars(stmt).first()
    if found is None:
        raise NotFound(NOT_FOUND)
    return found


def by_idempotency_key(session: Session, user_id: str, key: str) -> Redemption | None:
    return session.scalars(
        select(Redemption).where(Redemption.user_id == user_id, Redemption.idempotency_key == key)
    ).first()


@dataclass
class MyQuery:
    limit: int = 12
    offset: int = 0
    status: str | None = None
    from_date: datetime | None = None
    to_date: datetime | None = None
    search: str | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_mine(session: Session, user_id: str, q: MyQuery) -> list[Redemption]:
    stmt = select(Redemption).where(Redemption.user_id == user_id)
    if q.status:
        stmt = stmt.where(Redemption.status == q.status)
    if q.from_date:
        stmt = stmt.where(Redemption.redeemed_at >= q.from_date)
    if q.to_date:
        stmt = stmt.where(Redemption.redeemed_at <= q.to_date)
    if q.search:
        stmt = stmt.join(Prize, Prize.id == Redemption.prize_id).where(
            Prize.name.ilike(_like(q.search), escape="\\")
        )
    stmt = stmt.order_by(Redemption.redeemed_at.desc(), Redemption.id.desc()).offset(q.offset).limit(q.limit)
    return list(session.scalars(stmt))


@dataclass
class AdminQuery:
    limit: int = 20
    offset: int = 0
    search: str | None = None
    status: str | None = None
    type: str | None = None


def list_company(session: Session, company_id: str, q: AdminQuery) -> tuple[list[Redemption], int]:
    stmt = (
        select(Redemption)
        .join(User, User.id == Redemption.user_id)
        .join(Prize, Prize.id == Redemption.prize_id)
        .where(Redemption.company_id == company_id)
    )
    if q.status:
        stmt = stmt.where(Redemption.status == q.status)
    if q.type:
        stmt = stmt.where(Redemption.kind == q.type)
    if q.search:
        pattern = _like(q.search)
        stmt = stmt.where(
            or_(
                User.name.ilike(pattern, escape="\\"),
                User.email.ilike(pattern, escape="\\"),
                Prize.name.ilike(pattern, escape="\\"),
                cast(Redemption.id, String).startswith(q.search.strip()),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Redemption.redeemed_at.desc(), Redemption.id.desc()).offset(q.offset).limit(q.limit)
    )
    return list(rows), int(total)


def tracking_of(session: Session, redemption_ids: list[str]) -> dict[str, list[RedemptionTracking]]:
    found: dict[str, list[RedemptionTracking]] = {rid: [] for rid in redemption_ids}
    if not redemption_ids:
        return found
    rows = session.scalars(
        select(RedemptionTracking)
        .where(RedemptionTracking.redemption_id.in_(redemption_ids))
        .order_by(RedemptionTracking.created_at, RedemptionTracking.id)
    )
    for row in rows:
        found[row.redemption_id].append(row)
    return found


def prizes_of(session: Session, prize_ids: list[str]) -> dict[str, Prize]:
    if not prize_ids:
        return {}
    return {p.id: p for p in session.scalars(select(Prize).where(Prize.id.in_(set(prize_ids))))}


def variants_of(session: Session, variant_ids: list[str]) -> dict[str, PrizeVariant]:
    ids = {v for v in variant_ids if v}
    if not ids:
        return {}
    return {v.id: v for v in session.scalars(select(PrizeVariant).where(PrizeVariant.id.in_(ids)))}


def users_of(session: Session, user_ids: list[str]) -> dict[str, User]:
    if not user_ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(set(user_ids))))}


def vouchers_of(session: Session, redemption_ids: list[str]) -> dict[str, VoucherRedemption]:
    if not redemption_ids:
        return {}
    rows = session.scalars(
        select(VoucherRedemption).where(VoucherRedemption.redemption_id.in_(redemption_ids))
    )
    return {v.redemption_id: v for v in rows}


def lock_voucher(session: Session, redemption_id: str) -> VoucherRedemption | None:
    return session.scalars(
        select(VoucherRedemption)
        .where(VoucherRedemption.redemption_id == redemption_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def voucher_by_reward(session: Session, provider: str, resource_id: str) -> VoucherRedemption | None:
    """The voucher a provider resource (a reward, or an order) belongs to."""
    return session.scalars(
        select(VoucherRedemption).where(
            VoucherRedemption.provider == provider,
            or_(
                VoucherRedemption.provider_reward_id == resource_id,
                VoucherRedemption.provider_order_id == resource_id,
            ),
        )
    ).first()


def is_voucher(redemption: Redemption) -> bool:
    return redemption.kind == PrizeType.VOUCHER


def is_open_product(redemption: Redemption) -> bool:
    return redemption.kind == PrizeType.PRODUCT and redemption.status in (Status.PENDING, Status.PROCESSING)
