"""Expiry notices (issue 6): users whose coins expire within 90 and within 30 days get one email
per threshold, once per lot: one `expiry_notices` row per (credit lot, threshold), claimed before
the email is handed to SMTP and linked to its `sent_emails` record once delivered.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import db
from app.errors import RateLimited
from app.features.emails import service as emails
from app.features.identity.models import Company, User
from app.features.wallets import notice_templates
from app.features.wallets.models import ExpiryNotice, Wallet, WalletTransaction

log = logging.getLogger(__name__)

NOTICE_THRESHOLDS = (30, 90)  # days before expiry; the smaller window is handled first
_NOTICE_RUN_LOCK = 0x7661_6C6F_6E6F_7469  # "valonoti"


@dataclass(frozen=True)
class _Lot:
    id: str
    user_id: str
    company_id: str
    email: str
    name: str
    company_name: str
    remaining: int
    expires_at: datetime


def _lots_to_notify(session: Session, now: datetime, threshold: int, lower: int, limit: int) -> list[_Lot]:
    """Open lots of active users expiring in (lower, threshold] days with no notice at `threshold`."""
    WT = WalletTransaction
    noticed = select(ExpiryNotice.id).where(
        ExpiryNotice.credit_transaction_id == WT.id, ExpiryNotice.threshold_days == threshold
    )
    rows = session.execute(
        select(
            WT.id,
            User.id,
            User.company_id,
            User.email,
            User.name,
            Company.name,
            WT.remaining_amount,
            WT.expires_at,
        )
        .join(Wallet, Wallet.id == WT.wallet_id)
        .join(User, User.id == Wallet.user_id)
        .join(Company, Company.id == User.company_id)
        .where(
            WT.remaining_amount > 0,
            WT.expires_at > now + timedelta(days=lower),
            WT.expires_at <= now + timedelta(days=threshold),
            User.is_active.is_(True),
            Company.is_active.is_(True),
            ~noticed.exists(),
        )
        .order_by(User.id, WT.expires_at, WT.seq)
        .limit(limit)
    ).all()
    # Lots (remaining_amount > 0) always have an amount and an expiry.
    return [
        _Lot(lot_id, user_id, company_id, email, name, company_name, int(remaining or 0), expires_at)
        for lot_id, user_id, company_id, email, name, company_name, remaining, expires_at in rows
        if expires_at is not None
    ]


def _notice_context(lots: list[_Lot], threshold: int, now: datetime) -> dict[str, Any]:
    first = lots[0]
    earliest = min(lot.expires_at for lot in lots)
    return {
        "name": first.name,
        "company_name": first.company_name,
        "coins": sum(lot.remaining for lot in lots),
        "threshold_days": threshold,
        "days_left": max(0, (earliest - now).days),
        "earliest_expiration": earliest.astimezone(UTC).strftime("%d/%m/%Y"),
        "lots": [
            {"coins": lot.remaining, "expires_on": lot.expires_at.astimezone(UTC).strftime("%d/%m/%Y")}
            for lot in lots
        ],
    }


def _claim_notices(lots: list[_Lot], threshold: int, now: datetime) -> list[_Lot]:
    """Insert the notice rows and commit them: the lots this run may notify (at most once each;
    a concurrent run that claimed them first leaves us nothing)."""
    with db.session_scope() as session:
        inserted = set(
            session.scalars(
                insert(ExpiryNotice)
                .values(
                    [
                        {
                            "credit_transaction_id": lot.id,
                            "threshold_days": threshold,
                            "user_id": lot.user_id,
                            "company_id": lot.company_id,
                            "coins": lot.remaining,
                            "expires_at": lot.expires_at,
                            "sent_at": now,
                        }
                        for lot in lots
                    ]
                )
                .on_conflict_do_nothing(
                    index_elements=[ExpiryNotice.credit_transaction_id, ExpiryNotice.threshold_days]
                )
                .returning(ExpiryNotice.credit_transaction_id)
            )
        )
    return [lot for lot in lots if lot.id in inserted]


def _settle_notices(lots: list[_Lot], threshold: int, record_id: str | None, delivered: bool) -> None:
    """Link the claimed notices to their `sent_emails` record, or release them when the email
    failed so that the next run tries again."""
    where = and_(
        ExpiryNotice.credit_transaction_id.in_([lot.id for lot in lots]),
        ExpiryNotice.threshold_days == threshold,
    )
    with db.engine().begin() as conn:
        if delivered:
            conn.execute(update(ExpiryNotice).where(where).values(email_record_id=record_id))
        else:
            conn.execute(delete(ExpiryNotice).where(where))


def send_expiry_notices(now: datetime | None = None, *, batch_size: int = 500) -> dict[str, Any]:
    """Email users whose coins expire within 30 and within 90 days, once per lot and threshold.

    Windows: (0, 30] days for the 30-day notice, (30, 90] for the 90-day one (a lot first seen
    inside 30 days gets only the 30-day notice). One email per user and threshold lists its lots.

    At least once, never twice for a delivered notice: one run at a time (an advisory lock); the
    notice rows are committed (claimed) before the email is handed to SMTP, and linked to its
    `sent_emails` record once delivered. A send that fails releases its claim (the next daily run
    retries). A claim still unlinked when a run starts was left by a run that died mid-send: it is
    released and sent again under the same send identity, so the email service resends it with the
    same Message-ID (or recognises it as delivered)."""
    with db.engine().connect() as lock:
        lock = lock.execution_options(isolation_level="AUTOCOMMIT")
        if not lock.execute(select(func.pg_try_advisory_lock(_NOTICE_RUN_LOCK))).scalar():
            return {"skipped": "another expiry-notices run is in progress"}
        try:
            with db.engine().begin() as conn:  # leftovers of a run that died between claim and settle
                conn.execute(delete(ExpiryNotice).where(ExpiryNotice.email_record_id.is_(None)))
            return _send_expiry_notices(now, batch_size)
        finally:
            lock.execute(select(func.pg_advisory_unlock(_NOTICE_RUN_LOCK)))


def _send_expiry_notices(now: datetime | None, batch_size: int) -> dict[str, Any]:
    moment = now or db.utcnow()
    summary: dict[str, Any] = {}
    lower = 0
    with emails.open_transport() as transport:  # one SMTP connection for the whole run
        for threshold in sorted(NOTICE_THRESHOLDS):
            sent = failed = lots_noticed = 0
            attempted: set[str] = set()
            while True:
                with db.session_scope() as session:
                    lots = [
                        lot
                        for lot in _lots_to_notify(
                            session, moment, threshold, lower, batch_size + len(attempted)
                        )
                        if lot.id not in attempted
                    ][:batch_size]
                if not lots:
                    break
                by_user: dict[str, list[_Lot]] = defaultdict(list)
                for lot in lots:
                    attempted.add(lot.id)
                    by_user[lot.user_id].append(lot)
                for user_lots in by_user.values():
                    claimed = _claim_notices(user_lots, threshold, moment)
                    if not claimed:
                        continue
                    first = claimed[0]
                    with db.session_scope() as session:
                        try:
                            outcome = emails.send_email(
                                session,
                                first.email,
                                notice_templates.COINS_EXPIRING,
                                _notice_context(claimed, threshold, moment),
                                company_id=first.company_id,
                                user_id=first.user_id,
                                # The send's identity: a resend after a crash is the same message.
                                run_id=f"expiry:{threshold}:{first.id}",
                                transport=transport,
                            )
                        except RateLimited as limited:  # the company's window is full: next run
                            outcome = emails.SendOutcome("failed", limited.message, transient=True)
                    delivered = outcome.sent or outcome.delivered
                    _settle_notices(claimed, threshold, outcome.record_id, delivered)
                    if delivered:
                        sent += 1
                        lots_noticed += len(claimed)
                    else:
                        failed += 1
                        log.warning(
                            "expiry notice not delivered; released for the next run",
                            extra={"user_id": first.user_id, "threshold": threshold, "error": outcome.error},
                        )
            summary[f"notices_{threshold}d"] = {
                "emails_sent": sent,
                "emails_failed": failed,
                "lots": lots_noticed,
            }
            lower = threshold
    return summary
