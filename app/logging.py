"""JSON log lines that carry request_id / job_id / worker / company_id from context variables."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_context: ContextVar[dict[str, Any]] = ContextVar("valorize_log_context", default={})  # noqa: B039


def bind(**values: Any) -> None:
    """Add fields to every log line of the current context (request, job)."""
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})


def clear() -> None:
    _context.set({})


@contextmanager
def job_log_context(**values: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_configured = False


def configure(level: str = "INFO", service: str = "web", **static: Any) -> None:
    """Send JSON lines to stdout. Safe to call more than once (the last call's fields win)."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level)
    if not _configured:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            )
        )
        handler.addFilter(_ContextFilter())
        root.handlers[:] = [handler]
        # /ready reads the migration scripts; alembic narrates that at INFO on every process.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        _configured = True
    bind(service=service, **static)
