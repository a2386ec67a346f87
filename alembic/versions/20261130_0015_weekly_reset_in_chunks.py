"""The weekly reset in chunks: a resumable cursor on its marker, and wallets indexed by (company, id)

The reset walks a company's wallets in id order, one short transaction per chunk, so no wallet row
stays locked for the whole company's reset. `weekly_resets.cursor` is the last wallet id a
committed chunk covered and `completed_at` is set by the last chunk; markers written before this
revision were complete when written. The (company_id, id) index serves the keyset walk and every
lookup the (company_id) index served, which it replaces; both are built/dropped CONCURRENTLY so
the API keeps writing wallets meanwhile.

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("weekly_resets", sa.Column("cursor", sa.String(length=32), nullable=True))
    op.add_column("weekly_resets", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE weekly_resets SET completed_at = reset_at")
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_wallets_company_id_id",
            "wallets",
            ["company_id", "id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_wallets_company_id", table_name="wallets", postgresql_concurrently=True, if_exists=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_wallets_company_id",
            "wallets",
            ["company_id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_wallets_company_id_id", table_name="wallets", postgresql_concurrently=True, if_exists=True
        )
    op.drop_column("weekly_resets", "completed_at")
    op.drop_column("weekly_resets", "cursor")
