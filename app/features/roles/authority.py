"""Who may act on whom: the one rule behind every user-management action.

A caller may manage a user (edit, change the email, reset the password, (de)activate, delete,
assign or take away roles, send an invite link) only when that user holds no permission the caller
lacks. An HR Manager can therefore manage employees and other HR Managers, but not a Company Admin
or a Super Admin; nobody can take over an account above their own through a reset link or an
email change. A refusal is a 403 and is written to the audit log (committed on its own, since the
refused request rolls back).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.errors import Forbidden
from app.features.audit import service as audit
from app.features.identity.service import permissions_by_user

OUTRANKED = "TARGET_OUTRANKS_CALLER"
OUTRANKED_MESSAGE = "You cannot manage a user who holds permissions you do not have"


def outranking(
    session: Session, company_id: str, caller_permissions: frozenset[str], user_ids: Iterable[str]
) -> dict[str, list[str]]:
    """user id -> the permissions that user holds and the caller lacks, for the company's users
    above the caller."""
    held = permissions_by_user(session, company_id, list(dict.fromkeys(user_ids)))
    beyond = {user_id: sorted(perms - caller_permissions) for user_id, perms in held.items()}
    return {user_id: perms for user_id, perms in beyond.items() if perms}


def require_authority_over(
    session: Session,
    *,
    company_id: str,
    actor_id: str,
    caller_permissions: frozenset[str],
    user_ids: Iterable[str],
    action: str,
) -> None:
    """Forbidden (403 TARGET_OUTRANKS_CALLER) when any of `user_ids` holds a permission the caller
    lacks; the refusal of `action` (the audit action it would have written) is audit-logged."""
    ids = list(dict.fromkeys(user_ids))
    above = outranking(session, company_id, caller_permissions, ids)
    if not above:
        return
    refused = [user_id for user_id in ids if user_id in above]
    permissions = sorted({p for perms in above.values() for p in perms})
    details = {"userIds": refused, "permissions": permissions}
    audit.record_refusal(
        company_id=company_id,
        actor_id=actor_id,
        attempted=action,
        entity_type="user",
        entity_id=refused[0] if len(refused) == 1 else None,
        details=details,
    )
    raise Forbidden(OUTRANKED_MESSAGE, OUTRANKED, details)
