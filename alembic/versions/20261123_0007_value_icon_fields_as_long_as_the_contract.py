"""Value icon fields take what the contract allows (text fields up to 500 characters)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("company_values", "icon_name", type_=sa.String(length=500), existing_nullable=True)
    op.alter_column("company_values", "icon_color", type_=sa.String(length=500), existing_nullable=True)


def downgrade() -> None:
    op.alter_column("company_values", "icon_color", type_=sa.String(length=32), existing_nullable=True)
    op.alter_column("company_values", "icon_name", type_=sa.String(length=64), existing_nullable=True)
