"""Process-wide settings and connections, initialised once by each entry point (web, worker, cron)."""

from __future__ import annotations

from redis import Redis

from app import db
from app.config import Settings, load_settings
from app.jobs.rq_plumbing import redis_connection

_settings: Settings | None = None


def init(settings: Settings | None = None) -> Settings:
    global _settings
    _settings = settings or load_settings()
    db.init_engine(_settings.database_url, _settings.db_pool_size)
    return _settings


def settings() -> Settings:
    if _settings is None:
        raise RuntimeError("runtime not initialised; call app.runtime.init() first")
    return _settings


def redis() -> Redis:
    return redis_connection(settings().redis_url)
