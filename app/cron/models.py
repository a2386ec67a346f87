"""Every run of a scheduled task, one-shot or scheduled, for operators and audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class CronRun(Base):
    __tablename__ = "cron_runs"
    __table_args__ = (
        CheckConstraint("outcome IN ('running','succeeded','failed')", name="outcome_valid"),
        Index("ix_cron_runs_task_started", "task", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))  # cli | scheduler | api
    outcome: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    summary: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    finished_at: Mapped[datetime | None]
