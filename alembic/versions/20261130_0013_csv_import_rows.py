"""CSV import previews keep their rows in a table (csv_import_rows), not in one JSON value

The rows of a file are written with COPY and checked with set-based SQL; the preview keeps its
counts (`valid_rows` once checked). Previews stored as JSON are moved over, and back on downgrade.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "csv_import_rows",
        sa.Column("preview_id", sa.String(length=32), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("manager_email", sa.Text(), nullable=True),
        sa.Column("errors", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.ForeignKeyConstraint(
            ["preview_id"],
            ["csv_import_previews.id"],
            name=op.f("fk_csv_import_rows_preview_id_csv_import_previews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("preview_id", "row_number", name=op.f("pk_csv_import_rows")),
    )
    op.add_column("csv_import_previews", sa.Column("valid_rows", sa.Integer(), nullable=True))
    op.execute(
        """
        INSERT INTO csv_import_rows (preview_id, row_number, name, email, department, position,
                                     manager_email, errors)
        SELECT p.id, (r->>'rowNumber')::int, coalesce(r->>'name', ''), r->>'email',
               nullif(r->>'department', ''), nullif(r->>'position', ''), nullif(r->>'managerEmail', ''),
               ARRAY(SELECT jsonb_array_elements_text(coalesce(r->'errors', '[]'::jsonb)))
        FROM csv_import_previews p, jsonb_array_elements(p.rows) r
        """
    )
    op.execute(
        """
        UPDATE csv_import_previews p SET valid_rows = (
            SELECT count(*) FROM csv_import_rows r WHERE r.preview_id = p.id AND r.errors = '{}')
        WHERE p.status <> 'checking'
        """
    )
    op.drop_column("csv_import_previews", "rows")


def downgrade() -> None:
    op.add_column(
        "csv_import_previews",
        sa.Column(
            "rows",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.execute(
        """
        UPDATE csv_import_previews p SET rows = coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'rowNumber', r.row_number, 'name', r.name, 'email', r.email,
                'department', r.department, 'position', r.position, 'managerEmail', r.manager_email,
                'status', CASE WHEN r.errors = '{}' THEN 'valid' ELSE 'error' END,
                'errors', to_jsonb(r.errors)) ORDER BY r.row_number)
            FROM csv_import_rows r WHERE r.preview_id = p.id), '[]'::jsonb)
        """
    )
    op.alter_column("csv_import_previews", "rows", server_default=None)
    op.drop_column("csv_import_previews", "valid_rows")
    op.drop_table("csv_import_rows")
