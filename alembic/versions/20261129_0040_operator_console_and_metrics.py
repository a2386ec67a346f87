"""Operator console and metrics: the jobs:operate_queues permission, and an index on jobs.finished_at

Super Admin holds every permission, so existing Super Admin roles get the new one; no company role
does. The index serves /metrics (jobs finished in the last minutes); it is built CONCURRENTLY, so the
API keeps writing jobs while it builds.

Revision ID: 0040
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0040"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERMISSION = "jobs:operate_queues"
DESCRIPTION = "Delete, empty and requeue queued jobs in the operator console"


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO permissions (name, description, category) VALUES (:name, :description, 'jobs')"
            " ON CONFLICT (name) DO NOTHING"
        ).bindparams(name=PERMISSION, description=DESCRIPTION)
    )
    op.execute(
        sa.text(
            "INSERT INTO role_permissions (role_id, permission_id)"
            " SELECT roles.id, permissions.id FROM roles, permissions"
            " WHERE roles.name = 'Super Admin' AND permissions.name = :name"
            " ON CONFLICT DO NOTHING"
        ).bindparams(name=PERMISSION)
    )
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_jobs_finished",
            "jobs",
            ["finished_at"],
            postgresql_where=sa.text("finished_at IS NOT NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_jobs_finished", table_name="jobs", postgresql_concurrently=True, if_exists=True)
    op.execute(sa.text("DELETE FROM permissions WHERE name = :name").bindparams(name=PERMISSION))
