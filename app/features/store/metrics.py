"""GET /admin/redemptions/metrics (contract §S5): volume, status and type breakdowns, top prizes,
engagement and cost over a period (default: the last 30 days), compared with the period before.

BRL figures are each redemption's value: a voucher's face value, a product's coins at the one coin
rate (COIN_VALUE_CENTS). Costs leave out cancelled, failed and refunded redemptions (nothing was
spent on them); counts include every status."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api import format_utc
from app.db import utcnow
from app.errors import Invalid
from app.features.identity.models import User
from app.features.store.models import Prize, PrizeType, Redemption, Status

NOT_SPENT = (Status.CANCELLED, Status.FAILED, Status.REFUNDED)


def _brl(cents: int) -> float:
    return round(cents / 100, 2)


def _pct(part: int | float, whole: int | float) -> float:
    return round(part * 100 / whole, 2) if whole else 0.0


def redemption_metrics(
    session: Session, company_id: str, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    end = end or utcnow()
    start = start or end - timedelta(days=30)
    if start > end:
        raise Invalid("startDate must be on or before endDate", "INVALID_PERIOD")
    span = end - start  # the previous period is as long (the schema's years keep it representable)
    rows = session.execute(
        select(
            Redemption.prize_id,
            Redemption.user_id,
            Redemption.kind,
            Redemption.status,
            Redemption.coins_spent,
            Redemption.value_cents,
        ).where(
            Redemption.company_id == company_id,
            Redemption.redeemed_at >= start,
            Redemption.redeemed_at <= end,
        )
    ).all()
    previous = session.execute(
        select(func.count(), func.coalesce(func.sum(Redemption.value_cents), 0)).where(
            Redemption.company_id == company_id,
            Redemption.redeemed_at >= start - span,
            Redemption.redeemed_at < start,
            Redemption.status.not_in(NOT_SPENT),
        )
    ).one()
    total = len(rows)
    coins = sum(r.coins_spent for r in rows)
    spent = [r for r in rows if r.status not in NOT_SPENT]
    value = sum(r.value_cents for r in spent)
    prev_count, prev_value = int(previous[0]), int(previous[1])

    statuses = Counter(r.status for r in rows)
    by_type: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_type[r.kind].append(r)
    prize_stats: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "coins": 0, "cents": 0})
    for r in rows:
        stats = prize_stats[r.prize_id]
        stats["count"] += 1
        stats["coins"] += r.coins_spent
        stats["cents"] += r.value_cents if r.status not in NOT_SPENT else 0
    top = sorted(prize_stats.items(), key=lambda kv: (-kv[1]["count"], -kv[1]["coins"]))[:5]
    prizes = {p.id: p for p in session.scalars(select(Prize).where(Prize.id.in_([pid for pid, _ in top])))}

    per_user = Counter(r.user_id for r in rows)
    active_users = (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.company_id == company_id, User.is_active.is_(True))
        )
        or 0
    )
    repeaters = sum(1 for n in per_user.values() if n > 1)
    voucher_cost = sum(r.value_cents for r in spent if r.kind == PrizeType.VOUCHER)
    product_cost = value - voucher_cost
    days = max(span.total_seconds() / 86400, 1)

    return {
        "period": {"startDate": format_utc(start), "endDate": format_utc(end)},
        "volume": {
            "totalRedemptions": total,
            "totalCoinsSpent": coins,
            "totalValueBRL": _brl(value),
            "avgCoinsPerRedemption": round(coins / total, 2) if total else 0,
            "periodComparison": {
                "redemptionsChange": _change_pct(len(spent), prev_count),
                "valueChange": _change_brl(value - prev_value),
            },
        },
        "statusBreakdown": [
            {"status": s, "count": n, "percentage": _pct(n, total)} for s, n in statuses.most_common()
        ],
        "typeBreakdown": [
            {
                "type": kind,
                "count": len(items),
                "percentage": _pct(len(items), total),
                "totalValueBRL": _brl(sum(r.value_cents for r in items if r.status not in NOT_SPENT)),
                "statusBreakdown": dict(Counter(r.status for r in items)),
            }
            for kind, items in sorted(by_type.items())
        ],
        "topPrizes": [
            {
                "prizeId": pid,
                "prizeName": prizes[pid].name if pid in prizes else pid,
                "prizeType": prizes[pid].type if pid in prizes else None,
                "redemptionCount": stats["count"],
                "totalCoinsSpent": stats["coins"],
                "totalValueBRL": _brl(stats["cents"]),
            }
            for pid, stats in top
        ],
        "userEngagement": {
            "uniqueRedeemers": len(per_user),
            "totalActiveUsers": int(active_users),
            "percentageOfActive": _pct(len(per_user), active_users),
            "repeatRedeemers": repeaters,
            "repeatRate": _pct(repeaters, len(per_user)),
            "avgRedemptionsPerUser": round(total / len(per_user), 2) if per_user else 0,
        },
        "financialImpact": {
            "totalCost": _brl(value),
            "voucherCost": _brl(voucher_cost),
            "productCost": _brl(product_cost),
            "physicalCost": _brl(product_cost),
            "avgCostPerRedemption": _brl(round(value / len(spent))) if spent else 0,
            "projectedMonthlyCost": _brl(round(value / days * 30)),
        },
    }


def _change_pct(current: int, previous: int) -> str:
    if previous == 0:
        return "+100%" if current else "0%"
    change = round((current - previous) * 100 / previous)
    return f"{'+' if change >= 0 else ''}{change}%"


def _change_brl(delta_cents: int) -> str:
    sign = "+" if delta_cents >= 0 else "-"
    return f"{sign} R$ {abs(delta_cents) / 100:.2f}"
