"""Helpers for the wallet, compliment, value and seed tests (real Postgres, real services)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from app import db
from app.features.compliments.models import Compliment
from app.features.values import service as values
from app.features.wallets import service as wallets
from app.features.wallets.models import Wallet, WalletTransaction


def add_value(company_id: str, title: str = "Ownership", **fields: Any) -> int:
    with db.session_scope() as session:
        value = values.create_value(session, company_id, {"title": title, **fields})
        return value.id


def set_allowance(user_id: str, company_id: str, amount: int) -> None:
    with db.session_scope() as session:
        wallet = wallets.lock_wallet_of(session, user_id, company_id)
        wallets.reset_compliment_balance(session, wallet, amount, "Test allowance")


def balances(user_id: str) -> tuple[int, int]:
    with db.session_scope() as session:
        return wallets.get_balances(session, user_id)


def snapshot() -> dict[str, Any]:
    """Everything a failed request must leave untouched."""
    with db.session_scope() as session:
        return {
            "wallets": sorted(
                session.execute(select(Wallet.user_id, Wallet.compliment_balance, Wallet.redeemable_balance))
                .tuples()
                .all()
            ),
            "ledger": session.scalar(select(func.count()).select_from(WalletTransaction)),
            "lots": sorted(
                session.execute(
                    select(WalletTransaction.id, WalletTransaction.remaining_amount).where(
                        WalletTransaction.remaining_amount.is_not(None)
                    )
                )
                .tuples()
                .all()
            ),
            "compliments": session.scalar(select(func.count()).select_from(Compliment)),
        }


LEDGER_CHECK = text(
    """
    WITH chain AS (
        SELECT t.*, lag(new_balance) OVER (PARTITION BY wallet_id, balance_type ORDER BY seq) AS before
        FROM wallet_transactions t
    )
    SELECT id, transaction_type, balance_type, amount, previous_balance, new_balance, before
    FROM chain
    WHERE previous_balance <> coalesce(before, 0)
       OR (transaction_type = 'CREDIT' AND new_balance <> previous_balance + amount)
       OR (transaction_type IN ('DEBIT', 'EXPIRED') AND new_balance <> previous_balance - amount)
       OR (transaction_type = 'RESET' AND new_balance <> amount)
    """
)

# Signed sum of the ledger per wallet and balance type (a RESET moves the balance by new - previous).
LEDGER_SUMS = text(
    """
    SELECT w.id, w.compliment_balance, w.redeemable_balance,
        coalesce(sum(CASE WHEN t.balance_type = 'COMPLIMENT' THEN
            CASE t.transaction_type WHEN 'CREDIT' THEN t.amount
                WHEN 'RESET' THEN t.new_balance - t.previous_balance ELSE -t.amount END
        END), 0) AS compliment_sum,
        coalesce(sum(CASE WHEN t.balance_type = 'REDEEMABLE' THEN
            CASE t.transaction_type WHEN 'CREDIT' THEN t.amount
                WHEN 'RESET' THEN t.new_balance - t.previous_balance ELSE -t.amount END
        END), 0) AS redeemable_sum,
        coalesce(sum(t.remaining_amount), 0) AS open_lots,
        (SELECT t2.new_balance FROM wallet_transactions t2
          WHERE t2.wallet_id = w.id AND t2.balance_type = 'COMPLIMENT'
          ORDER BY t2.seq DESC LIMIT 1) AS last_c,
        (SELECT t2.new_balance FROM wallet_transactions t2
          WHERE t2.wallet_id = w.id AND t2.balance_type = 'REDEEMABLE'
          ORDER BY t2.seq DESC LIMIT 1) AS last_r
    FROM wallets w LEFT JOIN wallet_transactions t ON t.wallet_id = w.id
    GROUP BY w.id
    """
)


def assert_ledger_consistent() -> None:
    """Every row chains onto the previous one, and the ledger sums equal the balances."""
    with db.engine().connect() as conn:
        broken = conn.execute(LEDGER_CHECK).all()
        assert broken == [], f"ledger rows that do not chain: {broken}"
        for row in conn.execute(LEDGER_SUMS):
            assert row.compliment_balance >= 0 and row.redeemable_balance >= 0
            assert row.compliment_sum == row.compliment_balance, row
            assert row.redeemable_sum == row.redeemable_balance, row
            assert row.open_lots == row.redeemable_balance, row
            assert (row.last_c or 0) == row.compliment_balance, row
            assert (row.last_r or 0) == row.redeemable_balance, row
