"""`sent_emails`: a record of every send (to whom, which template, when, outcome), never the body."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, SmallInteger, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id


class EmailStatus:
    SENDING = "sending"  # claimed; the SMTP conversation is about to happen (or was interrupted)
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # refused before sending (limit reached, user inactive)


class SentEmail(Base):
    __tablename__ = "sent_emails"
    __table_args__ = (
        # One send per person, template and run: a re-run of a job never emails anyone twice.
        Index(
            "uq_sent_emails_run",
            "run_id",
            "template",
            "to_email",
            unique=True,
            postgresql_where=text("run_id IS NOT NULL"),
        ),
        Index("ix_sent_emails_user_template", "user_id", "template"),
        Index("ix_sent_emails_company_created", "company_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    to_email: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))  # the job id for job-driven sends
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    transient: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    sent_at: Mapped[datetime | None]
