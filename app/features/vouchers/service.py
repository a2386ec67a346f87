"""Provider webhooks: signature check on the raw bytes, then a durable record of the delivery.

A delivery is stored (unique per provider and event uuid) and its apply job enqueued in the same
transaction, before we answer 200: a replayed delivery finds its row and enqueues nothing, and a
failed apply leaves the row unprocessed for a retry (the job's own, or the reconciliation cron's).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.api import load_json
from app.db import utcnow
from app.errors import Invalid, Unauthenticated, Unavailable
from app.features.vouchers.models import VoucherWebhookEvent

SIGNATURE_HEADER = "Tremendous-Webhook-Signature"
MAX_WEBHOOK_BYTES = 1024 * 1024


def verify_signature(secret: str | None, body: bytes, header: str | None) -> None:
    """`sha256=<hex>` = HMAC-SHA256 of the raw body with the webhook secret. Without a configured
    secret nothing is accepted (an unsigned webhook could fail and refund vouchers at will)."""
    if not secret:
        raise Unavailable("The voucher webhook is not configured", code="WEBHOOK_NOT_CONFIGURED")
    if not header:
        raise Unauthenticated("Missing signature", "INVALID_SIGNATURE")
    scheme, _, given = header.strip().partition("=")
    if scheme.lower() != "sha256" or not given:
        raise Unauthenticated("Invalid signature", "INVALID_SIGNATURE")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise Unauthenticated("Invalid signature", "INVALID_SIGNATURE")


def sign(secret: str, body: bytes) -> str:
    """The header value the provider would send for `body` (tests and local tools)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_event(body: bytes) -> dict[str, Any]:
    try:
        data = load_json(body)  # refuses what Postgres cannot store (NUL, lone surrogates) with a 400
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The webhook body is not JSON") from None
    if not isinstance(data, dict) or not data.get("uuid") or not data.get("event"):
        raise Invalid("The webhook body needs `event` and `uuid`")
    return data


def record_event(session: Session, provider: str, data: dict[str, Any]) -> VoucherWebhookEvent | None:
    """Store a delivery; None when this uuid was stored before (a replay). Does not commit."""
    resource = (
        ((data.get("payload") or {}).get("resource") or {}) if isinstance(data.get("payload"), dict) else {}
    )
    event_id = session.scalar(
        insert(VoucherWebhookEvent)
        .values(
            provider=provider,
            event_uuid=str(data["uuid"])[:100],
            event=str(data["event"]).upper()[:64],
            resource_id=(str(resource["id"])[:100] if resource.get("id") else None),
            payload=data,
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_uuid"])
        .returning(VoucherWebhookEvent.id)
    )
    return None if event_id is None else session.get(VoucherWebhookEvent, event_id)


def lock_event(session: Session, event_id: str) -> VoucherWebhookEvent | None:
    return session.scalars(
        select(VoucherWebhookEvent)
        .where(VoucherWebhookEvent.id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def mark_processed(
    session: Session, event: VoucherWebhookEvent, outcome: str, company_id: str | None
) -> None:
    event.processed_at = utcnow()
    event.outcome = outcome[:64]
    event.company_id = company_id
    event.last_error = None


def note_attempt(session: Session, event_id: str, error: str) -> None:
    session.execute(
        update(VoucherWebhookEvent)
        .where(VoucherWebhookEvent.id == event_id)
        .values(attempts=VoucherWebhookEvent.attempts + 1, last_error=error[:2000])
    )


def set_apply_job(session: Session, event_id: str, job_id: str) -> None:
    session.execute(
        update(VoucherWebhookEvent).where(VoucherWebhookEvent.id == event_id).values(apply_job_id=job_id)
    )


def unprocessed(session: Session, older_than: timedelta, limit: int = 500) -> list[VoucherWebhookEvent]:
    cutoff: datetime = utcnow() - older_than
    return list(
        session.scalars(
            select(VoucherWebhookEvent)
            .where(VoucherWebhookEvent.processed_at.is_(None), VoucherWebhookEvent.received_at <= cutoff)
            .order_by(VoucherWebhookEvent.received_at)
            .limit(limit)
        )
    )
