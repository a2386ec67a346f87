"""Retries and deferrals wait in Postgres (jobs.next_attempt_at), not in a worker's RQ scheduler

A queued row with a future `next_attempt_at` is waiting out a backoff or a rate-limit window and is
on no Redis queue; the kernel pump publishes it when it is due.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_jobs_due",
        "jobs",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'queued' AND next_attempt_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_column("jobs", "next_attempt_at")
