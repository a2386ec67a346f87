"""Compliments: who can be praised, sending (debit + credit in one transaction), history, feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.features.compliments.models import Compliment
from app.features.compliments.timeago import time_ago
from app.features.identity.models import Department, User
from app.features.values import service as values
from app.features.values.models import CompanyValue
from app.features.wallets import service as wallets
from app.ids import new_id

MIN_COINS, MAX_COINS, COIN_STEP = 5, 100, 5
MIN_MESSAGE, MAX_MESSAGE = 10, 500
FEED_SIZE = 10
LEDGER_MESSAGE_PREVIEW = 100


def validate_coins(coins: int) -> None:
    if not MIN_COINS <= coins <= MAX_COINS or coins % COIN_STEP:
        raise Invalid(f"coins must be between {MIN_COINS} and {MAX_COINS}, in steps of {COIN_STEP}")


def validate_message(message: str) -> str:
    text = message.strip()
    if not MIN_MESSAGE <= len(text) <= MAX_MESSAGE:
        raise Invalid(f"message must have between {MIN_MESSAGE} and {MAX_MESSAGE} characters")
    return text


def receivable_users(session: Session, company_id: str, caller_id: str) -> list[User]:
    """The company's active users except the caller, by name."""
    return list(
        session.scalars(
            select(User)
            .where(User.company_id == company_id, User.is_active.is_(True), User.id != caller_id)
            .order_by(func.lower(User.name), User.id)
        )
    )


def send_compliment(
    session: Session,
    *,
    company_id: str,
    sender_id: str,
    receiver_id: str,
    value_id: int,
    coins: int,
    message: str,
    is_public: bool = True,
    now: datetime | None = None,
) -> Compliment:
    """Debit the sender's allowance and credit the receiver's redeemable balance, with two ledger
    rows, in the caller's transaction. The balance check happens under the wallets' row locks, so
    concurrent sends can never overdraw. Raises a domain error (nothing written) when anything is off."""
    validate_coins(coins)
    text = validate_message(message)
    if receiver_id == sender_id:
        raise Invalid("You cannot send a compliment to yourself", "SELF_COMPLIMENT")
    sender = session.scalars(
        select(User).where(User.id == sender_id, User.company_id == company_id, User.is_active.is_(True))
    ).first()
    if sender is None:
        raise NotFound("Sender not found")
    receiver = session.scalars(
        select(User).where(User.id == receiver_id, User.company_id == company_id, User.is_active.is_(True))
    ).first()
    if receiver is None:
        raise Invalid("The receiver must be an active user of your company", "INVALID_RECEIVER")
    value = values.active_value(session, company_id, value_id)
    if value is None:
        raise Invalid("The company value does not exist or is inactive", "INVALID_VALUE")

    moment = now or utcnow()
    compliment_id = new_id()
    preview = text[:LEDGER_MESSAGE_PREVIEW]
    locked = wallets.lock_wallets(session, [(sender.id, company_id), (receiver.id, company_id)])
    wallets.debit_compliment(
        session,
        locked[sender.id],
        coins,
        f"Compliment sent to {receiver.name}",
        {
            "complimentId": compliment_id,
            "receiverId": receiver.id,
            "receiverName": receiver.name,
            "valueId": value.id,
            "message": preview,
        },
        moment,
    )
    wallets.credit_redeemable(
        session,
        locked[receiver.id],
        coins,
        f"Compliment received from {sender.name}",
        {
            "complimentId": compliment_id,
            "senderId": sender.id,
            "senderName": sender.name,
            "valueId": value.id,
            "message": preview,
        },
        moment,
    )
    compliment = Compliment(
        id=compliment_id,
        company_id=company_id,
        sender_id=sender.id,
        receiver_id=receiver.id,
        value_id=value.id,
        message=text,
        coins=coins,
        is_public=is_public,
        created_at=moment,
    )
    session.add(compliment)
    session.flush()
    return compliment


def record(compliment: Compliment) -> dict[str, Any]:
    return {
        "id": compliment.id,
        "senderId": compliment.sender_id,
        "receiverId": compliment.receiver_id,
        "companyId": compliment.company_id,
        "valueId": compliment.value_id,
        "message": compliment.message,
        "coins": compliment.coins,
        "isPublic": compliment.is_public,
        "createdAt": compliment.created_at,
    }


def _person(user: User, department: str | None = None, *, with_email: bool = True) -> dict[str, Any]:
    person: dict[str, Any] = {"id": user.id, "name": user.name, "avatar": user.avatar}
    if with_email:
        person["email"] = user.email
    else:
        person["department"] = department
    return person


def history(
    session: Session, company_id: str, user_id: str, kind: str, page: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The caller's sent or received compliments, newest first; (page of items, total)."""
    Sender, Receiver = aliased(User), aliased(User)
    mine = Compliment.sender_id == user_id if kind == "sent" else Compliment.receiver_id == user_id
    conditions = (Compliment.company_id == company_id, mine)
    total = int(session.scalar(select(func.count()).select_from(Compliment).where(*conditions)) or 0)
    rows = session.execute(
        select(Compliment, Sender, Receiver, CompanyValue)
        .join(Sender, Sender.id == Compliment.sender_id)
        .join(Receiver, Receiver.id == Compliment.receiver_id)
        .join(CompanyValue, CompanyValue.id == Compliment.value_id)
        .where(*conditions)
        .order_by(Compliment.created_at.desc(), Compliment.id.desc())
        .limit(limit)
        .offset((page - 1) * limit)
    ).all()
    items = [
        {
            **record(compliment),
            "sender": _person(sender),
            "receiver": _person(receiver),
            "companyValue": {
                "id": value.id,
                "title": value.title,
                "description": value.description,
                "iconName": value.icon_name,
                "iconColor": value.icon_color,
            },
        }
        for compliment, sender, receiver, value in rows
    ]
    return items, total


def feed(session: Session, company_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The company's latest public compliments, newest first, with a Portuguese `timeAgo`."""
    moment = now or utcnow()
    Sender, Receiver = aliased(User), aliased(User)
    SenderDept, ReceiverDept = aliased(Department), aliased(Department)
    rows = session.execute(
        select(Compliment, Sender, SenderDept.name, Receiver, ReceiverDept.name, CompanyValue)
        .join(Sender, Sender.id == Compliment.sender_id)
        .join(Receiver, Receiver.id == Compliment.receiver_id)
        .outerjoin(SenderDept, SenderDept.id == Sender.department_id)
        .outerjoin(ReceiverDept, ReceiverDept.id == Receiver.department_id)
        .join(CompanyValue, CompanyValue.id == Compliment.value_id)
        .where(Compliment.company_id == company_id, Compliment.is_public.is_(True))
        .order_by(Compliment.created_at.desc(), Compliment.id.desc())
        .limit(FEED_SIZE)
    ).all()
    return [
        {
            "id": compliment.id,
            "coins": compliment.coins,
            "message": compliment.message,
            "sender": _person(sender, sender_dept, with_email=False),
            "receiver": _person(receiver, receiver_dept, with_email=False),
            "companyValue": {
                "id": value.id,
                "title": value.title,
                "iconName": value.icon_name,
                "iconColor": value.icon_color,
            },
            "createdAt": compliment.created_at,
            "timeAgo": time_ago(compliment.created_at, moment),
        }
        for compliment, sender, sender_dept, receiver, receiver_dept, value in rows
    ]
