"""Pages of the operator console that are ours (rq-dashboard serves the rest of /admin/rq): the
login form, logout, and the schedule of the scheduled tasks. Server-rendered, no external assets."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.api import request_session
from app.auth import decode_access_token
from app.cron.history import schedule_status
from app.db import utcnow
from app.errors import DomainError
from app.features.auth import service as auth_service
from app.features.ops import console, service

log = logging.getLogger(__name__)

blp = Blueprint("ops_console", __name__, template_folder="templates")


def _login_form(status: int = 200, error: str | None = None, email: str = "") -> Response:
    next_path = console.safe_next(request.values.get("next"))
    body = render_template("ops/login.html", error=error, email=email, next_path=next_path)
    return Response(body, status=status)


@blp.get("/login")
def login() -> Response:
    return _login_form()


@blp.post("/login")
def login_submit() -> BaseResponse:
    """Email and password (the API's own login), or an access token posted once (Supabase users).
    The token is never put in a URL, a cookie or a log line: it only names the user."""
    if not console.same_origin():
        return _login_form(403, "This form must be sent from the console's own page")
    email = request.form.get("email", "").strip()
    token = request.form.get("token", "").strip()
    session = request_session()
    try:
        if token:
            operator = service.operator_by_token(session, decode_access_token(token))
        else:
            user = auth_service.authenticate_password(session, email, request.form.get("password", ""))
            operator = service.operator_from_user(session, user)
    except DomainError as exc:
        return _login_form(403 if exc.code == "OPERATOR_REQUIRED" else 401, exc.message, email)
    session.commit()  # a password rehash, if any
    console_session, cookie = console.new_session(operator.user_id)
    log.info(
        "operator console login",
        extra={
            "user_id": operator.user_id,
            "company_id": operator.company_id,
            "can_operate": operator.can_operate,
        },
    )
    response = redirect(console.safe_next(request.form.get("next")), code=303)
    console.set_session_cookies(response, console_session, cookie)
    return response


@blp.post("/logout")
def logout() -> BaseResponse:
    response = redirect(url_for("ops_console.login"), code=303)
    console.clear_session_cookies(response)
    return response


@blp.get("/schedule")
def schedule() -> str:
    """Every scheduled task: its cron expression (UTC), last run, last success and next run."""
    now = utcnow()
    return render_template(
        "ops/schedule.html",
        statuses=schedule_status(request_session(), now),
        now=now,
        operator=g.ops_operator,
        csrf_token=g.ops_session.csrf_token,
    )
