"""Bearer-token authentication, the current user and permission checks.

Two kinds of access token are accepted, both HS256 (any other `alg`, `none` included, is refused):
- our own, signed with JWT_SECRET and issued by JWT_ISSUER (`sub` = our user id);
- Supabase's, when SUPABASE_JWT_SECRET is set: issuer checked when SUPABASE_JWT_ISSUER is set,
  audience when SUPABASE_JWT_AUDIENCE is (default `authenticated`); `sub` = the Supabase user id,
  matched to `users.auth_user_id`.
The token's `sub` must map to an active user of an active company, and our own tokens carry the
user's token version (`tv`): setting a new password bumps it, which ends every older session at
once. 401 only ever means "this token is missing, invalid or expired" (the frontend answers a 401
by refreshing).

`login_required` and `require_permission` also mark the view as protected: its OpenAPI operation
declares bearer security, and public-route guards (the body-size cap) leave it alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import jwt
from flask import g, request

from app import logging as app_logging
from app import runtime
from app.api import flag_view, request_session
from app.errors import Forbidden, Unauthenticated
from app.features.identity import service as identity

ALGORITHMS = ["HS256"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CurrentUser:
    id: str
    company_id: str
    email: str
    name: str
    permissions: frozenset[str]
    token_claims: dict[str, Any]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def issue_access_token(user_id: str, company_id: str, ttl_seconds: int | None = None, **claims: Any) -> str:
    settings = runtime.settings()
    now = int(time.time())
    payload = {
        "sub": user_id,
        "companyId": company_id,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + (ttl_seconds or settings.access_token_ttl_seconds),
        "type": "access",
        **claims,
    }
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256")


def decode_access_token(token: str) -> dict[str, Any]:
    """Claims of a valid access token, or Unauthenticated (401)."""
    settings = runtime.settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _unauthorized("Malformed access token") from None
    if header.get("alg") not in ALGORITHMS:
        raise _unauthorized("Unsupported token algorithm")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=ALGORITHMS,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "iss"], "verify_aud": False},
        )
        if claims.get("type", "access") != "access":
            raise _unauthorized("Not an access token")
        return claims
    except jwt.ExpiredSignatureError:
        raise _unauthorized("Access token expired") from None
    except jwt.PyJWTError:
        pass
    if settings.supabase_jwt_secret:
        try:
            return jwt.decode(
                token,
                settings.supabase_jwt_secret,
                algorithms=ALGORITHMS,
                issuer=settings.supabase_jwt_issuer,
                audience=settings.supabase_jwt_audience,
                options={
                    "require": ["exp", "sub"],
                    "verify_iss": settings.supabase_jwt_issuer is not None,
                    "verify_aud": settings.supabase_jwt_audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("Access token expired") from None
        except jwt.PyJWTError:
            pass
    raise _unauthorized("Invalid access token")


def _unauthorized(message: str) -> Unauthenticated:
    return Unauthenticated(message, "UNAUTHORIZED")


def is_own_token(claims: dict[str, Any]) -> bool:
    """Issued by us (not a Supabase session)."""
    return claims.get("iss") == runtime.settings().jwt_issuer


def current_user() -> CurrentUser:
    """The authenticated caller; raises 401 when the request carries no valid token."""
    cached = g.get("current_user")
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Missing bearer token")
    claims = decode_access_token(token.strip())
    found = identity.active_user_with_permissions(request_session(), str(claims["sub"]))
    if found is None:
        raise _unauthorized("Token does not belong to an active user")
    user, permissions = found
    if is_own_token(claims) and _token_version(claims) != user.token_version:
        raise _unauthorized("Session ended: the password was changed")
    g.current_user = CurrentUser(
        id=user.id,
        company_id=user.company_id,
        email=user.email,
        name=user.name,
        permissions=frozenset(permissions),
        token_claims=claims,
    )
    app_logging.bind(user_id=user.id, company_id=user.company_id)
    return g.current_user


def _token_version(claims: dict[str, Any]) -> int:
    try:
        return int(claims.get("tv", 0))
    except (TypeError, ValueError):
        return -1  # never matches


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_user()
        return view(*args, **kwargs)

    return flag_view(wrapper, auth=True)  # type: ignore[return-value]


def require_permission(*names: str) -> Callable[[F], F]:
    """The caller must hold every permission named (403 INSUFFICIENT_PERMISSION otherwise)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            missing = [name for name in names if not user.can(name)]
            if missing:
                raise Forbidden(
                    f"Insufficient permission: requires {', '.join(missing)}",
                    "INSUFFICIENT_PERMISSION",
                    {"requiredPermission": list(names), "missingPermissions": missing},
                )
            return view(*args, **kwargs)

        return flag_view(wrapper, auth=True)  # type: ignore[return-value]

    return decorate


def require_any_permission(*names: str) -> Callable[[F], F]:
    """The caller must hold at least one of the permissions named (403 INSUFFICIENT_PERMISSION)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not any(current_user().can(name) for name in names):
                raise Forbidden(
                    f"Insufficient permission: requires one of {', '.join(names)}",
                    "INSUFFICIENT_PERMISSION",
                    {"requiredPermission": list(names), "missingPermissions": list(names)},
                )
            return view(*args, **kwargs)

        return flag_view(wrapper, auth=True)  # type: ignore[return-value]

    return decorate
