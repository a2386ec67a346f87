"""Alembic environment: the URL comes from DATABASE_URL (the only setting the release step needs),
the metadata from app.models."""

from __future__ import annotations

import sys
from logging.config import fileConfig

from sqlalchemy import create_engine, pool

from alembic import context
from app.config import ConfigError, load_database_url
from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    try:
        return load_database_url()
    except ConfigError as exc:
        print(f"alembic: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)  # like the other entry points


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(), target_metadata=target_metadata, literal_binds=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = create_engine(_database_url(), poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
