"""Scheduled tasks once per period (issue 6)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One weekly allowance reset per (company, week): the unique constraint is the guarantee.
    op.create_table(
        "weekly_resets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("weekly_amount", sa.Integer(), nullable=False),
        sa.Column("wallets_changed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_weekly_resets_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_resets")),
        sa.UniqueConstraint(
            "company_id", "period_start", name=op.f("uq_weekly_resets_company_id_period_start")
        ),
    )
    # One expiry notice per (credit lot, threshold in days).
    op.create_table(
        "expiry_notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("credit_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("threshold_days", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("coins", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("email_record_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_expiry_notices_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["credit_transaction_id"],
            ["wallet_transactions.id"],
            name=op.f("fk_expiry_notices_credit_transaction_id_wallet_transactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_expiry_notices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expiry_notices")),
        sa.UniqueConstraint(
            "credit_transaction_id",
            "threshold_days",
            name=op.f("uq_expiry_notices_credit_transaction_id_threshold_days"),
        ),
    )
    op.create_index(op.f("ix_expiry_notices_user_id"), "expiry_notices", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_expiry_notices_user_id"), table_name="expiry_notices")
    op.drop_table("expiry_notices")
    op.drop_table("weekly_resets")
