"""Coin expiry (issue 6): redeemable coins expire 18 months after their credit.

A lot expires by having its `remaining_amount` set to 0 together with one EXPIRED row per wallet
(`service.expire_redeemable`, under the wallet lock), one transaction per batch of wallets; a
second run finds nothing. Also the report of coins about to expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app import db
from app.features.identity.models import User
from app.features.wallets import service
from app.features.wallets.models import Wallet, WalletTransaction


@dataclass
class UserExpiry:
    user_id: str
    user_name: str
    coins_expired: int
    transactions: int  # credit lots expired


@dataclass
class ExpiryReport:
    users: list[UserExpiry]
    dry_run: bool

    @property
    def users_affected(self) -> int:
        return len(self.users)

    @property
    def total_coins_expired(self) -> int:
        return sum(u.coins_expired for u in self.users)

    def as_summary(self) -> dict[str, Any]:
        return {
            "users_affected": self.users_affected,
            "coins_expired": self.total_coins_expired,
            "lots_expired": sum(u.transactions for u in self.users),
            "dry_run": self.dry_run,
        }

    def as_contract(self) -> dict[str, Any]:
        return {
            "usersAffected": self.users_affected,
            "totalCoinsExpired": self.total_coins_expired,
            "expirationsByUser": [
                {
                    "userId": u.user_id,
                    "userName": u.user_name,
                    "coinsExpired": u.coins_expired,
                    "transactions": u.transactions,
                }
                for u in self.users
            ],
            "dryRun": self.dry_run,
        }


def _expired_lots(now: datetime, company_id: str | None) -> Any:
    WT = WalletTransaction
    condition = and_(WT.remaining_amount > 0, WT.expires_at <= now)
    return and_(condition, WT.company_id == company_id) if company_id else condition


def expire_due_coins(
    now: datetime | None = None,
    *,
    company_id: str | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
) -> ExpiryReport:
    """Expire every lot whose `expires_at` has passed with coins left (all companies, or one).

    One transaction per batch of wallets, locked in wallet id order; each wallet gets one EXPIRED
    row for all its expired lots (`service.expire_redeemable`). A dry run only reports."""
    moment = now or db.utcnow()
    WT = WalletTransaction
    if dry_run:
        with db.session_scope() as session:
            rows = session.execute(
                select(User.id, User.name, func.sum(WT.remaining_amount), func.count())
                .join(Wallet, Wallet.id == WT.wallet_id)
                .join(User, User.id == Wallet.user_id)
                .where(_expired_lots(moment, company_id))
                .group_by(User.id, User.name)
                .order_by(User.id)
            ).all()
        return ExpiryReport([UserExpiry(r[0], r[1], int(r[2] or 0), int(r[3])) for r in rows], dry_run=True)

    results: list[UserExpiry] = []
    seen: set[str] = set()
    while True:
        with db.session_scope() as session:
            wallet_ids = list(
                session.scalars(
                    select(WT.wallet_id)
                    .where(_expired_lots(moment, company_id))
                    .group_by(WT.wallet_id)
                    .order_by(WT.wallet_id)
                    .limit(batch_size)
                )
            )
            if not wallet_ids or seen.issuperset(wallet_ids):
                break
            seen.update(wallet_ids)
            wallets = session.scalars(
                select(Wallet)
                .where(Wallet.id.in_(wallet_ids))
                .order_by(Wallet.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            names = dict(
                session.execute(select(User.id, User.name).where(User.id.in_([w.user_id for w in wallets])))
                .tuples()
                .all()
            )
            for wallet in wallets:
                row = service.expire_redeemable(session, wallet, moment)
                if row is not None:  # None: a concurrent run expired them first
                    lots = len((row.metadata_ or {}).get("expiredCredits", []))
                    results.append(
                        UserExpiry(wallet.user_id, names.get(wallet.user_id, ""), row.amount, lots)
                    )
    results.sort(key=lambda u: u.user_id)
    return ExpiryReport(results, dry_run=False)


def expiration_report(
    session: Session, now: datetime | None = None, *, company_id: str | None, days: int = 90
) -> dict[str, Any]:
    """Coins about to expire: totals for the next 30 and 90 days, and per user within `days`
    (most coins first). Scoped to one company unless `company_id` is None."""
    moment = now or db.utcnow()
    WT = WalletTransaction
    horizon = max(days, 90)
    in30, in90, within = (moment + timedelta(days=d) for d in (30, 90, days))
    conditions = [
        WT.remaining_amount > 0,
        WT.expires_at > moment,
        WT.expires_at <= moment + timedelta(horizon),
    ]
    if company_id:
        conditions.append(WT.company_id == company_id)
    rows = session.execute(
        select(
            User.id,
            User.name,
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= in30), 0),
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= in90), 0),
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= within), 0),
            func.min(WT.expires_at),
        )
        .join(Wallet, Wallet.id == WT.wallet_id)
        .join(User, User.id == Wallet.user_id)
        .where(*conditions)
        .group_by(User.id, User.name)
    ).all()
    # Each group has at least one lot expiring after `moment`: the sums and the minimum are set.
    users = [
        (str(uid), str(name), int(c30 or 0), int(c90 or 0), int(coins or 0), earliest or moment)
        for uid, name, c30, c90, coins, earliest in rows
    ]
    users.sort(key=lambda u: (-u[4], u[5], u[0]))
    return {
        "next30Days": {"users": sum(1 for u in users if u[2] > 0), "coins": sum(u[2] for u in users)},
        "next90Days": {"users": sum(1 for u in users if u[3] > 0), "coins": sum(u[3] for u in users)},
        "details": [
            {"userId": uid, "userName": name, "coinsExpiring": coins, "earliestExpiration": earliest}
            for uid, name, _, _, coins, earliest in users
            if coins > 0
        ],
    }
