"""Who may use the operator console (/admin/rq): platform operators, some of them allowed to
change queues."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.errors import Forbidden, Unauthenticated
from app.features.identity.models import User
from app.features.identity.service import find_active_user_by_subject, permissions_of

# --- the operator console (/admin/rq) -------------------------------------------------------

VIEW_PERMISSION = "admin:manage_system"  # platform operators: see queues, workers and the schedule
OPERATE_PERMISSION = "jobs:operate_queues"  # and also delete, empty, requeue and compact in rq-dashboard


@dataclass(frozen=True)
class Operator:
    user_id: str
    company_id: str
    email: str
    can_operate: bool


def operator_from_user(session: Session, user: User) -> Operator:
    """The user as a console operator; Forbidden unless they hold admin:manage_system."""
    permissions = permissions_of(session, user.id)
    if VIEW_PERMISSION not in permissions:
        raise Forbidden(
            f"The operator console is for platform operators ({VIEW_PERMISSION})", "OPERATOR_REQUIRED"
        )
    return Operator(user.id, user.company_id, user.email, OPERATE_PERMISSION in permissions)


def load_operator(session: Session, user_id: str) -> Operator | None:
    """The operator a console cookie names, checked again on every request (a deactivated user or
    a revoked role takes effect at once); None when the user is gone or inactive."""
    user = find_active_user_by_subject(session, user_id)
    return None if user is None else operator_from_user(session, user)


def operator_by_token(session: Session, claims: dict[str, object]) -> Operator:
    """The operator an access token (ours or Supabase's, already verified) belongs to."""
    user = find_active_user_by_subject(session, str(claims["sub"]))
    if user is None:
        raise Unauthenticated("Token does not belong to an active user")
    return operator_from_user(session, user)
