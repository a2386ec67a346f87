"""Webhook deliveries from the voucher provider, stored before they are acknowledged and applied by
a job (`store.apply_voucher_event`). Unique per (provider, event uuid): a replayed delivery is
stored once and applied once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.ids import new_id


class VoucherWebhookEvent(Base):
    __tablename__ = "voucher_webhook_events"
    __table_args__ = (
        Index("uq_voucher_webhook_events_uuid", "provider", "event_uuid", unique=True),
        Index(
            "ix_voucher_webhook_events_pending", "received_at", postgresql_where=text("processed_at IS NULL")
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(32))
    event_uuid: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    outcome: Mapped[str | None] = mapped_column(String(64))  # what applying it did
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    apply_job_id: Mapped[str | None] = mapped_column(String(36))
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(server_default=text("clock_timestamp()"))
    processed_at: Mapped[datetime | None]
