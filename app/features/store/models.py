"""The prize store's tables: the catalogue (prizes, variants, uploaded images, provider voucher
products), delivery addresses, redemptions with their tracking history, and the record of each
voucher's issuance at the provider.

Money and coins are integers (BRL in centavos). A redemption's status moves only through the guarded
transitions in `states.py`; refunds and restocks happen in the same transaction as the transition
that causes them (see `flows.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.ids import new_id

CLOCK = text("clock_timestamp()")  # audit times are the event's wall-clock time, not the transaction's


class PrizeType:
    VOUCHER = "voucher"
    PRODUCT = "product"
    ALL = (VOUCHER, PRODUCT)


class Status:
    """Redemption statuses (stored and answered in lowercase, contract §S0)."""

    PENDING = "pending"  # product: order received
    PROCESSING = "processing"  # product: being prepared; voucher: being issued at the provider
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"  # kept for filters; no transition sets it (a cancel refunds)
    SENT = "sent"  # voucher: the provider accepted the order and e-mails the recipient
    FAILED = "failed"  # voucher: issuance or delivery failed; the payer was refunded
    ALL = (PENDING, PROCESSING, SHIPPED, DELIVERED, CANCELLED, REFUNDED, SENT, FAILED)


class Payer:
    USER = "user"  # the employee's redeemable coins
    COMPANY = "company"  # the company's BRL fund (admin sends)


class VoucherState:
    ISSUING = "issuing"  # the issue job has not recorded a provider order yet
    SENT = "sent"  # order recorded; delivery outcome pending
    DELIVERED = "delivered"  # the provider confirmed delivery
    FAILED = "failed"
    REVIEW = "review"  # retries exhausted with an ambiguous outcome: reconciliation decides
    OPEN = (ISSUING, SENT, REVIEW)
    ALL = (ISSUING, SENT, DELIVERED, FAILED, REVIEW)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class VoucherProduct(Base):
    """A provider product (gift card) from the catalogue sync. Values are BRL centavos."""

    __tablename__ = "voucher_products"
    __table_args__ = (
        Index("uq_voucher_products_provider_external", "provider", "external_id", unique=True),
        CheckConstraint("min_value_cents > 0 AND max_value_cents >= min_value_cents", name="value_range"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(100), default="voucher", server_default="voucher")
    brand: Mapped[str | None] = mapped_column(String(100))
    images: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    min_value_cents: Mapped[int] = mapped_column(Integer)
    max_value_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="BRL", server_default="BRL")
    countries: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    last_sync_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class Prize(Base):
    __tablename__ = "prizes"
    __table_args__ = (
        CheckConstraint(_in("type", PrizeType.ALL), name="type_valid"),
        CheckConstraint("coin_price > 0", name="coin_price_positive"),
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint(
            "type = 'voucher' OR voucher_product_id IS NULL", name="only_vouchers_have_a_provider_product"
        ),
        Index("ix_prizes_company_active", "company_id", "is_active"),
        # The catalogue sync creates one global prize per provider product.
        Index(
            "uq_prizes_global_voucher_product",
            "voucher_product_id",
            unique=True,
            postgresql_where=text("company_id IS NULL AND voucher_product_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str | None] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE")
    )  # None: global
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    type: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(100))
    brand: Mapped[str | None] = mapped_column(String(100))
    coin_price: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    specifications: Mapped[dict[str, Any] | None]
    images: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    voucher_product_id: Mapped[str | None] = mapped_column(
        ForeignKey("voucher_products.id", ondelete="SET NULL"), index=True
    )
    voucher_value_cents: Mapped[int | None] = mapped_column(Integer)  # the gift card's face value
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    @property
    def unlimited_stock(self) -> bool:
        """Global voucher prizes from the provider catalogue are never used up (the provider has no
        stock); every other prize's stock is decremented on redemption."""
        return self.company_id is None and self.type == PrizeType.VOUCHER


class PrizeVariant(Base):
    __tablename__ = "prize_variants"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_non_negative"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    prize_id: Mapped[str] = mapped_column(ForeignKey("prizes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(String(100))
    stock: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class PrizeImage(Base):
    """An uploaded prize image, stored in Postgres like company logos; served at a public URL that
    carries its hash, for as long as the prize's `images` list still holds that URL."""

    __tablename__ = "prize_images"

    prize_id: Mapped[str] = mapped_column(ForeignKey("prizes.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class Address(Base):
    __tablename__ = "addresses"
    __table_args__ = (
        Index("ix_addresses_user_live", "user_id", postgresql_where=text("deleted_at IS NULL")),
        Index(
            "uq_addresses_one_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    street: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(10))
    complement: Mapped[str | None] = mapped_column(String(100))
    neighborhood: Mapped[str] = mapped_column(String(100), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    zip_code: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2), default="BR", server_default="BR")
    phone: Mapped[str] = mapped_column(String(11), default="", server_default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Soft delete: a redemption keeps its own snapshot, and an address is never reused by id.
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        CheckConstraint(_in("status", Status.ALL), name="status_valid"),
        CheckConstraint(_in("kind", PrizeType.ALL), name="kind_valid"),
        CheckConstraint(_in("paid_by", (Payer.USER, Payer.COMPANY)), name="payer_valid"),
        CheckConstraint("coins_spent >= 0 AND value_cents >= 0", name="amounts_non_negative"),
        Index("ix_redemptions_company_redeemed", "company_id", "redeemed_at"),
        Index("ix_redemptions_user_redeemed", "user_id", "redeemed_at"),
        Index("ix_redemptions_prize", "prize_id"),
        # The same Idempotency-Key from the same user is one redemption (contract §S2).
        Index(
            "uq_redemptions_idempotency",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    prize_id: Mapped[str] = mapped_column(ForeignKey("prizes.id", ondelete="RESTRICT"))
    variant_id: Mapped[str | None] = mapped_column(ForeignKey("prize_variants.id", ondelete="SET NULL"))
    address_id: Mapped[str | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"))
    address_snapshot: Mapped[dict[str, Any] | None]  # the shipping address as it was at redeem time
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    paid_by: Mapped[str] = mapped_column(String(16), default=Payer.USER, server_default=Payer.USER)
    coins_spent: Mapped[int] = mapped_column(Integer)
    value_cents: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    stock_taken: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    tracking_code: Mapped[str | None] = mapped_column(String(100))
    tracking_carrier: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    redeemed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=CLOCK)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class RedemptionTracking(Base):
    """One row per status change, tracking code or admin note (the history the screens show)."""

    __tablename__ = "redemption_tracking"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=CLOCK)


class VoucherRedemption(Base):
    """The issuance of one voucher redemption at the provider (1:1 with the redemption).

    `external_id` at the provider is the redemption id, stable across every retry; the provider's
    order and reward ids are stored before success is reported. `create_calls` counts the create
    requests that may have reached the provider: when it is non-zero, the next attempt looks the
    order up by external id before it would ever create again."""

    __tablename__ = "voucher_redemptions"
    __table_args__ = (
        CheckConstraint(_in("status", VoucherState.ALL), name="status_valid"),
        Index(
            "uq_voucher_redemptions_reward",
            "provider",
            "provider_reward_id",
            unique=True,
            postgresql_where=text("provider_reward_id IS NOT NULL"),
        ),
        Index("ix_voucher_redemptions_open", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id", ondelete="RESTRICT"), unique=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_product_id: Mapped[str | None] = mapped_column(String(100))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="BRL", server_default="BRL")
    recipient_name: Mapped[str] = mapped_column(String(100))
    recipient_email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default=VoucherState.ISSUING)
    provider_order_id: Mapped[str | None] = mapped_column(String(100))
    provider_reward_id: Mapped[str | None] = mapped_column(String(100))
    voucher_link: Mapped[str | None] = mapped_column(Text)
    voucher_code: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    create_calls: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    issue_job_id: Mapped[str | None] = mapped_column(String(36))
    last_attempt_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    alerted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
