"""/auth (contract §3). Login, refresh and set-password are public: they never look at the
Authorization header, which the frontend sends even when it is stale. Each is rate-limited (per
client address, and logins per account too) before any password is hashed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView

from app import ratelimit
from app.api import BEARER, Blueprint, format_utc, request_session
from app.auth import current_user, login_required
from app.errors import Unauthenticated
from app.features.auth import service
from app.features.auth.schemas import (
    AdminLoginBody,
    LoginBody,
    LoginResponse,
    MessageResponse,
    RefreshBody,
    RefreshResponse,
    SetPasswordBody,
    VerifyQuery,
    VerifyResponse,
)
from app.features.identity.models import User

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Login, token refresh and verification")

NEEDS_REFRESH_SECONDS = 300


@blp.route("/login")
class Login(MethodView):
    @ratelimit.rate_limited
    @blp.arguments(LoginBody)
    @blp.response(200, LoginResponse)
    @blp.alt_response(401, description="Invalid email or password, or an invalid Supabase token")
    @blp.alt_response(403, description="Not provisioned, deactivated, or no password set yet")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Log in with email and password, or with a Supabase (Google) access token."""
        session = request_session()
        if body.get("access_token"):
            ratelimit.limit_login_address()
            claims = service.supabase_claims(body["access_token"])
            ratelimit.limit_login_account(f"supabase:{claims['sub']}")
            user = service.authenticate_supabase(session, claims)
        else:
            ratelimit.limit_login(body["email"])
            user = service.authenticate_password(session, body["email"], body["password"])
        return _logged_in(user)


def _logged_in(user: User) -> dict[str, Any]:
    session = request_session()
    tokens = service.start_session(session, user)
    info = service.user_info(session, user)
    session.commit()
    return {"success": True, "data": {**tokens.as_response(), "user_info": info}}


@blp.route("/admin/login")
class AdminLogin(MethodView):
    @ratelimit.rate_limited
    @blp.arguments(AdminLoginBody)
    @blp.response(200, LoginResponse)
    @blp.alt_response(401, description="Invalid email or password")
    @blp.alt_response(403, description="Deactivated, no password yet, or no admin permission")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Password login for the admin panel: as /auth/login, and the user must hold an admin
        permission (contract §3)."""
        session = request_session()
        ratelimit.limit_login(body["email"])
        user = service.authenticate_password(session, body["email"], body["password"])
        service.require_admin_permission(session, user)
        return _logged_in(user)


@blp.route("/refresh")
class Refresh(MethodView):
    @ratelimit.rate_limited
    @blp.arguments(RefreshBody)
    @blp.response(200, RefreshResponse)
    @blp.alt_response(401, description="Invalid, expired, revoked or replayed refresh token")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Rotate a refresh token; a reuse within a few seconds (parallel tabs) is tolerated."""
        ratelimit.limit_token_use()
        session = request_session()
        try:
            _, tokens = service.rotate_refresh_token(session, body["refresh_token"])
        except service.InvalidRefreshToken:
            session.commit()  # keep a family revocation (replay detected) although we answer 401
            raise Unauthenticated("Invalid or expired refresh token", "INVALID_REFRESH_TOKEN") from None
        session.commit()
        return {"success": True, "data": tokens.as_response()}


@blp.route("/verify")
class Verify(MethodView):
    @login_required
    @blp.arguments(VerifyQuery, location="query")
    @blp.response(200, VerifyResponse)
    @blp.alt_response(401, description="Missing, invalid or expired access token")
    @blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Check the bearer token; full mode also returns the user (with `sub` and `id`)."""
        caller = current_user()
        expires = int(caller.token_claims["exp"])
        remaining = max(0, expires - int(datetime.now(UTC).timestamp()))
        if query["minimal"]:
            return {
                "success": True,
                "data": {"isValid": True, "timeRemaining": remaining, "message": "Token is valid"},
            }
        session = request_session()
        user = session.get(User, caller.id)
        if user is None:  # deleted between the token check and now
            raise Unauthenticated("Token does not belong to an active user")
        return {
            "success": True,
            "data": {
                "isValid": True,
                "expiresAt": format_utc(datetime.fromtimestamp(expires, UTC)),
                "timeRemaining": remaining,
                "timeRemainingFormatted": format_remaining(remaining),
                "needsRefresh": remaining <= NEEDS_REFRESH_SECONDS,
                "message": "Token is valid",
                "user": service.user_info(session, user),
            },
        }


@blp.route("/set-password")
class SetPassword(MethodView):
    @ratelimit.rate_limited
    @blp.arguments(SetPasswordBody)
    @blp.response(200, MessageResponse)
    @blp.alt_response(400, description="Invalid, used or expired link, or a too short password")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set a password from an invite link (one-time token); ends the user's other sessions."""
        ratelimit.limit_token_use()
        session = request_session()
        service.consume_password_setup_token(session, body["token"], body["password"])
        session.commit()
        return {"success": True, "message": "Password set. You can now log in."}


def format_remaining(seconds: int) -> str:
    if seconds <= 0:
        return "Expired"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m {secs}s"
