"""Wallets (two integer balances per user), their append-only ledger, and the markers of the
periodic wallet work (weekly reset, expiry notices).

Every balance change writes one `wallet_transactions` row in the same transaction. Rows are never
updated or deleted, with one exception: a redeemable CREDIT row is also a *lot* whose
`remaining_amount` is drawn down when coins are spent or expire (a trigger created by migration
0003 refuses any other UPDATE and every DELETE).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id


class TransactionType(enum.StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"
    RESET = "RESET"
    EXPIRED = "EXPIRED"


class BalanceType(enum.StrEnum):
    COMPLIMENT = "COMPLIMENT"
    REDEEMABLE = "REDEEMABLE"


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("compliment_balance >= 0", name="compliment_balance_non_negative"),
        CheckConstraint("redeemable_balance >= 0", name="redeemable_balance_non_negative"),
        # A company's wallets in id order: the weekly reset walks them in keyset chunks.
        Index("ix_wallets_company_id_id", "company_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), unique=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    compliment_balance: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    redeemable_balance: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class WalletTransaction(Base):
    __tablename__ = "wallet_transactions"
    __table_args__ = (
        CheckConstraint(
            "transaction_type IN ('DEBIT','CREDIT','RESET','EXPIRED')", name="transaction_type_valid"
        ),
        CheckConstraint("balance_type IN ('COMPLIMENT','REDEEMABLE')", name="balance_type_valid"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("previous_balance >= 0 AND new_balance >= 0", name="balances_non_negative"),
        # A redeemable credit is a lot: it always knows what is left of it and when it expires.
        CheckConstraint(
            "(transaction_type = 'CREDIT' AND balance_type = 'REDEEMABLE') = "
            "(remaining_amount IS NOT NULL AND expires_at IS NOT NULL)",
            name="redeemable_credit_is_lot",
        ),
        CheckConstraint(
            "remaining_amount IS NULL OR remaining_amount BETWEEN 0 AND amount", name="remaining_range"
        ),
        Index("ix_wallet_transactions_wallet_seq", "wallet_id", "seq"),
        Index("ix_wallet_transactions_company_created", "company_id", "created_at"),
        # The lots that can still be spent or expire, oldest expiry first.
        Index(
            "ix_wallet_transactions_open_lots",
            "wallet_id",
            "expires_at",
            postgresql_where=text("remaining_amount > 0"),
        ),
        # A business reference (e.g. `redemption:<id>:refund`) moves coins at most once.
        Index(
            "uq_wallet_transactions_reference",
            "reference",
            unique=True,
            postgresql_where=text("reference IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # Insertion order (the wallet row is locked while its ledger grows, so it is per-wallet order).
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id", ondelete="RESTRICT"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    transaction_type: Mapped[str] = mapped_column(String(10))
    balance_type: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int] = mapped_column(Integer)
    previous_balance: Mapped[int] = mapped_column(Integer)
    new_balance: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    reference: Mapped[str | None] = mapped_column(String(120))
    remaining_amount: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


# --- markers of the periodic work ----------------------------------------------------------
# One row per period's effect, unique per period: the unique constraint is what makes any number
# of concurrent runs (cron one-shots, the scheduler, an operator's request) apply the effect once.


class WeeklyReset(Base):
    """The weekly allowance reset of one company for one week (its renewal day, local date).

    The reset walks the company's wallets in id order, one short transaction per chunk; `cursor`
    is the last wallet id a committed chunk covered (NULL: none yet) and `completed_at` is set by
    the last chunk. A run that finds the row unfinished resumes after `cursor`."""

    __tablename__ = "weekly_resets"
    __table_args__ = (UniqueConstraint("company_id", "period_start"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    # The renewal day's date in the company's time zone: the week's identity.
    period_start: Mapped[date] = mapped_column(Date)
    # 00:00 of that day in the company's time zone, in UTC: the moment the reset became due.
    due_at: Mapped[datetime]
    reset_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    weekly_amount: Mapped[int] = mapped_column(Integer)
    wallets_changed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trigger: Mapped[str] = mapped_column(String(32))  # cli | scheduler | api | job
    requested_by: Mapped[str | None] = mapped_column(String(32))
    cursor: Mapped[str | None] = mapped_column(String(32))
    completed_at: Mapped[datetime | None]


class ExpiryNotice(Base):
    """An expiry notice for one credit lot and one threshold (days before expiry), sent once."""

    __tablename__ = "expiry_notices"
    __table_args__ = (UniqueConstraint("credit_transaction_id", "threshold_days"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    credit_transaction_id: Mapped[str] = mapped_column(
        ForeignKey("wallet_transactions.id", ondelete="CASCADE")
    )
    threshold_days: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    coins: Mapped[int] = mapped_column(Integer)  # what was left of the lot when the notice went out
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # The `sent_emails` record of the email (set once delivered; no FK: emails own that table).
    email_record_id: Mapped[str | None] = mapped_column(String(32))
