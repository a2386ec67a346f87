"""Company default for inviting users created by a CSV import (company_settings.send_invites_on_import)

NULL keeps the app-wide IMPORT_SEND_INVITES default, so existing companies behave as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites no rows and takes the lock only briefly.
    op.add_column("company_settings", sa.Column("send_invites_on_import", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("company_settings", "send_invites_on_import")
