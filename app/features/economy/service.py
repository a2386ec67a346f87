"""The company's BRL fund: deposits, debits and refunds, each one ledger row written together with the
account's balance and totals, under the account's row lock, in the caller's transaction.

Rules kept here:
- amounts are integer centavos; the balance never goes below zero (a check constraint backs it);
- a `reference` (e.g. `redemption:<id>:debit`) moves money once: the second attempt finds the row
  (refund: returns None; debit: Conflict), and a unique index backs it under concurrency;
- a frozen account refuses debits (deposits and refunds still land);
- the coin value (COIN_VALUE_CENTS) is the one rate for every coin↔BRL figure (docs/store.md).

Functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import runtime
from app.errors import Conflict, Invalid, NotFound
from app.features.economy.models import CompanyAccount, CompanyLedgerEntry, EntryType
from app.features.identity.models import Company


def coin_value_cents() -> int:
    return runtime.settings().coin_value_cents


def coins_to_cents(coins: int) -> int:
    return coins * coin_value_cents()


def cents_to_coins(cents: int) -> int:
    """Coins that buy `cents` (rounded up: a voucher never costs less than its face value)."""
    return max(1, math.ceil(cents / coin_value_cents()))


def cents_to_brl(cents: int) -> float:
    return round(cents / 100, 2)


def lock_account(session: Session, company_id: str) -> CompanyAccount:
    """The company's account row, created on first use, locked FOR UPDATE."""
    if session.get(Company, company_id) is None:
        raise NotFound("Company not found")
    session.execute(insert(CompanyAccount).values(company_id=company_id).on_conflict_do_nothing())
    return session.scalars(
        select(CompanyAccount)
        .where(CompanyAccount.company_id == company_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def account(session: Session, company_id: str) -> CompanyAccount:
    """The account without locking (zeros when none exists yet; not added to the session)."""
    found = session.get(CompanyAccount, company_id)
    return found or CompanyAccount(
        company_id=company_id, balance_cents=0, total_deposited_cents=0, total_spent_cents=0, is_frozen=False
    )


def _entry(
    session: Session,
    acct: CompanyAccount,
    entry_type: str,
    delta: int,
    reason: str,
    *,
    reference: str | None,
    created_by: str | None,
    payment_method: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> CompanyLedgerEntry:
    acct.balance_cents += delta
    if acct.balance_cents < 0:
        raise Invalid("Insufficient company wallet balance", "INSUFFICIENT_COMPANY_BALANCE")
    if entry_type == EntryType.DEPOSIT:
        acct.total_deposited_cents += delta
    elif entry_type == EntryType.DEBIT:
        acct.total_spent_cents += -delta
    elif entry_type == EntryType.REFUND:
        acct.total_spent_cents -= delta
    row = CompanyLedgerEntry(
        company_id=acct.company_id,
        entry_type=entry_type,
        delta_cents=delta,
        balance_after_cents=acct.balance_cents,
        reference=reference,
        reason=reason[:500],
        payment_method=payment_method,
        created_by=created_by,
        metadata_=metadata,
    )
    session.add(row)
    session.flush()
    return row


def _exists(session: Session, reference: str) -> bool:
    return (
        session.scalar(select(CompanyLedgerEntry.id).where(CompanyLedgerEntry.reference == reference))
        is not None
    )


def deposit(
    session: Session,
    company_id: str,
    amount_cents: int,
    reason: str,
    *,
    created_by: str | None,
    payment_method: str | None = None,
    reference: str | None = None,
) -> CompanyLedgerEntry:
    """Money received from the company (recorded by a platform operator)."""
    if amount_cents <= 0:
        raise Invalid("The deposit amount must be positive")
    acct = lock_account(session, company_id)
    if reference and _exists(session, reference):
        raise Conflict("This deposit was already recorded", "ALREADY_RECORDED")
    return _entry(
        session,
        acct,
        EntryType.DEPOSIT,
        amount_cents,
        reason,
        reference=reference,
        created_by=created_by,
        payment_method=payment_method,
    )


def debit(
    session: Session,
    company_id: str,
    amount_cents: int,
    reference: str,
    reason: str,
    *,
    created_by: str | None,
    metadata: dict[str, Any] | None = None,
) -> CompanyLedgerEntry:
    """Pay `amount_cents` from the fund for `reference`, once. `Invalid` when the fund is frozen or
    too small."""
    if amount_cents <= 0:
        raise Invalid("The amount must be positive")
    acct = lock_account(session, company_id)
    if acct.is_frozen:
        raise Invalid("The company wallet is frozen", "COMPANY_WALLET_FROZEN")
    if _exists(session, reference):
        raise Conflict(f"{reference} was already debited", "ALREADY_DEBITED")
    if acct.balance_cents < amount_cents:
        raise Invalid("Insufficient company wallet balance", "INSUFFICIENT_COMPANY_BALANCE")
    return _entry(
        session,
        acct,
        EntryType.DEBIT,
        -amount_cents,
        reason,
        reference=reference,
        created_by=created_by,
        metadata=metadata,
    )


def debit_many(
    session: Session,
    company_id: str,
    items: list[tuple[str, int, str]],
    *,
    created_by: str | None,
) -> list[CompanyLedgerEntry]:
    """Reserve a whole batch at once: (reference, amount, reason) each; nothing when the fund can't
    cover the sum (checked under the lock before any row is written)."""
    acct = lock_account(session, company_id)
    if acct.is_frozen:
        raise Invalid("The company wallet is frozen", "COMPANY_WALLET_FROZEN")
    total = sum(amount for _, amount, _ in items)
    if acct.balance_cents < total:
        raise Invalid(
            "Insufficient company wallet balance",
            "INSUFFICIENT_COMPANY_BALANCE",
            {"requiredBRL": cents_to_brl(total), "availableBRL": cents_to_brl(acct.balance_cents)},
        )
    return [
        _entry(session, acct, EntryType.DEBIT, -amount, reason, reference=reference, created_by=created_by)
        for reference, amount, reason in items
    ]


def refund(
    session: Session,
    company_id: str,
    amount_cents: int,
    reference: str,
    reason: str,
    *,
    created_by: str | None = None,
) -> CompanyLedgerEntry | None:
    """Give a debit back to the fund, at most once per `reference` (None when already refunded)."""
    acct = lock_account(session, company_id)
    if _exists(session, reference):
        return None
    return _entry(
        session, acct, EntryType.REFUND, amount_cents, reason, reference=reference, created_by=created_by
    )


def set_frozen(session: Session, company_id: str, frozen: bool) -> CompanyAccount:
    acct = lock_account(session, company_id)
    acct.is_frozen = frozen
    return acct


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepositRow:
    id: str
    amount_cents: int
    payment_method: str | None
    deposited_at: datetime
    resulting_balance_cents: int


def deposits(session: Session, company_id: str, limit: int) -> tuple[list[DepositRow], int]:
    """The newest deposits with the fund's balance right after each (a running balance from the
    ledger), and the total number of deposits."""
    L = CompanyLedgerEntry
    rows = session.execute(
        select(L.id, L.delta_cents, L.payment_method, L.created_at, L.balance_after_cents)
        .where(L.company_id == company_id, L.entry_type == EntryType.DEPOSIT)
        .order_by(L.seq.desc())
        .limit(limit)
    ).all()
    total = session.scalar(
        select(func.count())
        .select_from(L)
        .where(L.company_id == company_id, L.entry_type == EntryType.DEPOSIT)
    )
    return [DepositRow(r[0], int(r[1]), r[2], r[3], int(r[4])) for r in rows], int(total or 0)


def spent_since(session: Session, company_id: str, since: datetime) -> int:
    """Centavos the fund paid (debits minus refunds) since `since`."""
    L = CompanyLedgerEntry
    value = session.scalar(
        select(func.coalesce(func.sum(-L.delta_cents), 0)).where(
            L.company_id == company_id,
            L.entry_type.in_((EntryType.DEBIT, EntryType.REFUND)),
            L.created_at >= since,
        )
    )
    return int(value or 0)


def ledger_sum(session: Session, company_id: str) -> int:
    """The sum of every ledger movement (equals the account balance: a test invariant)."""
    value = session.scalar(
        select(func.coalesce(func.sum(CompanyLedgerEntry.delta_cents), 0)).where(
            CompanyLedgerEntry.company_id == company_id
        )
    )
    return int(value or 0)
