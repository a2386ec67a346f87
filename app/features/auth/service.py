"""Authentication: password and Supabase logins, rotating refresh tokens, password setup tokens.

Access tokens are the foundation's (`app.auth.issue_access_token`, `sub` = our user id). Refresh
tokens and password setup tokens are opaque random strings; only their sha256 digest is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app import runtime
from app.auth import decode_access_token, is_own_token, issue_access_token
from app.db import utcnow
from app.errors import Forbidden, Invalid, Unauthenticated, Unavailable
from app.features.auth.models import PasswordSetupToken, RefreshToken
from app.features.identity.catalogue import ROLE_KEYS
from app.features.identity.models import Company, Department, JobTitle, Role, User, UserRole
from app.features.identity.service import permissions_of
from app.ids import new_id

INVALID_CREDENTIALS = "Invalid email or password"
NOT_PROVISIONED = "Access denied. This account is not provisioned in Valorize"
DEACTIVATED = "This account has been deactivated"
NO_PASSWORD = "This account has no password yet. Use the invite link you received to set one"
EMAIL_NOT_VERIFIED = "Your Google account's email address is not verified"
SET_PASSWORD_PATH = "/set-password"  # the page the invite and reset links open (served by this API)
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256  # argon2 takes any length; the cap only bounds the work per request

# argon2id with the library's defaults (RFC 9106 "second recommended" profile: t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
# Each hash takes 64 MiB and a core for a while: a web process runs a bounded number at once (the
# rate limits, checked first, keep the queue for the semaphore short).
_HASH_WAIT_SECONDS = 10
_hash_slots: threading.BoundedSemaphore | None = None
_hash_slots_lock = threading.Lock()


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSettings:
    refresh_ttl: timedelta
    reuse_grace: timedelta
    password_setup_ttl: timedelta


def token_settings() -> TokenSettings:
    settings = runtime.settings()
    return TokenSettings(
        refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
        reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
        password_setup_ttl=timedelta(hours=settings.password_setup_token_ttl_hours),
    )


# --- passwords --------------------------------------------------------------------------------


def _slots() -> threading.BoundedSemaphore:
    global _hash_slots
    with _hash_slots_lock:
        if _hash_slots is None:
            _hash_slots = threading.BoundedSemaphore(runtime.settings().password_hash_concurrency)
        return _hash_slots


def _hashing_slot() -> threading.BoundedSemaphore:
    slots = _slots()
    if not slots.acquire(timeout=_HASH_WAIT_SECONDS):
        raise Unavailable("The server is busy; try again in a moment", retry_after=5, code="BUSY")
    return slots


def hash_password(password: str) -> str:
    slots = _hashing_slot()
    try:
        return _hasher.hash(password)
    finally:
        slots.release()


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    slots = _hashing_slot()
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    finally:
        slots.release()


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def validate_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"Password must be at least {MIN_PASSWORD_LENGTH} characters", "PASSWORD_TOO_SHORT")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"Password must be at most {MAX_PASSWORD_LENGTH} characters", "PASSWORD_TOO_LONG")


def set_password(session: Session, user: User, password: str) -> None:
    """Store a new password and end every existing session of the user: refresh tokens are
    revoked and the token version moves on, so access tokens issued before stop working too."""
    validate_new_password(password)
    user.password_hash = hash_password(password)
    user.token_version = (user.token_version or 0) + 1
    revoke_user_refresh_tokens(session, user.id)
    session.flush()


def password_page_url(token: str) -> str:
    """The link in invite and reset emails (and `temporaryPasswordUrl` / `ticketUrl`): this API's
    own set-password page, which sends the user on to the frontend's login."""
    return f"{runtime.settings().public_api_url}{SET_PASSWORD_PATH}?token={token}"


# --- logins -----------------------------------------------------------------------------------


def _usable(user: User) -> bool:
    return user.is_active and user.company.is_active


def authenticate_password(session: Session, email: str, password: str) -> User:
    """The user whose password matches; Unauthenticated (401) or Forbidden (403) as the contract
    says. The caller rate-limits first: this hashes."""
    normalized = email.strip().lower()
    # An email is unique per company, not globally: try each account that carries it.
    candidates = session.scalars(
        select(User)
        .join(Company, Company.id == User.company_id)
        .where(func.lower(User.email) == normalized)
        .order_by(User.is_active.desc(), User.last_login_at.desc().nulls_last(), User.created_at)
    ).all()
    with_password = [u for u in candidates if u.password_hash]
    if not with_password:
        verify_password(_dummy_hash(), password)  # same work as a real check: no timing oracle
        if candidates:
            if not any(_usable(u) for u in candidates):
                raise Forbidden(DEACTIVATED, "ACCOUNT_DEACTIVATED")
            raise Forbidden(NO_PASSWORD, "PASSWORD_NOT_SET")
        raise Unauthenticated(INVALID_CREDENTIALS, "INVALID_CREDENTIALS")
    for user in with_password:
        if verify_password(user.password_hash, password):
            if not _usable(user):
                raise Forbidden(DEACTIVATED, "ACCOUNT_DEACTIVATED")
            if _hasher.check_needs_rehash(user.password_hash or ""):
                user.password_hash = hash_password(password)
            return user
    raise Unauthenticated(INVALID_CREDENTIALS, "INVALID_CREDENTIALS")


# Holding any of these lets a user into the admin panel (contract §3, POST /auth/admin/login).
ADMIN_PANEL_PERMISSIONS = frozenset(
    {
        "admin:access_panel",
        "admin:view_analytics",
        "admin:manage_company",
        "admin:manage_system",
        "users:manage_roles",
        "roles:manage_permissions",
        "company:manage_settings",
    }
)


def require_admin_permission(session: Session, user: User) -> None:
    if not ADMIN_PANEL_PERMISSIONS & permissions_of(session, user.id):
        raise Forbidden("Access denied: Admin permissions required", "ADMIN_PERMISSION_REQUIRED")


def supabase_claims(access_token: str) -> dict[str, Any]:
    """The claims of a valid Supabase access token; Unauthenticated (401) for anything else."""
    claims = decode_access_token(access_token)  # 401 on a bad, expired or unknown-issuer token
    if is_own_token(claims):
        # Our own access token is not a Supabase session: exchanging it would turn a short-lived
        # token into a 30-day refresh token.
        raise Unauthenticated("Not a Supabase access token", "UNAUTHORIZED")
    return claims


def _email_verified(claims: dict[str, Any]) -> bool:
    """Supabase puts the provider's verdict in `user_metadata.email_verified` (and some versions
    at the top level); only an explicit true counts."""
    metadata = claims.get("user_metadata")
    nested = metadata.get("email_verified") if isinstance(metadata, dict) else None
    return claims.get("email_verified") is True or nested is True


def authenticate_supabase(session: Session, claims: dict[str, Any]) -> User:
    """Map a Supabase session (Google sign-in) to our user: by auth id, else by email, which then
    links the accounts. Linking needs a verified email: anyone can open an auth account with an
    unverified address, and linking it would hand them the invited user's account."""
    subject = str(claims["sub"])
    user = session.scalars(select(User).where(User.auth_user_id == subject)).first()
    if user is None:
        email = str(claims.get("email") or "").strip().lower()
        if not email:
            raise Forbidden(NOT_PROVISIONED, "NOT_PROVISIONED")
        if not _email_verified(claims):
            raise Forbidden(EMAIL_NOT_VERIFIED, "EMAIL_NOT_VERIFIED")
        matches = session.scalars(select(User).where(func.lower(User.email) == email)).all()
        unlinked = [u for u in matches if u.auth_user_id is None]
        # Linked to another auth account, unknown, or ambiguous across companies: not ours to guess.
        if len(unlinked) != 1:
            raise Forbidden(NOT_PROVISIONED, "NOT_PROVISIONED")
        user = unlinked[0]
        if _usable(user):
            user.auth_user_id = subject
    if not _usable(user):
        raise Forbidden(DEACTIVATED, "ACCOUNT_DEACTIVATED")
    return user


# --- refresh tokens ---------------------------------------------------------------------------


class InvalidRefreshToken(Exception):
    """Unknown, expired, revoked or replayed refresh token (the caller answers 401)."""


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": "openid profile email",
        }


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_refresh_token(session: Session, user_id: str, family_id: str, now: datetime) -> str:
    raw = secrets.token_urlsafe(48)
    session.add(
        RefreshToken(
            family_id=family_id,
            user_id=user_id,
            token_hash=_digest(raw),
            created_at=now,
            expires_at=now + token_settings().refresh_ttl,
        )
    )
    return raw


def _access_token(user: User) -> tuple[str, int]:
    ttl = runtime.settings().access_token_ttl_seconds
    return issue_access_token(user.id, user.company_id, ttl_seconds=ttl, tv=user.token_version or 0), ttl


def start_session(session: Session, user: User) -> IssuedTokens:
    """A fresh token pair (a new refresh family) for a user who just logged in."""
    now = utcnow()
    user.last_login_at = now
    refresh = _new_refresh_token(session, user.id, new_id(), now)
    access, ttl = _access_token(user)
    session.flush()
    return IssuedTokens(access, refresh, ttl)


def rotate_refresh_token(session: Session, raw: str) -> tuple[User, IssuedTokens]:
    """Swap a refresh token for a new pair. Raises InvalidRefreshToken.

    The row is locked, so parallel refreshes with one token serialise: the first rotates it, the
    others (within the grace window) get a sibling in the same family instead of a 401 that would
    log the user out. A replay after the window means the token leaked: the family is revoked
    (flushed here; the caller commits before answering 401).
    """
    now = utcnow()
    row = session.scalars(
        select(RefreshToken)
        .where(RefreshToken.token_hash == _digest(raw))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise InvalidRefreshToken
    if row.rotated_at is not None and now - row.rotated_at > token_settings().reuse_grace:
        revoke_family(session, row.family_id, now)
        raise InvalidRefreshToken
    user = session.get(User, row.user_id)
    if user is None or not _usable(user):
        raise InvalidRefreshToken
    if row.rotated_at is None:
        row.rotated_at = now
    refresh = _new_refresh_token(session, user.id, row.family_id, now)
    access, ttl = _access_token(user)
    session.flush()
    return user, IssuedTokens(access, refresh, ttl)


def revoke_family(session: Session, family_id: str, now: datetime | None = None) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def revoke_user_refresh_tokens(session: Session, user_id: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


# --- password setup (invite) tokens -----------------------------------------------------------


def create_password_setup_token(session: Session, user: User, ttl: timedelta | None = None) -> str:
    """A one-time token for the invite link; only its digest is stored. Returns the raw token."""
    return create_password_setup_tokens(session, [user.id], ttl)[user.id]


def create_password_setup_tokens(
    session: Session, user_ids: list[str], ttl: timedelta | None = None
) -> dict[str, str]:
    """One token per user (a batch of invites), written in one statement: user id -> raw token."""
    now = utcnow()
    expires = now + (ttl or token_settings().password_setup_ttl)
    raws = {user_id: secrets.token_urlsafe(32) for user_id in user_ids}
    if raws:
        session.execute(
            insert(PasswordSetupToken),
            [
                {
                    "id": new_id(),
                    "user_id": user_id,
                    "token_hash": _digest(raw),
                    "created_at": now,
                    "expires_at": expires,
                }
                for user_id, raw in raws.items()
            ],
        )
    return raws


def invite_links(session: Session, user_ids: list[str]) -> dict[str, str]:
    """The set-password link of each user's invite (a fresh one-time token each)."""
    return {
        user_id: password_page_url(raw)
        for user_id, raw in create_password_setup_tokens(session, user_ids).items()
    }


INVALID_SETUP_TOKEN = "This password link is invalid or has expired"


def password_setup_token_user(session: Session, raw: str) -> str | None:
    """The id of the user an invite/reset link still works for, or None (the page asks before
    showing its form; this does not use the token up)."""
    row = session.scalars(
        select(PasswordSetupToken).where(PasswordSetupToken.token_hash == _digest(raw))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return user.id if user is not None and _usable(user) else None


def consume_password_setup_token(session: Session, raw: str, password: str) -> User:
    """Set the user's password from an invite link; the token works once. Invalid (400) otherwise."""
    validate_new_password(password)
    now = utcnow()
    row = session.scalars(
        select(PasswordSetupToken)
        .where(PasswordSetupToken.token_hash == _digest(raw))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise Invalid(INVALID_SETUP_TOKEN, "INVALID_TOKEN")
    user = session.get(User, row.user_id)
    if user is None or not _usable(user):
        raise Invalid(INVALID_SETUP_TOKEN, "INVALID_TOKEN")
    # Every outstanding link of this user dies with this one: older invites must not reset it again.
    session.execute(
        update(PasswordSetupToken)
        .where(PasswordSetupToken.user_id == user.id, PasswordSetupToken.used_at.is_(None))
        .values(used_at=now)
    )
    set_password(session, user, password)
    return user


# --- the user as the frontend reads it --------------------------------------------------------

_ROLE_RANK = {key: rank for rank, key in enumerate(ROLE_KEYS.values())}


def role_names(session: Session, user_id: str) -> list[str]:
    """The user's roles, most privileged default role first (by key, whatever it is called now),
    then custom roles by name."""
    rows = session.execute(
        select(Role.name, Role.key)
        .join(UserRole, UserRole.role_id == Role.id)
        .where(UserRole.user_id == user_id)
    ).all()
    ranked = sorted(rows, key=lambda row: (_ROLE_RANK.get(row.key or "", len(_ROLE_RANK)), row.name))
    return [row.name for row in ranked]


def _name_of(session: Session, model: type[Department] | type[JobTitle], row_id: str | None) -> str | None:
    if row_id is None:
        return None
    return session.scalar(select(model.name).where(model.id == row_id))


def user_info(session: Session, user: User) -> dict[str, Any]:
    """`user_info` (login) and `user` (full verify): `sub` and `id` are both our user id."""
    roles = role_names(session, user.id)
    return {
        "sub": user.id,
        "id": user.id,
        "companyId": user.company_id,
        "email": user.email,
        # Only users who proved their email (invite link, Google) or were given a password can log in.
        "email_verified": bool(user.auth_user_id or user.password_hash),
        "name": user.name,
        "avatar": user.avatar,
        "isActive": user.is_active,
        "jobTitle": _name_of(session, JobTitle, user.job_title_id),
        "department": _name_of(session, Department, user.department_id),
        "role": roles[0] if roles else None,
        "roles": roles,
    }
