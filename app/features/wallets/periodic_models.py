"""Markers of the periodic wallet work (issue 6): one row per period's effect, unique per period.

A marker is written in the same transaction as its effect, and its unique constraint is what makes
any number of concurrent runs (cron one-shots, the scheduler, an operator's request) apply the
effect once: the first INSERT wins, the others insert nothing (ON CONFLICT DO NOTHING) and skip.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Identity, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class WeeklyReset(Base):
    """The weekly allowance reset of one company for one week (its renewal day, local date)."""

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
