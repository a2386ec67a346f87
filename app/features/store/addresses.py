"""Delivery addresses (contract §S3): at most three live ones per user, one default.

Fields are whitelisted (the old PUT let a body reassign `userId`). Deletes are soft: a redemption
keeps its own snapshot of the address it shipped to, and an edit never rewrites an open order's
destination. The per-user rules run under a lock on the user's live addresses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.features.store.models import Address

MAX_ADDRESSES = 3
FIELDS = (
    "name",
    "street",
    "number",
    "complement",
    "neighborhood",
    "city",
    "state",
    "zip_code",
    "country",
    "phone",
)
SNAPSHOT_FIELDS = FIELDS


def _lock_user(session: Session, user_id: str) -> None:
    """Serialise address changes of one user (count limit and the single default)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('valorize:addresses'), hashtext(:u))"), {"u": user_id}
    )


def list_addresses(session: Session, user_id: str) -> list[Address]:
    return list(
        session.scalars(
            select(Address)
            .where(Address.user_id == user_id, Address.deleted_at.is_(None))
            .order_by(Address.is_default.desc(), Address.created_at.desc(), Address.id)
        )
    )


def get_address(session: Session, user_id: str, address_id: str) -> Address:
    """The caller's live address; another user's (or a deleted one) is 404."""
    address = session.scalars(
        select(Address).where(
            Address.id == address_id, Address.user_id == user_id, Address.deleted_at.is_(None)
        )
    ).first()
    if address is None:
        raise NotFound("Address not found")
    return address


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    values = {key: data[key] for key in FIELDS if key in data}
    for key in ("complement",):
        if key in values and values[key] == "":
            values[key] = None
    for key in ("neighborhood", "phone"):
        if key in values and values[key] is None:
            values[key] = ""
    return values


def create_address(session: Session, user_id: str, company_id: str, data: dict[str, Any]) -> Address:
    _lock_user(session, user_id)
    live = session.scalar(
        select(func.count())
        .select_from(Address)
        .where(Address.user_id == user_id, Address.deleted_at.is_(None))
    )
    if (live or 0) >= MAX_ADDRESSES:
        raise Invalid(f"User cannot have more than {MAX_ADDRESSES} addresses", "ADDRESS_LIMIT")
    make_default = bool(data.get("is_default")) or not live
    if make_default:
        _clear_default(session, user_id)
    address = Address(user_id=user_id, company_id=company_id, is_default=make_default, **_clean(data))
    session.add(address)
    session.flush()
    return address


def update_address(session: Session, user_id: str, address_id: str, data: dict[str, Any]) -> Address:
    _lock_user(session, user_id)
    address = get_address(session, user_id, address_id)
    for key, value in _clean(data).items():
        setattr(address, key, value)
    if data.get("is_default") and not address.is_default:
        _clear_default(session, user_id)
        address.is_default = True
    session.flush()
    return address


def delete_address(session: Session, user_id: str, address_id: str) -> None:
    _lock_user(session, user_id)
    address = get_address(session, user_id, address_id)
    was_default = address.is_default
    address.deleted_at = utcnow()
    address.is_default = False
    session.flush()
    if was_default:
        remaining = list_addresses(session, user_id)
        if remaining:
            remaining[0].is_default = True
            session.flush()


def set_default(session: Session, user_id: str, address_id: str) -> Address:
    _lock_user(session, user_id)
    address = get_address(session, user_id, address_id)
    if not address.is_default:
        _clear_default(session, user_id)
        address.is_default = True
        session.flush()
    return address


def _clear_default(session: Session, user_id: str) -> None:
    session.execute(
        update(Address)
        .where(Address.user_id == user_id, Address.is_default.is_(True), Address.deleted_at.is_(None))
        .values(is_default=False)
    )
    session.flush()


def snapshot(address: Address) -> dict[str, Any]:
    """The address as the redemption keeps it (camelCase, as the admin detail shows it)."""
    return {
        "name": address.name,
        "street": address.street,
        "number": address.number,
        "complement": address.complement,
        "neighborhood": address.neighborhood,
        "city": address.city,
        "state": address.state,
        "zipCode": address.zip_code,
        "country": address.country,
        "phone": address.phone,
    }
