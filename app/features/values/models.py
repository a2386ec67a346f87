"""Company values: what a compliment recognises (integer ids, soft delete, at most 8 active)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

MAX_ACTIVE_VALUES = 8


class CompanyValue(Base):
    __tablename__ = "company_values"
    __table_args__ = (
        # Titles are unique per company, case-insensitively, active or not (reactivate instead).
        Index("uq_company_values_company_title", "company_id", text("lower(title)"), unique=True),
        Index("ix_company_values_company_order", "company_id", "sort_order"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    example: Mapped[str | None] = mapped_column(String(500))
    icon_name: Mapped[str | None] = mapped_column(String(500))
    icon_color: Mapped[str | None] = mapped_column(String(500))
    order: Mapped[int] = mapped_column("sort_order", Integer, default=0, server_default=text("0"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
