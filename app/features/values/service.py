"""Company values: CRUD scoped to one company, reorder, soft delete, at most 8 active."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, Invalid, NotFound
from app.features.values.models import MAX_ACTIVE_VALUES, CompanyValue

EDITABLE = ("title", "description", "example", "icon_name", "icon_color")
DUPLICATE_MESSAGE = "A value with this title already exists for this company"


def _lock_company_values(session: Session, company_id: str) -> None:
    """Serialise value changes of one company (the active-count check must see every writer)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"company_values:{company_id}"}
    )


def list_values(session: Session, company_id: str, *, active_only: bool = False) -> list[CompanyValue]:
    query = select(CompanyValue).where(CompanyValue.company_id == company_id)
    if active_only:
        query = query.where(CompanyValue.is_active.is_(True))
    return list(session.scalars(query.order_by(CompanyValue.order, CompanyValue.id)))


def get_value(session: Session, company_id: str, value_id: int) -> CompanyValue:
    value = session.scalars(
        select(CompanyValue).where(CompanyValue.id == value_id, CompanyValue.company_id == company_id)
    ).first()
    if value is None:
        raise NotFound("Company value not found")
    return value


def active_value(session: Session, company_id: str, value_id: int) -> CompanyValue | None:
    return session.scalars(
        select(CompanyValue).where(
            CompanyValue.id == value_id,
            CompanyValue.company_id == company_id,
            CompanyValue.is_active.is_(True),
        )
    ).first()


def _active_count(session: Session, company_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                CompanyValue.company_id == company_id, CompanyValue.is_active.is_(True)
            )
        )
        or 0
    )


def _check_room(session: Session, company_id: str) -> None:
    if _active_count(session, company_id) >= MAX_ACTIVE_VALUES:
        raise Conflict(
            f"A company can have at most {MAX_ACTIVE_VALUES} active values: "
            "deactivate one before adding or reactivating another",
            "ACTIVE_VALUES_LIMIT",
        )


def _title_taken(session: Session, company_id: str, title: str, exclude_id: int | None = None) -> bool:
    query = select(CompanyValue.id).where(
        CompanyValue.company_id == company_id, func.lower(CompanyValue.title) == title.lower()
    )
    if exclude_id is not None:
        query = query.where(CompanyValue.id != exclude_id)
    return session.scalar(query) is not None


def _duplicate() -> Conflict:
    return Conflict(DUPLICATE_MESSAGE, "DUPLICATE_VALUE")


def _flush(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent writer won the unique index
        raise _duplicate() from exc


def create_value(session: Session, company_id: str, fields: dict[str, Any]) -> CompanyValue:
    _lock_company_values(session, company_id)
    title = fields["title"].strip()
    if _title_taken(session, company_id, title):
        raise _duplicate()
    _check_room(session, company_id)
    next_order = session.scalar(
        select(func.coalesce(func.max(CompanyValue.order), 0)).where(CompanyValue.company_id == company_id)
    )
    value = CompanyValue(
        company_id=company_id,
        title=title,
        **{key: fields.get(key) for key in EDITABLE if key != "title"},
        order=int(next_order or 0) + 1,
        is_active=True,
    )
    session.add(value)
    _flush(session)
    return value


def update_value(session: Session, company_id: str, value_id: int, fields: dict[str, Any]) -> CompanyValue:
    _lock_company_values(session, company_id)
    value = get_value(session, company_id, value_id)
    if "title" in fields:
        fields["title"] = fields["title"].strip()
        if _title_taken(session, company_id, fields["title"], exclude_id=value.id):
            raise _duplicate()
    if fields.get("is_active") is True and not value.is_active:
        _check_room(session, company_id)
    for key in (*EDITABLE, "is_active"):
        if key in fields:
            setattr(value, key, fields[key])
    _flush(session)
    return value


def deactivate_value(session: Session, company_id: str, value_id: int) -> None:
    _lock_company_values(session, company_id)
    value = get_value(session, company_id, value_id)
    value.is_active = False
    session.flush()


def reorder_values(session: Session, company_id: str, ordered_ids: list[int]) -> list[CompanyValue]:
    """`order` = position + 1 for the ids given (all must belong to the company)."""
    _lock_company_values(session, company_id)
    if len(set(ordered_ids)) != len(ordered_ids):
        raise Invalid("ordered_ids must not repeat an id")
    values = {
        value.id: value
        for value in session.scalars(
            select(CompanyValue).where(
                CompanyValue.company_id == company_id, CompanyValue.id.in_(ordered_ids)
            )
        )
    }
    unknown = [value_id for value_id in ordered_ids if value_id not in values]
    if unknown:
        raise Invalid(
            f"Values not found in this company: {', '.join(map(str, unknown))}", details={"ids": unknown}
        )
    for position, value_id in enumerate(ordered_ids):
        values[value_id].order = position + 1
    session.flush()
    return list_values(session, company_id)
