"""GET /admin/dashboard/economy and its wallet history (contract §10, store contract §S6), computed
from the real ledgers: the company's BRL ledger, the coin ledger, compliments and redemptions.

Money model (docs/store.md):
- the fund's balance and totals are the company ledger's (deposits by a platform operator, debits
  for admin-sent vouchers, refunds when one fails for good);
- consumption (what the fund must cover per month) = the fund's net spend in the last 30 days plus
  the BRL value of employee redemptions in that window (coins * COIN_VALUE_CENTS, or a voucher's
  face value), without cancelled, failed or refunded ones. Employee redemptions are paid in coins;
  their cost reaches the company through Valorize's billing, not as a fund debit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.api import format_utc
from app.db import utcnow
from app.features.company.models import DEFAULT_WEEKLY_RENEWAL_AMOUNT
from app.features.economy import service
from app.features.economy.service import DepositRow

IDEAL_COVERAGE_DAYS = 45
HISTORY_ON_DASHBOARD = 10

_USER_REDEMPTIONS_VALUE = """
SELECT coalesce(sum(value_cents), 0) FROM redemptions
WHERE company_id = :cid AND paid_by = 'user' AND redeemed_at >= :since
  AND status NOT IN ('cancelled', 'failed', 'refunded')
"""
_REDEEMABLE_IN_CIRCULATION = """
SELECT coalesce(sum(w.redeemable_balance), 0) FROM wallets w JOIN users u ON u.id = w.user_id
WHERE w.company_id = :cid AND u.is_active
"""
_ACTIVE_USERS = "SELECT count(*) FROM users WHERE company_id = :cid AND is_active"
_WEEKLY_AMOUNT = "SELECT weekly_renewal_amount FROM company_settings WHERE company_id = :cid"
_COMPLIMENT_COINS = (
    "SELECT coalesce(sum(coins), 0) FROM compliments WHERE company_id = :cid AND created_at >= :since"
)
_COINS_REDEEMED = """
SELECT coalesce(sum(coins_spent), 0) FROM redemptions
WHERE company_id = :cid AND paid_by = 'user' AND redeemed_at >= :since
  AND status NOT IN ('cancelled', 'failed', 'refunded')
"""


def _scalar(session: Session, sql: str, **params: Any) -> int:
    value = session.execute(text(sql), params).scalar()
    return int(value or 0)


def _brl(cents: int | float) -> float:
    return round(cents / 100, 2)


def _pct(part: float, whole: float) -> float:
    return round(part * 100 / whole, 2) if whole else 0.0


def deposit_item(row: DepositRow) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": row.id,
        "amount": _brl(row.amount_cents),
        "status": "completed",
        "deposited_at": format_utc(row.deposited_at),
        "resulting_balance": _brl(row.resulting_balance_cents),
    }
    if row.payment_method:
        item["payment_method"] = row.payment_method
    return item


def economy_dashboard(session: Session, company_id: str, now: datetime | None = None) -> dict[str, Any]:
    moment = now or utcnow()
    month_start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    acct = service.account(session, company_id)
    balance = acct.balance_cents

    since30 = moment - timedelta(days=30)
    consumption = service.spent_since(session, company_id, since30) + _scalar(
        session, _USER_REDEMPTIONS_VALUE, cid=company_id, since=since30
    )
    ideal = consumption * IDEAL_COVERAGE_DAYS / 30
    pct_ideal = _pct(balance, ideal) if consumption else 100.0
    runway = math.floor(balance / consumption * 30) if consumption else 999

    coins = _scalar(session, _REDEEMABLE_IN_CIRCULATION, cid=company_id)
    coins_brl = service.coins_to_cents(coins)
    coverage = _pct(balance, coins_brl) if coins_brl else 100.0

    active = _scalar(session, _ACTIVE_USERS, cid=company_id)
    weekly = session.execute(text(_WEEKLY_AMOUNT), {"cid": company_id}).scalar()
    distributed = active * int(DEFAULT_WEEKLY_RENEWAL_AMOUNT if weekly is None else weekly)
    used = _scalar(session, _COMPLIMENT_COINS, cid=company_id, since=moment - timedelta(days=7))
    usage = _pct(used, distributed)

    redeemed_month = _scalar(session, _COINS_REDEEMED, cid=company_id, since=month_start)
    issued_month = _scalar(session, _COMPLIMENT_COINS, cid=company_id, since=month_start)
    redemption_pct = _pct(redeemed_month, issued_month)

    wallet_status = "critical" if pct_ideal < 30 else "warning" if pct_ideal < 70 else "healthy"
    runway_status = "critical" if runway < 15 else "warning" if runway < 30 else "healthy"
    coverage_status = (
        "critical"
        if coverage < 80
        else "warning"
        if coverage < 120
        else "excess"
        if coverage > 200
        else "healthy"
    )
    usage_status = "critical" if usage < 50 else "warning" if usage < 70 else "healthy"
    redemption_status = "warning" if redemption_pct < 15 or redemption_pct > 60 else "healthy"

    alerts = _alerts(wallet_status, runway, runway_status, coverage_status, usage_status, redemption_pct)
    suggested = None
    gap = math.ceil((ideal - balance) / 100) if consumption else 0
    if runway < 30 and gap > 0:
        suggested = {"amount": gap, "reason": "Para manter 45 dias de cobertura", "target_runway_days": 45}
    history, _ = service.deposits(session, company_id, HISTORY_ON_DASHBOARD)
    return {
        "wallet_balance": {
            "total_loaded": _brl(acct.total_deposited_cents),
            "total_spent": _brl(acct.total_spent_cents),
            "available_balance": _brl(balance),
            "percentage_of_ideal": pct_ideal,
            "status": wallet_status,
        },
        "prize_fund": {
            "current_balance": _brl(balance),
            "avg_monthly_consumption": _brl(consumption),
            "runway_days": runway,
            "status": runway_status,
        },
        "redeemable_coins": {
            "total_in_circulation": coins,
            "equivalent_in_brl": _brl(coins_brl),
            "coverage_index": coverage,
            "status": coverage_status,
        },
        "compliment_engagement": {
            "distributed_this_week": distributed,
            "used": used,
            "wasted": max(0, distributed - used),
            "usage_rate": usage,
            "status": usage_status,
        },
        "redemption_rate": {
            "coins_redeemed_this_month": redeemed_month,
            "coins_issued_this_month": issued_month,
            "redemption_percentage": redemption_pct,
            "status": redemption_status,
        },
        "alerts": alerts,
        "deposit_history": [deposit_item(d) for d in history],
        "suggested_deposit": suggested,
        "coin_value_brl": _brl(service.coin_value_cents()),
    }


def _alert(alert_id: str, priority: str, title: str, description: str, action: str) -> dict[str, Any]:
    return {
        "id": alert_id,
        "priority": priority,
        "title": title,
        "description": description,
        "recommended_action": action,
        "dismissible": priority != "critical",
    }


def _alerts(
    wallet_status: str,
    runway: int,
    runway_status: str,
    coverage_status: str,
    usage_status: str,
    redemption_pct: float,
) -> list[dict[str, Any]]:
    alerts = []
    if wallet_status == "critical":
        alerts.append(
            _alert(
                "wallet-critical",
                "critical",
                "Saldo da carteira crítico",
                "O saldo está abaixo de 30% do ideal para 45 dias de resgates.",
                "Faça um depósito para garantir os resgates.",
            )
        )
    if runway_status == "critical":
        alerts.append(
            _alert(
                "runway-critical",
                "critical",
                "Fundo de prêmios acabando",
                f"O saldo cobre cerca de {runway} dias de consumo.",
                "Deposite para manter ao menos 30 dias de cobertura.",
            )
        )
    elif runway_status == "warning":
        alerts.append(
            _alert(
                "runway-warning",
                "warning",
                "Fundo de prêmios baixo",
                f"O saldo cobre cerca de {runway} dias de consumo.",
                "Planeje um depósito nas próximas semanas.",
            )
        )
    if coverage_status == "critical":
        alerts.append(
            _alert(
                "coverage-critical",
                "critical",
                "Moedas sem cobertura",
                "O saldo cobre menos de 80% do valor das moedas resgatáveis em circulação.",
                "Aumente o saldo da carteira.",
            )
        )
    if usage_status == "critical":
        alerts.append(
            _alert(
                "engagement-low",
                "warning",
                "Engajamento baixo",
                "Menos da metade das moedas semanais foi usada em elogios.",
                "Incentive os times a reconhecerem colegas.",
            )
        )
    elif usage_status == "warning":
        alerts.append(
            _alert(
                "engagement-warning",
                "info",
                "Engajamento abaixo do esperado",
                "Menos de 70% das moedas semanais foi usada em elogios.",
                "Lembre os times de enviar elogios.",
            )
        )
    if redemption_pct < 15:
        alerts.append(
            _alert(
                "redemption-low",
                "info",
                "Poucos resgates neste mês",
                "Menos de 15% das moedas emitidas no mês foram resgatadas.",
                "Divulgue o catálogo de prêmios.",
            )
        )
    elif redemption_pct > 60:
        alerts.append(
            _alert(
                "redemption-high",
                "warning",
                "Muitos resgates neste mês",
                "Mais de 60% das moedas emitidas no mês foram resgatadas.",
                "Acompanhe o consumo do fundo de prêmios.",
            )
        )
    return alerts


def wallet_history(session: Session, company_id: str, limit: int) -> dict[str, Any]:
    rows, total = service.deposits(session, company_id, limit)
    return {"deposits": [deposit_item(r) for r in rows], "total": total}
