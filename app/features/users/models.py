"""Tables of the users feature: CSV import previews (kept server-side for 30 minutes) with their
rows, and manager links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id


class PreviewStatus:
    CHECKING = "checking"  # a job is still checking the rows (large files)
    READY = "ready"
    CONSUMED = "consumed"  # imported; `report` holds the outcome


class CsvImportPreview(Base):
    """A checked file, stored in Postgres so any web replica (and the worker) can import it. Its
    rows are `csv_import_rows` (written with COPY, checked with set-based SQL)."""

    __tablename__ = "csv_import_previews"
    __table_args__ = (Index("ix_csv_import_previews_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=PreviewStatus.READY)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    valid_rows: Mapped[int | None] = mapped_column(Integer)  # known once checked
    check_job_id: Mapped[str | None] = mapped_column(String(36))
    import_job_id: Mapped[str | None] = mapped_column(String(36))
    report: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]


class CsvImportRow(Base):
    """One data row of a preview's file as parsed, and what the check found wrong with it (no
    errors: the row is valid)."""

    __tablename__ = "csv_import_rows"

    preview_id: Mapped[str] = mapped_column(
        ForeignKey("csv_import_previews.id", ondelete="CASCADE"), primary_key=True
    )
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)  # data rows from 1
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)  # lowercased
    department: Mapped[str | None] = mapped_column(Text)
    position: Mapped[str | None] = mapped_column(Text)
    manager_email: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))


class UserManager(Base):
    """Who manages whom (the CSV `email_gestor` column): at most one manager per user."""

    __tablename__ = "user_managers"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    manager_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
