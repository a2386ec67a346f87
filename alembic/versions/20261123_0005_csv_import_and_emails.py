"""CSV import and emails (issue 5): csv_import_previews, user_managers, sent_emails

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('csv_import_previews',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('rows', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('check_job_id', sa.String(length=36), nullable=True),
    sa.Column('import_job_id', sa.String(length=36), nullable=True),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_csv_import_previews_company_id_companies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_csv_import_previews_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csv_import_previews'))
    )
    op.create_index(op.f('ix_csv_import_previews_company_id'), 'csv_import_previews', ['company_id'], unique=False)
    op.create_index('ix_csv_import_previews_expires_at', 'csv_import_previews', ['expires_at'], unique=False)
    op.create_table('sent_emails',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('to_email', sa.String(length=254), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('transient', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('attempts', sa.SmallInteger(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_sent_emails_company_id_companies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sent_emails_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sent_emails'))
    )
    op.create_index('ix_sent_emails_company_created', 'sent_emails', ['company_id', 'created_at'], unique=False)
    op.create_index('ix_sent_emails_user_template', 'sent_emails', ['user_id', 'template'], unique=False)
    op.create_index('uq_sent_emails_run', 'sent_emails', ['run_id', 'template', 'to_email'], unique=True, postgresql_where=sa.text('run_id IS NOT NULL'))
    op.create_table('user_managers',
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('manager_id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_user_managers_company_id_companies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['manager_id'], ['users.id'], name=op.f('fk_user_managers_manager_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_managers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_managers'))
    )
    op.create_index(op.f('ix_user_managers_company_id'), 'user_managers', ['company_id'], unique=False)
    op.create_index(op.f('ix_user_managers_manager_id'), 'user_managers', ['manager_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_user_managers_manager_id'), table_name='user_managers')
    op.drop_index(op.f('ix_user_managers_company_id'), table_name='user_managers')
    op.drop_table('user_managers')
    op.drop_index('uq_sent_emails_run', table_name='sent_emails', postgresql_where=sa.text('run_id IS NOT NULL'))
    op.drop_index('ix_sent_emails_user_template', table_name='sent_emails')
    op.drop_index('ix_sent_emails_company_created', table_name='sent_emails')
    op.drop_table('sent_emails')
    op.drop_index('ix_csv_import_previews_expires_at', table_name='csv_import_previews')
    op.drop_index(op.f('ix_csv_import_previews_company_id'), table_name='csv_import_previews')
    op.drop_table('csv_import_previews')
