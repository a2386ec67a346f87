"""The company feature's tables: per-company settings (one row per company, created on first read:
the coin economy and the default for inviting users created by a CSV import), the company's email
domains and its logo image."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id

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


class CompanyDomain(Base):
    """A domain the company's users' emails may use (contract §11.1); always lowercase."""

    __tablename__ = "company_domains"
    __table_args__ = (UniqueConstraint("company_id", "domain"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # The unique (company_id, domain) index also serves look-ups by company.
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))  # always lowercase
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


# Content type -> file extension of the logo images we accept (the URL's last segment ends with it).
LOGO_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
LOGO_HASH_CHARS = 16  # 64 bits of the sha256 in the URL: enough to never collide for one company


class CompanyLogo(Base):
    """The company's logo image (one row per company, replaced by the next upload)."""

    __tablename__ = "company_logos"

    company_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    content_type: Mapped[str] = mapped_column(String(32))
    # Named `data`, not `bytes`: an attribute called `bytes` would shadow the builtin in this class.
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))  # hex
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    @property
    def filename(self) -> str:
        """The last URL segment: `<sha256 prefix>.<ext>`."""
        return f"{self.sha256[:LOGO_HASH_CHARS]}.{LOGO_EXTENSIONS[self.content_type]}"
