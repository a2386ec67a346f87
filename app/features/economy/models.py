"""The company's money (BRL, integer centavos): an account row per company and its append-only
ledger. The account's balance and totals change only together with a ledger row, in the same
transaction, under the account's row lock (`service.py`). A trigger refuses UPDATE and DELETE on
the ledger (migration 0030)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id


class EntryType:
    DEPOSIT = "DEPOSIT"  # a platform operator recorded money received from the company
    DEBIT = "DEBIT"  # the fund paid for something (an admin-sent voucher)
    REFUND = "REFUND"  # a debit given back (the voucher failed for good)
    ADJUSTMENT = "ADJUSTMENT"  # an operator's manual correction (either sign)
    ALL = (DEPOSIT, DEBIT, REFUND, ADJUSTMENT)


class CompanyAccount(Base):
    __tablename__ = "company_accounts"
    __table_args__ = (CheckConstraint("balance_cents >= 0", name="balance_non_negative"),)

    company_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    total_deposited_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    total_spent_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # A frozen fund refuses every debit (deposits still land).
    is_frozen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class CompanyLedgerEntry(Base):
    __tablename__ = "company_ledger"
    __table_args__ = (
        CheckConstraint("entry_type IN ('DEPOSIT','DEBIT','REFUND','ADJUSTMENT')", name="entry_type_valid"),
        CheckConstraint("delta_cents <> 0", name="delta_non_zero"),
        CheckConstraint("balance_after_cents >= 0", name="balance_non_negative"),
        CheckConstraint(
            "(entry_type IN ('DEPOSIT','REFUND') AND delta_cents > 0)"
            " OR (entry_type = 'DEBIT' AND delta_cents < 0) OR entry_type = 'ADJUSTMENT'",
            name="sign_matches_type",
        ),
        Index("ix_company_ledger_company_seq", "company_id", "seq"),
        # One entry per business reference (e.g. `redemption:<id>:debit`): money moves once.
        Index(
            "uq_company_ledger_reference",
            "reference",
            unique=True,
            postgresql_where=text("reference IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    entry_type: Mapped[str] = mapped_column(String(12))
    delta_cents: Mapped[int] = mapped_column(BigInteger)
    balance_after_cents: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    payment_method: Mapped[str | None] = mapped_column(String(50))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime] = mapped_column(server_default=text("clock_timestamp()"))
