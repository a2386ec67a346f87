"""/health (process is alive) and /ready (database, Redis and schema are usable)."""

from __future__ import annotations

from functools import cache
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app import db, runtime
from app.api import error_response
from app.config import ROOT

blp = Blueprint("health", __name__)


@cache
def migration_heads() -> frozenset[str]:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@blp.get("/health")
def health() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@blp.get("/ready")
def ready() -> ResponseReturnValue:
    checks: dict[str, Any] = {}
    failed: list[str] = []
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        checks["database"] = "ok"
        expected = migration_heads()
        if current == expected:
            checks["migrations"] = "ok"
        else:
            checks["migrations"] = f"at {sorted(current) or 'none'}, expected {sorted(expected)}"
            failed.append("migrations")
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
        failed.append("database")
    try:
        runtime.redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
        failed.append("redis")
    if failed:
        # The shared error shape, plus the keys operators and probes already read (status, failed, checks).
        return error_response(
            503,
            "Not ready: " + ", ".join(failed),
            "NOT_READY",
            details={"failed": failed},
            extra={"status": "unavailable", "failed": failed, "checks": checks},
        )
    return jsonify({"status": "ready", "checks": checks})
