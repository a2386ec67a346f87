"""The operator console at /admin/rq: rq-dashboard inside the API, and the schedule page beside it.

Who gets in: platform operators (`admin:manage_system`), after a browser login (email and password,
or an access token posted once) that sets a short-lived signed cookie: HttpOnly, SameSite=Strict,
Secure behind https, Path=/admin/rq, so the API never sees it. The cookie names the user, and the
user and their permissions are read again on every request.

What they may do: look, always. Change Redis (rq-dashboard's delete, empty, requeue and compact) only
with `jobs:operate_queues` as well, checked here on the server; the buttons are also hidden.

CSRF: every state-changing request needs the token derived from the session (double submit; the
`_csrf_token` cookie is the one rq-dashboard's own JavaScript reads and sends back as `X-CSRFToken`,
our forms send it as a field), and a cross-site Origin is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import rq_dashboard
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.signals import before_render_template
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jinja2 import Template
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker
from rq_dashboard import web as rq_dashboard_web
from rq_dashboard.web import config as rq_dashboard_config
from werkzeug.wrappers import Response as BaseResponse

from app import logging as app_logging
from app import runtime
from app.api import request_session
from app.errors import Forbidden
from app.features.ops import service
from app.features.ops.service import Operator
from app.jobs.rq_plumbing import JSONJob

log = logging.getLogger(__name__)

PREFIX = "/admin/rq"
SESSION_COOKIE = "valorize_ops"
CSRF_COOKIE = "_csrf_token"  # read by rq-dashboard's dashboard.js, sent back as X-CSRFToken
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf_token"
_SALT = "valorize.ops-console.session"

# rq-dashboard endpoints that change Redis. requeue_all also answers GET upstream: refused here.
STATE_CHANGING = frozenset(
    {
        "rq_dashboard.delete_job_view",
        "rq_dashboard.empty_queue",
        "rq_dashboard.requeue_job_view",
        "rq_dashboard.requeue_all",
        "rq_dashboard.compact_queue",
    }
)
PUBLIC = frozenset({"ops_console.login", "ops_console.login_submit"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class ConsoleSession:
    user_id: str
    nonce: str  # random per login; the CSRF token is derived from it

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.nonce)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.settings().jwt_secret, salt=_SALT)


def csrf_token_for(nonce: str) -> str:
    key = hashlib.sha256(f"{_SALT}:csrf:{runtime.settings().jwt_secret}".encode()).digest()
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def new_session(user_id: str) -> tuple[ConsoleSession, str]:
    """A fresh console session for `user_id` and its signed cookie value."""
    session = ConsoleSession(user_id, secrets.token_urlsafe(18))
    return session, _serializer().dumps({"u": session.user_id, "n": session.nonce})


def read_session(cookie: str | None) -> ConsoleSession | None:
    """The session a cookie carries, or None when it is missing, forged or older than the TTL."""
    if not cookie:
        return None
    try:
        data = _serializer().loads(cookie, max_age=runtime.settings().ops_session_ttl_seconds)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("n"), str):
        return None
    return ConsoleSession(data["u"], data["n"])


def set_session_cookies(response: BaseResponse, session: ConsoleSession, cookie: str) -> None:
    ttl = runtime.settings().ops_session_ttl_seconds
    common: dict[str, Any] = {
        "max_age": ttl,
        "path": PREFIX,
        "secure": request.is_secure,
        "samesite": "Strict",
    }
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, session.csrf_token, httponly=False, **common)


def clear_session_cookies(response: BaseResponse) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path=PREFIX, secure=request.is_secure, samesite="Strict")


def same_origin() -> bool:
    """A browser's POST says where it comes from; refuse another site's (login CSRF included)."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return origin is None  # no header at all: not a browser form post; "null": an opaque origin
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.scheme, request.host)


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path inside the console (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def _wants_html() -> bool:
    return (
        request.method in ("GET", "HEAD")
        and not request.path.endswith(".json")
        and request.headers.get("X-Requested-With") != "XMLHttpRequest"
    )


def _refuse(status: int, message: str) -> Response:
    if _wants_html():
        response = Response(
            render_template("ops/refused.html", status=status, message=message), status=status
        )
    else:
        response = jsonify({"status": "FORBIDDEN" if status == 403 else "ERROR", "message": message})
        response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def guard() -> BaseResponse | None:
    """Runs before every console request (rq-dashboard's and ours)."""
    if request.endpoint in PUBLIC:
        return None
    session = read_session(request.cookies.get(SESSION_COOKIE))
    operator: Operator | None = None
    if session is not None:
        try:
            operator = service.load_operator(request_session(), session.user_id)
        except Forbidden as exc:
            response = _refuse(403, exc.message)
            clear_session_cookies(response)
            return response
    if session is None or operator is None:
        if _wants_html():
            return redirect(url_for("ops_console.login", next=request.full_path.rstrip("?")))
        return _refuse(401, "Log in to the operator console first")
    app_logging.bind(user_id=operator.user_id, company_id=operator.company_id)
    g.ops_operator, g.ops_session = operator, session
    state_changing = request.endpoint in STATE_CHANGING or request.method not in _SAFE_METHODS
    if not state_changing:
        return None
    if request.method in _SAFE_METHODS:  # requeue_all over GET: a link could trigger it
        return _refuse(405, "This action needs a POST with the console's CSRF token")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    if not same_origin() or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        log.warning("operator console: CSRF check failed", extra={"endpoint": request.endpoint})
        return _refuse(403, "Missing or wrong CSRF token; reload the page")
    if request.endpoint in STATE_CHANGING and not operator.can_operate:
        log.warning("operator console: read-only operator refused", extra={"endpoint": request.endpoint})
        return _refuse(403, f"Read-only: changing the queues needs {service.OPERATE_PERMISSION}")
    if request.endpoint in STATE_CHANGING:
        log.info("operator console action", extra={"endpoint": request.endpoint, "args": request.view_args})
    return None


class _JSONWorkers(Worker):
    """What rq-dashboard's worker pages get for `Worker`: workers whose current job is read with our
    JSON serializer (upstream reads it with pickle, and a busy worker's page would fail)."""

    @classmethod
    def all(
        cls,
        connection: Redis | None = None,
        job_class: type[Job] | None = None,
        queue_class: type[Queue] | None = None,
        queue: Queue | None = None,
        serializer: Any = None,
    ) -> list[BaseWorker]:
        return Worker.all(
            connection=connection,
            job_class=job_class or JSONJob,
            queue_class=queue_class,
            queue=queue,
            serializer=serializer or JSONSerializer,
        )


def use_app_redis() -> None:
    """rq-dashboard reads `current_app.redis_conn`; hand it the process's pooled connection (its own
    hook would open a new client from a URL on every request)."""
    current_app.redis_conn = runtime.redis()  # type: ignore[attr-defined]


def _dashboard_context(sender: Flask, template: Template, context: dict[str, Any], **_: Any) -> None:
    """Per-operator values for rq-dashboard's templates (and our footer in them)."""
    operator: Operator | None = g.get("ops_operator")
    if operator is None or not (template.name or "").startswith("rq_dashboard/"):
        return
    context["enable_delete"] = operator.can_operate  # hides Delete / Empty for read-only operators
    context["ops_operator"] = operator
    context["ops_csrf_token"] = g.ops_session.csrf_token


def no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask, pages: Blueprint) -> None:
    """Mount rq-dashboard and our console `pages` (pages: login, logout, schedule) at
    /admin/rq, behind `guard`."""
    # Jobs are stored with RQ's JSON serializer (app.jobs.rq_plumbing); rq-dashboard's default is pickle.
    rq_dashboard_config.serializer = JSONSerializer
    rq_dashboard_web.Worker = _JSONWorkers
    # Shown in rq-dashboard's instance picker (host only); the connection itself is use_app_redis's.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (_masked(runtime.settings().redis_url),)
    app.config["RQ_DASHBOARD_POLL_INTERVAL"] = 5000
    # Ours first: its templates (the footer override) win over rq-dashboard's.
    app.register_blueprint(pages, url_prefix=PREFIX)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    app.before_request_funcs[pages.name] = [guard]
    # Replaces rq-dashboard's own before_request (push_rq_connection): guard first, then our Redis.
    app.before_request_funcs[rq_dashboard.blueprint.name] = [guard, use_app_redis]
    for name in (pages.name, rq_dashboard.blueprint.name):
        app.after_request_funcs.setdefault(name, []).append(no_store)
    before_render_template.connect(_dashboard_context, app)


def _masked(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
