"""Per-company settings, one row per company created on first read: the coin economy and the
default for inviting users created by a CSV import."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

DEFAULT_WEEKLY_RENEWAL_AMOUNT = 100
DEFAULT_RENEWAL_DAY = 1  # 1 = Monday … 7 = Sunday (ISO weekday)


class CompanySettings(Base):
    __tablename__ = "company_settings"
    __table_args__ = (
        CheckConstraint("weekly_renewal_amount BETWEEN 50 AND 500", name="weekly_renewal_amount_range"),
        CheckConstraint("renewal_day BETWEEN 1 AND 7", name="renewal_day_range"),
    )

    company_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    weekly_renewal_amount: Mapped[int] = mapped_column(
        Integer,
        default=DEFAULT_WEEKLY_RENEWAL_AMOUNT,
        server_default=text(str(DEFAULT_WEEKLY_RENEWAL_AMOUNT)),
    )
    renewal_day: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_RENEWAL_DAY, server_default=text(str(DEFAULT_RENEWAL_DAY))
    )
    # Invite users created by a CSV import whose request does not say (`sendEmails` absent);
    # NULL = the app-wide IMPORT_SEND_INVITES default (app/features/company/import_settings.py).
    send_invites_on_import: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
