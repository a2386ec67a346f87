"""HTTP plumbing shared by every feature: the flask-smorest Api, one error shape, lenient schemas,
the request's database session and the `202 Accepted` answer for slow work."""

from __future__ import annotations

import logging
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import flask_smorest
import marshmallow as ma
from flask import Flask, Response, g, jsonify, request
from flask_smorest.arguments import ArgumentsMixin
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from app import db
from app import errors as domain
from app import logging as app_logging

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Machine codes for the statuses we answer without a more specific one.
_DEFAULT_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}


# The one mapping from domain errors (app/errors.py) to HTTP statuses; most specific class first.
DOMAIN_STATUS: tuple[tuple[type[domain.DomainError], int], ...] = (
    (domain.Invalid, 400),
    (domain.Unauthenticated, 401),
    (domain.Forbidden, 403),
    (domain.NotFound, 404),
    (domain.Conflict, 409),
    (domain.TooLarge, 413),
    (domain.RateLimited, 429),
    (domain.Unavailable, 503),
    (domain.PermanentJobError, 422),
)


def domain_status(error: domain.DomainError) -> int:
    return next((status for cls, status in DOMAIN_STATUS if isinstance(error, cls)), 400)


def domain_error_response(error: domain.DomainError) -> Response:
    response = error_response(domain_status(error), error.message, error.code, error.details)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


class ApiError(Exception):
    """Raise from views and services to answer with the standard error shape."""

    def __init__(self, status: int, message: str, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "ERROR")
        self.details = details


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    details: Any = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The one error shape; `extra` adds top-level keys beside it (the shape's own keys win)."""
    body: dict[str, Any] = {
        "error": {"code": code or _DEFAULT_CODES.get(status, "ERROR"), "message": message},
        "message": message,  # what the existing frontend shows
        "request_id": g.get("request_id"),
    }
    if details is not None:
        body["error"]["details"] = details
    if extra:
        body = {**extra, **body}
    response = jsonify(body)
    response.status_code = status
    return response


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # the frontend expects 400 for schema violations, not 422


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


ArgumentsMixin.ARGUMENTS_PARSER = Blueprint.ARGUMENTS_PARSER


class Api(flask_smorest.Api):
    def handle_http_exception(self, error: HTTPException) -> Response:  # type: ignore[override]
        status = error.code or 500
        data = getattr(error, "data", {}) or {}
        if "messages" in data:  # webargs validation failure
            details = data["messages"]
            return error_response(status, _validation_summary(details), "VALIDATION_ERROR", details)
        message = data.get("message") or error.description or error.name
        response = error_response(status, str(message), data.get("code"))
        for name, value in data.get("headers", {}).items():
            response.headers[name] = value
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


def _validation_summary(details: Any) -> str:
    """One readable sentence from webargs' {location: {field: [messages]}}."""
    parts: list[str] = []

    def walk(path: list[str], value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk([*path, str(key)], inner)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts.append(f"{'.'.join(path) or 'body'}: {' '.join(value)}")
        else:
            parts.append(f"{'.'.join(path) or 'body'}: {value}")

    if isinstance(details, dict):
        for location, fields in details.items():
            walk([] if location in _LOCATIONS else [str(location)], fields)
    return "Invalid request: " + "; ".join(parts) if parts else "Invalid request"


_LOCATIONS = {"json", "query", "form", "files", "headers", "cookies", "view_args", "json_or_form"}


def format_utc(value: datetime) -> str:
    """`2025-01-31T12:00:00.000Z`: UTC, milliseconds, a `Z` (the contract's form, §1.5)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UtcDateTime(ma.fields.DateTime):
    """Timestamps as the frontend reads them (`format_utc`). Loads any ISO datetime; a naive one
    is taken as UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_utc(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        return result if result.tzinfo is not None else result.replace(tzinfo=UTC)


# OpenAPI security requirement for routes that need a bearer token (the scheme is declared in init_app).
BEARER = [{"bearerAuth": []}]


def page_count(total: int, limit: int) -> int:
    return math.ceil(total / limit) if total else 0


def page_fields(total: int, page: int, limit: int) -> dict[str, int]:
    """The page keys the frontend reads beside `data` (contract §1.6)."""
    return {"totalCount": total, "pageCount": page_count(total, limit), "currentPage": page}


class BaseSchema(ma.Schema):
    """Unknown fields are ignored, as the frontend sends extras (contract §1.4)."""

    class Meta:
        unknown = ma.EXCLUDE


def init_app(app: Flask) -> Api:
    app.config.setdefault("API_TITLE", "Valorize API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = Api(
        app,
        spec_kwargs={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            }
        },
    )

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        app_logging.clear()
        app_logging.bind(service="web", request_id=g.request_id)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is None:
            return
        try:
            session.rollback()  # anything a view did not commit is discarded
        except Exception:  # a commit that failed half-way (connection lost): nothing left to undo
            log.debug("rollback at teardown failed", exc_info=True)
        finally:
            session.close()

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.message, error.code, error.details)

    app.register_error_handler(domain.DomainError, domain_error_response)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        if _is_outage(error):
            # Postgres or Redis is restarting or unreachable: nothing was written; try again soon.
            log.warning("dependency unavailable", extra={"error": f"{type(error).__name__}: {error}"[:500]})
            return domain_error_response(
                domain.Unavailable("The service is briefly unavailable; try again in a few seconds")
            )
        log.exception("unhandled error")
        return error_response(500, "Internal server error", "INTERNAL_ERROR")

    return api


def _is_outage(error: BaseException) -> bool:
    """A lost or refused connection to Postgres or Redis (not a bad query, not a constraint)."""
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(error, sa_exc.TimeoutError)  # the pool gave up waiting for a connection


def request_session() -> Session:
    """The request's session; views commit explicitly, anything uncommitted is rolled back."""
    if "db_session" not in g:
        g.db_session = db.new_session()
    return g.db_session


def accepted(job_id: str, status: str) -> tuple[dict[str, str], int, dict[str, str]]:
    """The contract for slow work: 202 + job id + where to watch it."""
    return {"job_id": job_id, "status": status}, 202, {"Location": f"/jobs/{job_id}"}


def cap_request_body(wire_limit: int, too_large: ApiError) -> None:
    """Refuse a body over `wire_limit` bytes from its Content-Length before reading any of it, and
    cut a chunked one off at that size while it streams (werkzeug raises RequestEntityTooLarge)."""
    if request.content_length is not None and request.content_length > wire_limit:
        raise too_large
    request.max_content_length = wire_limit


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > 255:
        raise ApiError(400, "Idempotency-Key must be at most 255 characters")
    return key
