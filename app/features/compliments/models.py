"""Compliments: a sender recognises a colleague for a company value with coins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id


class Compliment(Base):
    __tablename__ = "compliments"
    __table_args__ = (
        CheckConstraint("coins BETWEEN 5 AND 100 AND mod(coins, 5) = 0", name="coins_valid"),
        CheckConstraint("sender_id <> receiver_id", name="not_self"),
        CheckConstraint("char_length(message) BETWEEN 10 AND 500", name="message_length"),
        Index("ix_compliments_company_created", "company_id", "created_at"),
        Index("ix_compliments_sender_created", "sender_id", "created_at"),
        Index("ix_compliments_receiver_created", "receiver_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    sender_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    receiver_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    value_id: Mapped[int] = mapped_column(ForeignKey("company_values.id", ondelete="RESTRICT"), index=True)
    message: Mapped[str] = mapped_column(Text)
    coins: Mapped[int] = mapped_column(Integer)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
