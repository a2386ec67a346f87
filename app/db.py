"""One engine and session factory, shared by web, worker and cron."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, Engine, MetaData, Result, create_engine
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import JSON

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON().with_variant(JSONB(), "postgresql"),
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def init_engine(database_url: str, pool_size: int = 5) -> Engine:
    """Create (or replace) the process-wide engine. Idempotent for the same URL."""
    global _engine, _session_factory
    if _engine is not None and _engine.url == make_url(database_url):
        return _engine
    if _engine is not None:
        _engine.dispose()
    _engine = create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # survives a Postgres restart between requests/jobs
        pool_recycle=1800,
        # pg_stat_activity then says which process (web, worker, cron, pytest…) holds a connection.
        connect_args={"application_name": f"valorize:{Path(sys.argv[0]).stem or 'python'}"[:63]},
    )
    _session_factory = sessionmaker(bind=_engine, expire_on_commit=False)
    return _engine


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (SQLAlchemy types `execute()` as a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def engine() -> Engine:
    if _engine is None:
        raise RuntimeError("database engine not initialised; call init_engine() first")
    return _engine


def new_session() -> Session:
    if _session_factory is None:
        raise RuntimeError("database engine not initialised; call init_engine() first")
    return _session_factory()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _drop_pool_in_child() -> None:
    # RQ forks a work-horse per job: the child must not reuse the parent's sockets.
    if _engine is not None:
        _engine.dispose(close=False)


os.register_at_fork(after_in_child=_drop_pool_in_child)
