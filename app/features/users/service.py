"""The caller's own profile."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.features.identity.models import User


def get_profile(session: Session, company_id: str, user_id: str) -> User:
    user = session.scalars(select(User).where(User.id == user_id, User.company_id == company_id)).first()
    if user is None or not user.is_active:
        raise NotFound("User not found")
    return user


def update_profile(session: Session, user: User, name: str, avatar: str | None, avatar_sent: bool) -> User:
    user.name = name.strip()
    if avatar_sent:  # an absent field keeps the avatar; null or "" clears it
        user.avatar = avatar or None
    session.flush()
    return user
