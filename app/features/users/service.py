"""The caller's own profile, permissions and roles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api import ApiError
from app.features.identity.models import Role, User, UserRole


def get_profile(session: Session, company_id: str, user_id: str) -> User:
    user = session.scalars(select(User).where(User.id == user_id, User.company_id == company_id)).first()
    if user is None or not user.is_active:
        raise ApiError(404, "User not found")
    return user


def update_profile(session: Session, user: User, name: str, avatar: str | None, avatar_sent: bool) -> User:
    user.name = name.strip()
    if avatar_sent:  # an absent field keeps the avatar; null or "" clears it
        user.avatar = avatar or None
    session.flush()
    return user


def roles_of(session: Session, company_id: str, user_id: str) -> list[Role]:
    return list(
        session.scalars(
            select(Role)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id, Role.company_id == company_id)
            .order_by(Role.name)
        )
    )
