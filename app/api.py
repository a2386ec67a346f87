"""HTTP plumbing shared by every feature: the flask-smorest Api, one error shape, lenient schemas,
the request's database session and the `202 Accepted` answer for slow work."""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Callable
from copy import deepcopy
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest.arguments import ArgumentsMixin
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request
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


def status_of(kind: type[domain.DomainError]) -> int:
    """The HTTP status of a domain error class (400 for a class the table does not name)."""
    return next((status for cls, status in DOMAIN_STATUS if issubclass(kind, cls)), 400)


def domain_status(error: domain.DomainError) -> int:
    return status_of(type(error))


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


# --- input that must never reach a handler (no 500 from any input) -----------------------------
#
# Postgres refuses NUL characters in text and lone surrogates cannot be encoded; integers past
# 64 bits overflow its columns and OFFSET; Python's JSON decoder recurses once per nesting level.
# Each is refused here, once for every route, with a 400 in the error shape.

MAX_JSON_DEPTH = 64
# The frontend is JavaScript: no integer it sends is beyond Number.MAX_SAFE_INTEGER, and every
# product of two of them (offset = page * limit) still fits a Postgres bigint.
MAX_SAFE_INTEGER = 2**53 - 1
_MAX_INT_DIGITS = len(str(MAX_SAFE_INTEGER)) + 1


def unsafe_text(value: str) -> str | None:
    """Why `value` cannot be stored (a NUL character, a lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def _bad_input(where: str, problem: str, code: str = "INVALID_INPUT") -> domain.Invalid:
    return domain.Invalid(f"Invalid request: {where} {problem}", code, {"location": where})


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > _MAX_INT_DIGITS or abs(int(text)) > MAX_SAFE_INTEGER:
        raise _bad_input("JSON body", f"has an integer beyond ±{MAX_SAFE_INTEGER}", "NUMBER_OUT_OF_RANGE")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _bad_input("JSON body", "has a number out of range", "NUMBER_OUT_OF_RANGE")
    return value


def _no_constant(name: str) -> Any:
    raise _bad_input("JSON body", f"has {name}, which is not JSON", "INVALID_JSON")


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise _bad_input("JSON body", f"is nested more than {MAX_JSON_DEPTH} levels deep", "JSON_TOO_DEEP")
    if isinstance(value, str):
        problem = unsafe_text(value)
        if problem:
            raise _bad_input("JSON body", f"text {problem}")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_json(key, depth)
            _check_json(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_json(inner, depth + 1)


def load_json(raw: str | bytes) -> Any:
    """Parse a request's JSON, refusing (400) what no handler can store: NUL characters, lone
    surrogates, integers beyond MAX_SAFE_INTEGER, NaN/Infinity and nesting past MAX_JSON_DEPTH.
    Malformed JSON raises json.JSONDecodeError as json.loads does."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        value = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except RecursionError:
        raise _bad_input(
            "JSON body", f"is nested more than {MAX_JSON_DEPTH} levels deep", "JSON_TOO_DEEP"
        ) from None
    _check_json(value)
    return value


class JSONProvider(DefaultJSONProvider):
    """`request.get_json()` goes through `load_json` too."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s)


def _out_of_range(value: Any, path: str = "") -> str | None:
    """The path of the first integer beyond ±MAX_SAFE_INTEGER in parsed arguments, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return path or "value" if abs(value) > MAX_SAFE_INTEGER else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, inner in items:
        found = _out_of_range(inner, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # the frontend expects 400 for schema violations, not 422

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return webargs_core.missing
        return load_json(req.get_data(cache=True))

    def parse(self, argmap: Any, req: Any = None, **kwargs: Any) -> Any:
        data = super().parse(argmap, req, **kwargs)
        field = _out_of_range(data)
        if field:
            location = kwargs.get("location") or "json"
            raise domain.Invalid(
                f"Invalid request: {field}: must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}",
                "VALIDATION_ERROR",
                {location: {field: ["Number out of range."]}},
            )
        return data


# --- OpenAPI: the real error shape, bearer security, job headers --------------------------------


class ErrorDetailSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "Machine code, e.g. NOT_FOUND"})
    message = ma.fields.String(required=True)
    details = ma.fields.Raw(metadata={"description": "Depends on the code (e.g. field messages)"})


class ErrorSchema(ma.Schema):
    """The one error shape (`error_response`)."""

    class Meta:
        unknown = ma.INCLUDE  # a few answers add keys beside it (e.g. /ready's checks)

    error = ma.fields.Nested(ErrorDetailSchema, required=True)
    message = ma.fields.String(required=True, metadata={"description": "What the frontend shows"})
    request_id = ma.fields.String(allow_none=True, metadata={"description": "Also in X-Request-ID"})


# OpenAPI security requirement for routes that need a bearer token (the scheme is declared in init_app).
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_DOC_FLAGS = "valorize"
F = TypeVar("F", bound=Callable[..., Any])


def flag_view(view: F, **flags: Any) -> F:
    """Attach flags to a view (its documentation and the request guards read them): `auth` (needs a
    bearer token), `job` (creates a job: Idempotency-Key and Prefer), `rate_limited` (may answer 429)."""
    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    apidoc.setdefault(_DOC_FLAGS, {}).update(flags)
    view._apidoc = apidoc  # type: ignore[attr-defined]
    return view


def view_flags(view: Callable[..., Any] | None) -> dict[str, Any]:
    return dict(getattr(view, "_apidoc", {}).get(_DOC_FLAGS, {})) if view is not None else {}


IDEMPOTENCY_KEY_PARAM = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A retry with the same key returns the job the first request created",
}
_JOB_HEADERS = [
    IDEMPOTENCY_KEY_PARAM,
    {
        "in": "header",
        "name": "Prefer",
        "required": False,
        "schema": {"type": "string"},
        "description": "`respond-async`: answer 202 + job id at once instead of waiting for the job",
    },
]


def _prepare_flag_doc(doc: dict[str, Any], doc_info: dict[str, Any], **_: Any) -> dict[str, Any]:
    flags = doc_info.get(_DOC_FLAGS, {})
    responses = doc.setdefault("responses", {})
    if flags.get("auth"):
        doc.setdefault("security", BEARER)
        responses.setdefault("401", "UNAUTHORIZED")
        responses.setdefault("403", "FORBIDDEN")
    if flags.get("job"):
        names = {p.get("name") for p in doc.get("parameters", []) if isinstance(p, dict)}
        doc.setdefault("parameters", []).extend(deepcopy(h) for h in _JOB_HEADERS if h["name"] not in names)
    if flags.get("job") or flags.get("rate_limited"):
        responses.setdefault(
            "429",
            {
                "description": "Too many requests: try again after Retry-After seconds",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    return doc


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(_prepare_flag_doc)

    def alt_response(self, status_code: Any, response: Any = None, **kwargs: Any) -> Any:
        """An error answer without a schema of its own is documented with the real error shape."""
        if int(status_code) >= 400 and response is None and kwargs.get("schema") is None:
            kwargs["schema"] = ErrorSchema
        return super().alt_response(status_code, response, **kwargs)


ArgumentsMixin.ARGUMENTS_PARSER = Blueprint.ARGUMENTS_PARSER


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
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


# The dates and datetimes a client may send (filters, report periods). Views shift them by at most
# the length of a period made of two of them (the previous period, the day after the end, a default
# 30-day window); with both ends in these years every such shift stays inside Python's datetime
# range (years 1 to 9999), so no date a client sends can overflow into a 500.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2999


def _within_years(value: date) -> None:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ma.ValidationError(f"Must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}.")


class UtcDateTime(ma.fields.DateTime):
    """Timestamps as the frontend reads them (`format_utc`). Loads any ISO datetime from
    EARLIEST_YEAR to LATEST_YEAR; a naive one is taken as UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_utc(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)
        # Normalised to UTC: Postgres refuses offsets past ±15:59 that Python accepts (±23:59).
        try:
            result = result.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past the last representable instant
            raise ma.ValidationError("Not a valid datetime.") from None
        _within_years(result)
        return result


class Day(ma.fields.Date):
    """A calendar day (`YYYY-MM-DD`) from EARLIEST_YEAR to LATEST_YEAR."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        result = super()._deserialize(value, attr, data, **kwargs)
        _within_years(result)
        return result


class Timestamp(ma.fields.String):
    """A timestamp a presenter already formatted with `format_utc` (`…Z`): dumped as it is and
    documented as an OpenAPI `date-time`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"format": "date-time", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)


def page_count(total: int, limit: int) -> int:
    return math.ceil(total / limit) if total else 0


def page_fields(total: int, page: int, limit: int) -> dict[str, int]:
    """The page keys the frontend reads beside `data` (contract §1.6)."""
    return {"totalCount": total, "pageCount": page_count(total, limit), "currentPage": page}


# Validates a URL the frontend will load (an avatar, a logo): absolute, http or https.
HTTP_URL = ma.validate.URL(relative=False, schemes={"http", "https"}, error="Must be an http(s) URL")


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
    app.json = JSONProvider(app)
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

    @app.before_request
    def _refuse_unsafe_input() -> None:
        """NUL characters or lone surrogates in the path or the query string: 400 before any view."""
        problem = unsafe_text(request.path)
        if problem:
            raise _bad_input("path", problem)
        for key, value in request.args.items(multi=True):
            problem = unsafe_text(key) or unsafe_text(value)
            if problem:
                raise _bad_input("query string", problem)

    @app.before_request
    def _cap_public_bodies() -> None:
        """A route anyone may call reads at most PUBLIC_MAX_BODY_BYTES (a login is a few hundred
        bytes), refused from Content-Length or cut off while streaming, before anything parses it.
        Protected routes refuse an anonymous caller before they read the body."""
        if request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint is None:
            return
        if view_flags(_method_view(app, request.endpoint, request.method)).get("auth"):
            return
        limit = int(app.config["PUBLIC_MAX_BODY_BYTES"])
        cap_request_body(
            limit,
            domain.TooLarge(
                f"The request body is too large: the limit is {limit} bytes", "PAYLOAD_TOO_LARGE"
            ),
        )

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        headers.setdefault("Referrer-Policy", "no-referrer")
        # Answers carry tokens, personal data and balances: no cache keeps them unless a route
        # says otherwise (public logos and the docs' assets do).
        headers.setdefault("Cache-Control", "no-store")
        if app.config.get("HSTS"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
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


def _method_view(app: Flask, endpoint: str, method: str) -> Callable[..., Any] | None:
    """The function that serves `method` on `endpoint` (a MethodView's method, or the view)."""
    view = app.view_functions.get(endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return getattr(view_class, method.lower(), None)
    return view


def cap_request_body(wire_limit: int, too_large: Exception) -> None:
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
        raise domain.Invalid("Idempotency-Key must be at most 255 characters")
    problem = unsafe_text(key)
    if problem:
        raise _bad_input("Idempotency-Key header", problem)
    return key
