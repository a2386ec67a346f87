"""JSON log lines that carry request_id / job_id / worker / company_id from context variables,
and the web process's access log (one JSON line per HTTP request, see `install_access_log`)."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter
from rq.job import get_current_job

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
        if record.name.startswith("rq.") and getattr(record, "job_id", None) is None:
            job_id = _rq_job_id(record)
            if job_id is not None:
                record.job_id = job_id
        return True


# Ids of the jobs RQ runs here: the kernel's (jobs.id, a UUID) and rq-scheduler's (cron-<task>).
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|cron-[a-z0-9-]+")
_main_pid: int | None = None  # the worker process; a different pid under it is a work-horse


def _rq_job_id(record: logging.LogRecord) -> str | None:
    """The job an RQ log line is about, for RQ's own lines (the kernel binds job_id on its own).

    Inside the job: RQ's current job. In the work-horse RQ forked for a job: the RQ_JOB_ID it sets
    for that horse. In the worker process itself, RQ names the job in the line's arguments."""
    current = get_current_job()
    if current is not None:
        return str(current.id)
    if _main_pid is not None and os.getpid() != _main_pid and record.name in ("rq.worker", "rq.job"):
        return os.environ.get("RQ_JOB_ID")
    args = record.args if isinstance(record.args, tuple) else ()
    for arg in reversed(args):
        if isinstance(arg, str) and _JOB_ID.fullmatch(arg):
            return arg
    return None


class _Formatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC with its offset, e.g. 2026-11-23T14:05:09.123+00:00."""
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing the project's JSON lines (context fields included) to `stream` (stdout)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        _Formatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter())
    return handler


_configured = False


def configure(level: str = "INFO", service: str = "web", **static: Any) -> None:
    """Send JSON lines to stdout. Safe to call more than once (the last call's fields win)."""
    global _configured, _main_pid
    if service == "worker":
        _main_pid = os.getpid()
    root = logging.getLogger()
    root.setLevel(level)
    if not _configured:
        root.handlers[:] = [json_handler()]
        # /ready reads the migration scripts; alembic narrates that at INFO on every process.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        _configured = True
    bind(service=service, **static)


access_log = logging.getLogger("app.access")

# Liveness probes and metric scrapers poll these paths on a timer from every monitor, on every
# replica: one INFO line per hit would bury the real traffic, so a successful hit is logged at
# DEBUG. A failing one (status >= 400) is still an INFO line like any other request.
_QUIET_PATHS = frozenset({"/health", "/metrics"})


def install_access_log(app: Flask) -> None:
    """One JSON line per HTTP request on "app.access" (it replaces gunicorn's plain-text access log).

    request_id, and user_id / company_id once the request authenticated, come from the logging
    context bound in app.api / app.auth. The line is written at teardown, so error answers and 500s
    are logged too. Only the path is logged, never the query string (it can carry tokens).
    The remote address is the client's when TRUSTED_PROXY_HOPS lets ProxyFix read X-Forwarded-For,
    otherwise the socket peer's.
    """

    def start_timer() -> None:
        g.access_started = time.perf_counter()

    def remember_response(response: Response) -> Response:
        g.access_response = response
        return response

    def log_access(exc: BaseException | None) -> None:
        response = g.pop("access_response", None)
        status = response.status_code if response is not None else 500
        level = logging.DEBUG if request.path in _QUIET_PATHS and status < 400 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        started = g.pop("access_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
        rule = request.url_rule
        access_log.log(
            level,
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "route": rule.rule if rule is not None else None,
                "status": status,
                "duration_ms": duration_ms,
                "remote_addr": request.remote_addr,
            },
        )

    # First in the before-request list (the clock starts before any other hook runs or aborts)
    # and first in the after-request list, which Flask runs last to first: this one sees the
    # response that is actually sent.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request_funcs.setdefault(None, []).insert(0, remember_response)
    app.teardown_request(log_access)
