"""Per-company turns on bulk queues (jobs.held)

A job on a bulk queue (emails) is written `pending` and `held`: it waits in Postgres for its
company's turn, and the kernel publishes the oldest held job of a company when that company has a
free slot. One company's backlog of invites then cannot queue ahead of another company's email.

Revision ID: 0012
Revises: 0030
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("held", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_index(
        "ix_jobs_held_turns",
        "jobs",
        ["queue", "company_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("held"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_held_turns", table_name="jobs")
    op.drop_column("jobs", "held")
