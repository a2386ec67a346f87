"""Helpers (no tests here) for the weekly reset and expiry tests: companies, settings, bulk users."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, insert, select

from app import db
from app.features.company.models import CompanySettings
from app.features.identity.models import User
from app.features.users import onboarding
from app.features.wallets import service as wallets
from app.features.wallets.models import Wallet, WalletTransaction, WeeklyReset
from app.ids import new_id


def make_company(
    name: str, timezone: str = "America/Sao_Paulo", renewal_day: int = 1, amount: int = 100, users: int = 0
) -> tuple[str, str]:
    """A company with its settings and `users` active users without wallets (bulk-inserted, as a
    raw import would); returns (company_id, admin_id). The admin has a wallet."""
    with db.session_scope() as session:
        company, admin = onboarding.create_company(
            session, name, f"admin-{secrets.token_hex(4)}@example.com", "Admin", timezone=timezone
        )
        session.add(
            CompanySettings(company_id=company.id, weekly_renewal_amount=amount, renewal_day=renewal_day)
        )
        if users:
            session.execute(
                insert(User),
                [
                    {
                        "id": new_id(),
                        "company_id": company.id,
                        "email": f"u{i}-{secrets.token_hex(4)}@example.com",
                        "name": f"User {i}",
                    }
                    for i in range(users)
                ],
            )
        return company.id, admin.id


def spend_allowance(company_id: str, every: int = 2, amount: int = 7) -> int:
    """Debit `amount` from every `every`-th wallet of the company; returns how many changed."""
    with db.session_scope() as session:
        ids = list(
            session.scalars(select(Wallet.id).where(Wallet.company_id == company_id).order_by(Wallet.id))
        )
        chosen = ids[::every]
        for wallet_id in chosen:
            wallet = session.get_one(Wallet, wallet_id)
            wallets.debit_compliment(session, wallet, amount, "Test spending")
    return len(chosen)


def resets(company_id: str | None = None) -> list[WeeklyReset]:
    with db.session_scope() as session:
        stmt = select(WeeklyReset).order_by(WeeklyReset.company_id, WeeklyReset.period_start)
        if company_id:
            stmt = stmt.where(WeeklyReset.company_id == company_id)
        return list(session.scalars(stmt))


def reset_rows(company_id: str, period_start: str | None = None) -> int:
    """RESET ledger rows written by the weekly reset (optionally for one week)."""
    WT = WalletTransaction
    conditions: list[Any] = [
        WT.company_id == company_id,
        WT.transaction_type == "RESET",
        WT.reason == "Weekly reset",
    ]
    if period_start:
        conditions.append(WT.metadata_["periodStart"].as_string() == period_start)
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(WT).where(*conditions)) or 0)


def compliment_balances(company_id: str) -> list[int]:
    with db.session_scope() as session:
        return list(session.scalars(select(Wallet.compliment_balance).where(Wallet.company_id == company_id)))
