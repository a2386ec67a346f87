"""Write and read the audit log. `record` never commits: it joins the caller's transaction, so an
entry exists exactly when the change it describes does. `record_refusal` is the exception: a refused
action rolls its request back, so the refusal is written and committed on its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db
from app.features.audit.models import AuditLog

REFUSED = "access.refused"


def record(
    session: Session,
    *,
    company_id: str,
    actor_id: str | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    entry = AuditLog(
        company_id=company_id,
        actor_id=actor_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=_jsonable(changes) if changes is not None else None,
    )
    session.add(entry)
    return entry


def record_refusal(
    *,
    company_id: str,
    actor_id: str | None,
    attempted: str,
    entity_type: str,
    entity_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record that `actor_id` was refused `attempted` (an audit action name), committed at once in
    a transaction of its own: the request that was refused rolls everything else back."""
    with db.session_scope() as session:
        record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action=REFUSED,
            entity_type=entity_type,
            entity_id=entity_id,
            changes={"attempted": attempted, **(details or {})},
        )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`{field: {"from": old, "to": new}}` for the fields that changed."""
    return {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def list_entries(
    session: Session,
    company_id: str,
    *,
    page: int,
    limit: int,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
) -> tuple[list[AuditLog], int]:
    """The company's entries, newest first, and how many match."""
    where = [AuditLog.company_id == company_id]
    if entity_type:
        where.append(AuditLog.entity_type == entity_type)
    if entity_id:
        where.append(AuditLog.entity_id == entity_id)
    if action:
        where.append(AuditLog.action == action)
    total = int(session.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0)
    rows = session.scalars(
        select(AuditLog)
        .where(*where)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), total
