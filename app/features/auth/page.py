"""The set-password page: where invite and reset links land (`GET /set-password?token=…`).

A small server-rendered form served by this API, because the web frontend has no such page. It
sets the password through the same one-time token logic as `POST /auth/set-password`, then sends
the browser to the frontend's login (`{FRONTEND_URL}/login`, contract §2).

- No external assets: the styles are inline, allowed by a per-response CSP nonce; no script.
- Accessible: a labelled form, the account's email as a read-only username (password managers),
  hints tied with aria-describedby, errors announced in a role="alert" region, pt-BR or English
  by Accept-Language.
- CSRF-safe: the POST must carry the one-time token (a forger does not have it) and come from this
  page: Sec-Fetch-Site, when the browser sends it, must be same-origin, and an Origin header, when
  sent, must be ours. (`Referrer-Policy: no-referrer` makes browsers send `Origin: null` on the
  form post, so null is accepted.)
- The token never leaves: `Referrer-Policy: no-referrer`, `Cache-Control: no-store`, and the
  access log writes the path only, never the query string.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template_string, request

from app import runtime
from app.api import request_session
from app.errors import Invalid, RateLimited
from app.features.auth import service
from app.features.identity.models import User
from app.ratelimit import limit_token_use

log = logging.getLogger(__name__)

blp = Blueprint("set_password_page", __name__)

TEXT: dict[str, dict[str, str]] = {
    "pt-BR": {
        "title": "Defina sua senha",
        "intro": "Escolha a senha que você vai usar para entrar no Valorize.",
        "login": "Seu login",
        "password": "Nova senha",
        "password_hint": "Pelo menos {min} caracteres.",
        "confirm": "Repita a nova senha",
        "submit": "Definir senha",
        "invalid_link": "Este link é inválido, já foi usado ou expirou. Peça um novo link a quem administra "
        "o Valorize na sua empresa.",
        "go_login": "Ir para o login",
        "mismatch": "As duas senhas não são iguais.",
        "too_short": "A senha precisa ter pelo menos {min} caracteres.",
        "too_long": "A senha pode ter no máximo {max} caracteres.",
        "cross_site": "Este formulário só pode ser enviado a partir desta página.",
        "too_many": "Muitas tentativas. Tente de novo em {seconds} segundos.",
        "error_title": "Não foi possível definir a senha",
    },
    "en": {
        "title": "Set your password",
        "intro": "Choose the password you will use to log in to Valorize.",
        "login": "Your login",
        "password": "New password",
        "password_hint": "At least {min} characters.",
        "confirm": "Repeat the new password",
        "submit": "Set password",
        "invalid_link": "This link is invalid, was already used or has expired. Ask whoever runs Valorize "
        "at your company for a new one.",
        "go_login": "Go to the login",
        "mismatch": "The two passwords do not match.",
        "too_short": "The password must have at least {min} characters.",
        "too_long": "The password can have at most {max} characters.",
        "cross_site": "This form can only be sent from this page.",
        "too_many": "Too many attempts. Try again in {seconds} seconds.",
        "error_title": "The password could not be set",
    },
}
DEFAULT_LOCALE = "pt-BR"

_PAGE = """<!doctype html>
<html lang="{{ locale }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ t.title }} · Valorize</title>
<style nonce="{{ nonce }}">
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; background: #f5f3ff;
         color: #1f2933; margin: 0; padding: 2rem 1rem; }
  main { max-width: 26rem; margin: 0 auto; background: #fff; border-radius: 12px; padding: 2rem;
         box-shadow: 0 2px 12px rgba(31, 41, 51, .12); }
  h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
  label { display: block; font-weight: 600; margin-top: 1.25rem; }
  input { box-sizing: border-box; width: 100%; font-size: 1rem; padding: .65rem; margin-top: .35rem;
          border: 1px solid #9aa5b1; border-radius: 6px; }
  input[readonly] { background: #f0f4f8; }
  input:focus, button:focus, a:focus { outline: 3px solid #6d28d9; outline-offset: 2px; }
  .hint { color: #52606d; font-size: .875rem; margin: .35rem 0 0; }
  .alert { background: #fde8e8; color: #8a1c1c; border: 1px solid #f5b5b5; border-radius: 6px;
           padding: .75rem; margin: 1rem 0 0; }
  button, .button { display: inline-block; margin-top: 1.5rem; width: 100%; font-size: 1rem; font-weight: 600;
           background: #6d28d9; color: #fff; border: 0; border-radius: 6px; padding: .75rem; cursor: pointer;
           text-align: center; text-decoration: none; box-sizing: border-box; }
</style>
</head>
<body>
<main>
  <h1>{{ t.title if form else t.error_title }}</h1>
  {% if error %}<p class="alert" role="alert" id="form-error">{{ error }}</p>{% endif %}
  {% if form %}
  <p>{{ t.intro }}</p>
  <form method="post" action="{{ action }}" novalidate>
    <input type="hidden" name="token" value="{{ token }}">
    {% if email %}
    <label for="username">{{ t.login }}</label>
    <input id="username" name="username" type="email" autocomplete="username" value="{{ email }}" readonly>
    {% endif %}
    <label for="password">{{ t.password }}</label>
    <input id="password" name="password" type="password" autocomplete="new-password" required
           minlength="{{ min }}" maxlength="{{ max }}" autofocus
           aria-describedby="password-hint{% if error %} form-error{% endif %}"
           {% if error %}aria-invalid="true"{% endif %}>
    <p class="hint" id="password-hint">{{ t.password_hint }}</p>
    <label for="password_confirm">{{ t.confirm }}</label>
    <input id="password_confirm" name="password_confirm" type="password" autocomplete="new-password" required
           minlength="{{ min }}" maxlength="{{ max }}">
    <button type="submit">{{ t.submit }}</button>
  </form>
  {% else %}
  <a class="button" href="{{ login_url }}">{{ t.go_login }}</a>
  {% endif %}
</main>
</body>
</html>
"""


def _locale() -> str:
    best = request.accept_languages.best_match(["pt-BR", "pt", "en"], default=DEFAULT_LOCALE)
    return "en" if best == "en" else "pt-BR"


def _texts(locale: str) -> dict[str, str]:
    limits = {"min": service.MIN_PASSWORD_LENGTH, "max": service.MAX_PASSWORD_LENGTH}
    return {key: value.format(**limits, seconds="{seconds}") for key, value in TEXT[locale].items()}


def login_url() -> str:
    """Where the frontend logs users in (contract §2: both apps route to /login)."""
    return f"{runtime.settings().frontend_url}/login"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _render(
    status: int, *, token: str = "", email: str | None = None, form: bool, error: str | None = None
) -> Response:
    nonce = secrets.token_urlsafe(16)
    locale = _locale()
    html = render_template_string(
        _PAGE,
        locale=locale,
        t=_texts(locale),
        nonce=nonce,
        token=token,
        email=email,
        form=form,
        error=error,
        action=service.SET_PASSWORD_PATH,
        min=service.MIN_PASSWORD_LENGTH,
        max=service.MAX_PASSWORD_LENGTH,
        login_url=login_url(),
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; base-uri 'none'; "
        # The form posts here and the answer redirects to the frontend's login: both must be allowed.
        f"form-action 'self' {_origin(runtime.settings().frontend_url)}; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept-Language"
    return response


def _email_of(token: str) -> str | None:
    user_id = service.password_setup_token_user(request_session(), token)
    user = request_session().get(User, user_id) if user_id else None
    return user.email if user is not None else None


def _same_origin() -> bool:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    allowed = {_origin(runtime.settings().public_api_url), _origin(request.host_url)}
    return origin.lower() in allowed


@blp.get(service.SET_PASSWORD_PATH)
def show() -> Response:
    """The form, or a "this link no longer works" page."""
    token = request.args.get("token", "")
    if not token or len(token) > 512:
        return _render(400, form=False, error=_texts(_locale())["invalid_link"])
    email = _email_of(token)
    if email is None:
        return _render(410, form=False, error=_texts(_locale())["invalid_link"])
    return _render(200, token=token, email=email, form=True)


@blp.post(service.SET_PASSWORD_PATH)
def submit() -> Any:
    """Set the password with the one-time token, then 303 to the frontend's login."""
    texts = _texts(_locale())
    token = request.form.get("token", "")
    password = request.form.get("password", "")
    confirm = request.form.get("password_confirm", "")
    if not _same_origin():
        return _render(403, form=False, error=texts["cross_site"])
    try:
        limit_token_use()
    except RateLimited as exc:
        response = _render(429, form=False, error=texts["too_many"].format(seconds=exc.retry_after))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if not token or len(token) > 512:
        return _render(400, form=False, error=texts["invalid_link"])
    email = _email_of(token)
    if email is None:
        return _render(410, form=False, error=texts["invalid_link"])
    problem = None
    if len(password) < service.MIN_PASSWORD_LENGTH:
        problem = texts["too_short"]
    elif len(password) > service.MAX_PASSWORD_LENGTH:
        problem = texts["too_long"]
    elif password != confirm:
        problem = texts["mismatch"]
    if problem:
        return _render(400, token=token, email=email, form=True, error=problem)
    session = request_session()
    try:
        service.consume_password_setup_token(session, token, password)
    except Invalid:  # used or expired between the check above and now
        session.rollback()
        return _render(410, form=False, error=texts["invalid_link"])
    session.commit()
    log.info("password set through the set-password page")
    done = redirect(login_url(), code=303)
    done.headers["Cache-Control"] = "no-store"
    done.headers["Referrer-Policy"] = "no-referrer"
    return done
