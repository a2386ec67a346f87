"""Default roles found by a stable key (roles.key), and sessions revoked on a password change
(users.token_version, carried in access tokens as `tv`)

A renamed default role keeps its key, so user creation and CSV imports still find the Employee
role; a role with a key is a default and cannot be deleted. Existing default roles get their key
from their (still original) name.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = {
    "Super Admin": "super_admin",
    "Company Admin": "company_admin",
    "HR Manager": "hr_manager",
    "Team Lead": "team_lead",
    "Employee": "employee",
}


def upgrade() -> None:
    op.add_column("roles", sa.Column("key", sa.String(32), nullable=True))
    roles = sa.table("roles", sa.column("name", sa.String), sa.column("key", sa.String))
    for name, key in _KEYS.items():
        op.execute(roles.update().where(roles.c.name == name).values(key=key))
    # NULLs (custom roles) never collide; one role per (company, key).
    op.create_unique_constraint("uq_roles_company_id_key", "roles", ["company_id", "key"])
    # A server default fills existing rows without a table rewrite (Postgres 11+).
    op.add_column(
        "users", sa.Column("token_version", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )


def downgrade() -> None:
    op.drop_column("users", "token_version")
    op.drop_constraint("uq_roles_company_id_key", "roles", type_="unique")
    op.drop_column("roles", "key")
