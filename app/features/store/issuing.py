"""Issuing vouchers at the provider, applying its webhooks and reconciling what is left open.

The issue job (`store.issue_voucher`, one per voucher redemption) keeps rule E1 — never two vouchers
for one redemption:
1. Under the voucher row's lock, in a transaction committed at once: stop if the order is already
   recorded or the voucher is final; count the attempt.
2. If an earlier create call may have reached the provider (`create_calls > 0`), look the order up
   by its external id (the redemption id) first.
3. Only when no order exists: count the create call (committed *before* the request leaves), then
   `POST /orders` with `external_id` = redemption id.
4. Record the order and reward ids and move the redemption to `sent` in the job's transaction,
   committed with the job's `succeeded` marker.
A run killed anywhere re-runs (the kernel's reconciler) and resumes at step 2.

Failures: `Rejected` from the create call is final (nothing was created): fail and refund (E3).
`Retryable`/`Ambiguous` raise, and the kernel retries with backoff; on the last attempt the job
looks the order up once more: found → sent, not found → failed and refunded, lookup impossible →
the voucher is parked in `review` for the reconciliation cron (never refunded while an order might
exist).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db, runtime
from app.db import utcnow
from app.errors import PermanentJobError
from app.features.store import flows, redemptions
from app.features.store.models import Redemption, VoucherRedemption, VoucherState
from app.features.vouchers import providers
from app.features.vouchers import service as webhooks
from app.features.vouchers.providers import OrderRequest, ProviderError, ProviderOrder, Rejected
from app.jobs import JobContext, enqueue
from app.jobs.models import ACTIVE_STATUSES, Job

log = logging.getLogger(__name__)

APPLY_EVENT_KIND = "store.apply_voucher_event"
EVENT_GRACE = timedelta(minutes=1)


class ProviderUnavailable(Exception):
    """A retryable provider failure: the kernel runs the job again after a backoff."""


class UnknownReward(Exception):
    """A webhook for a reward we have not recorded (yet): retried, never dropped."""


@dataclass
class _Claim:
    request: OrderRequest
    look_up_first: bool


def _claim(redemption_id: str) -> _Claim | dict[str, Any]:
    with db.session_scope() as session:
        voucher = redemptions.lock_voucher(session, redemption_id)
        if voucher is None:
            raise PermanentJobError(f"No voucher issuance for redemption {redemption_id}")
        if voucher.status not in (VoucherState.ISSUING, VoucherState.REVIEW):
            return {"status": voucher.status, "orderId": voucher.provider_order_id, "skipped": True}
        voucher.attempts += 1
        voucher.last_attempt_at = utcnow()
        return _Claim(
            OrderRequest(
                external_id=redemption_id,
                product_id=voucher.provider_product_id,
                amount_cents=voucher.amount_cents,
                currency=voucher.currency,
                recipient_name=voucher.recipient_name,
                recipient_email=voucher.recipient_email,
            ),
            look_up_first=voucher.create_calls > 0 or voucher.status == VoucherState.REVIEW,
        )


def _count_create_call(redemption_id: str) -> None:
    """Committed before the create request leaves: a run that dies after sending it is then known
    to have maybe created an order."""
    with db.session_scope() as session:
        voucher = redemptions.lock_voucher(session, redemption_id)
        if voucher is not None:
            voucher.create_calls += 1


def _note_error(redemption_id: str, error: str) -> None:
    with db.session_scope() as session:
        voucher = redemptions.lock_voucher(session, redemption_id)
        if voucher is not None:
            voucher.error_message = error[:2000]


def _is_last_attempt(ctx: JobContext) -> bool:
    job = ctx.session.get(Job, ctx.job_id)
    return job is None or ctx.attempt >= job.max_attempts


def issue_voucher(ctx: JobContext, redemption_id: str) -> dict[str, Any]:
    claim = _claim(redemption_id)
    if isinstance(claim, dict):
        return claim
    provider = providers.provider()
    order: ProviderOrder | None = None
    try:
        if claim.look_up_first:
            order = provider.find_order(redemption_id)
        if order is None:
            _count_create_call(redemption_id)
            try:
                order = provider.create_order(claim.request)
            except Rejected as exc:
                flows.voucher_failed(ctx.session, redemption_id, str(exc))
                log.warning(
                    "voucher refused by the provider",
                    extra={"redemption_id": redemption_id, "error": str(exc)},
                )
                return {"status": "failed", "error": str(exc)}
    except ProviderError as exc:  # Retryable, Ambiguous, or a refused look-up (configuration)
        if not _is_last_attempt(ctx):
            _note_error(redemption_id, str(exc))
            raise ProviderUnavailable(str(exc)) from exc
        return _settle_last_attempt(ctx, provider, redemption_id, exc)
    return _record(ctx.session, redemption_id, order)


def _record(session: Session, redemption_id: str, order: ProviderOrder) -> dict[str, Any]:
    if order.failed:
        flows.voucher_failed(session, redemption_id, f"Provider order {order.order_id} is {order.status}")
        return {"status": "failed", "orderId": order.order_id}
    flows.voucher_sent(
        session,
        redemption_id,
        order_id=order.order_id,
        reward_id=order.reward_id,
        link=order.link,
        code=order.code,
        delivered=order.delivered,
    )
    return {"status": "sent", "orderId": order.order_id, "rewardId": order.reward_id}


def _settle_last_attempt(
    ctx: JobContext, provider: providers.VoucherProvider, redemption_id: str, error: ProviderError
) -> dict[str, Any]:
    """No attempt left: decide from facts. An order found is recorded; no order is a final failure
    (refund); a provider we cannot ask parks the voucher for the reconciliation cron."""
    try:
        order = provider.find_order(redemption_id)
    except ProviderError as lookup_error:
        voucher = redemptions.lock_voucher(ctx.session, redemption_id)
        if voucher is not None and voucher.status == VoucherState.ISSUING:
            voucher.status = VoucherState.REVIEW
            voucher.error_message = f"{error} (look-up failed: {lookup_error})"[:2000]
        log.error(
            "voucher outcome unknown after the last attempt; parked for reconciliation",
            extra={"redemption_id": redemption_id, "error": str(error)},
        )
        return {"status": "review", "error": str(error)}
    if order is not None:
        return _record(ctx.session, redemption_id, order)
    flows.voucher_failed(ctx.session, redemption_id, f"Retries exhausted: {error}")  # and no order exists
    return {"status": "failed", "error": str(error)}


# --- webhooks -------------------------------------------------------------------------------------

FAILED_EVENTS = ("REWARDS.DELIVERY.FAILED", "REWARDS.CANCELED")
SUCCEEDED_EVENTS = ("REWARDS.DELIVERY.SUCCEEDED",)
FLAGGED_EVENTS = ("REWARDS.FLAGGED",)


def apply_event(ctx: JobContext, event_id: str) -> dict[str, Any]:
    """Apply one stored webhook delivery, once (the row lock and `processed_at`), idempotently per
    (reward, event) because every transition is guarded."""
    session = ctx.session
    event = webhooks.lock_event(session, event_id)
    if event is None or event.processed_at is not None:
        return {"skipped": True}
    relevant = event.event in FAILED_EVENTS + SUCCEEDED_EVENTS + FLAGGED_EVENTS
    voucher = (
        redemptions.voucher_by_reward(session, event.provider, event.resource_id)
        if event.resource_id
        else None
    )
    if voucher is None:
        if relevant:
            message = f"no voucher for {event.provider} resource {event.resource_id} yet"
            session.rollback()  # release the event's row lock before noting the attempt
            with db.session_scope() as own:
                webhooks.note_attempt(own, event_id, message)
            raise UnknownReward(message)
        webhooks.mark_processed(session, event, "ignored", None)
        return {"outcome": "ignored", "event": event.event}
    if event.event in SUCCEEDED_EVENTS:
        outcome = "delivered" if flows.voucher_delivered(session, voucher.redemption_id) else "no_change"
    elif event.event in FAILED_EVENTS:
        changed = flows.voucher_failed(session, voucher.redemption_id, f"Provider event {event.event}")
        outcome = "failed_refunded" if changed else "no_change"
    elif event.event in FLAGGED_EVENTS:
        outcome = "flagged"
        log.error(
            "ALERT voucher flagged by the provider for review",
            extra={"redemption_id": voucher.redemption_id, "event_id": event_id},
        )
    else:
        outcome = "ignored"
    webhooks.mark_processed(session, event, outcome, voucher.company_id)
    return {"outcome": outcome, "event": event.event, "redemptionId": voucher.redemption_id}


# --- reconciliation ---------------------------------------------------------------------------------


@dataclass
class ReconcileSummary:
    checked: int = 0
    delivered: int = 0
    failed: int = 0
    sent: int = 0
    dispatched: int = 0
    events_requeued: int = 0
    stuck: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "delivered": self.delivered,
            "sent": self.sent,
            "failed": self.failed,
            "dispatched": self.dispatched,
            "eventsRequeued": self.events_requeued,
            "stuck": self.stuck,
            "errors": self.errors[:20],
        }


def _job_active(session: Session, job_id: str | None) -> bool:
    if job_id is None:
        return False
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    return status in ACTIVE_STATUSES


def reconcile(now: Any = None, event_grace: timedelta = EVENT_GRACE) -> ReconcileSummary:
    """Vouchers without a final outcome, resolved from the provider's own records; webhook events
    left unprocessed, re-enqueued. Each item in its own short transaction."""
    settings = runtime.settings()
    moment = now or utcnow()
    summary = ReconcileSummary()
    provider = providers.provider()
    sent_before = moment - timedelta(minutes=settings.voucher_reconcile_after_minutes)
    stuck_before = moment - timedelta(hours=settings.voucher_stuck_alert_hours)
    with db.session_scope() as session:
        open_ids = list(
            session.execute(
                select(VoucherRedemption.redemption_id, VoucherRedemption.status)
                .where(
                    VoucherRedemption.status.in_(VoucherState.OPEN), VoucherRedemption.updated_at <= moment
                )
                .order_by(VoucherRedemption.created_at)
                .limit(1000)
            ).all()
        )
    for redemption_id, _status in open_ids:
        try:
            _reconcile_one(provider, redemption_id, sent_before, stuck_before, summary)
        except ProviderError as exc:
            summary.errors.append(f"{redemption_id}: {exc}")
    with db.session_scope() as session:
        for event in webhooks.unprocessed(session, event_grace):
            if _job_active(session, event.apply_job_id):
                continue
            job, _ = enqueue(session, APPLY_EVENT_KIND, {"event_id": event.id}, company_id=event.company_id)
            webhooks.set_apply_job(session, event.id, job.id)
            summary.events_requeued += 1
    return summary


def _reconcile_one(
    provider: providers.VoucherProvider,
    redemption_id: str,
    sent_before: Any,
    stuck_before: Any,
    summary: ReconcileSummary,
) -> None:
    with db.session_scope() as session:
        voucher = redemptions.lock_voucher(session, redemption_id)
        if voucher is None:
            return
        if voucher.status == VoucherState.SENT:
            if (
                voucher.completed_at is None
                or voucher.completed_at > sent_before
                or not voucher.provider_order_id
            ):
                return
            summary.checked += 1
            order = provider.get_order(voucher.provider_order_id)
            if order is not None and order.delivered:
                summary.delivered += int(flows.voucher_delivered(session, redemption_id))
            elif order is not None and order.failed:
                summary.failed += int(
                    flows.voucher_failed(session, redemption_id, f"Provider order is {order.status}")
                )
            else:
                _maybe_alert(voucher, stuck_before, summary)
            return
        # issuing or review: the issue job owns it while that job is alive
        if _job_active(session, voucher.issue_job_id):
            return
        if voucher.status == VoucherState.ISSUING and voucher.issue_job_id is None:
            if voucher.created_at <= utcnow() - EVENT_GRACE:
                flows.dispatch_issue_job(session, redemption_id, None)
                summary.dispatched += 1
            return
        summary.checked += 1
        order = (
            provider.find_order(redemption_id)
            if voucher.create_calls > 0 or voucher.status == VoucherState.REVIEW
            else None
        )
        if order is not None:
            _record(session, redemption_id, order)
            summary.sent += 1
        else:
            # The issue job is over (failed for good, or parked this for review) and the provider
            # has no order under this redemption's id: a final failure, refunded once.
            summary.failed += int(
                flows.voucher_failed(
                    session, redemption_id, voucher.error_message or "Voucher could not be issued"
                )
            )


def _maybe_alert(voucher: VoucherRedemption, stuck_before: Any, summary: ReconcileSummary) -> None:
    if voucher.completed_at and voucher.completed_at <= stuck_before and voucher.alerted_at is None:
        voucher.alerted_at = utcnow()
        summary.stuck += 1
        log.error(
            "ALERT voucher sent but without a delivery outcome for too long",
            extra={"redemption_id": voucher.redemption_id, "order_id": voucher.provider_order_id},
        )


def find_orphans(days: int = 2) -> dict[str, Any]:
    """Provider orders whose external id has no live voucher here (created by a lost request, or
    issued for a redemption we failed and refunded): each is logged as an alert."""
    provider = providers.provider()
    orders = provider.list_orders(utcnow() - timedelta(days=days))
    orphans: list[dict[str, Any]] = []
    with db.session_scope() as session:
        ids = [o.external_id for o in orders if o.external_id]
        known = (
            {
                v.redemption_id: v.status
                for v in session.scalars(
                    select(VoucherRedemption).where(VoucherRedemption.redemption_id.in_(ids))
                )
            }
            if ids
            else {}
        )
        redemption_ids = (
            set(session.scalars(select(Redemption.id).where(Redemption.id.in_(ids)))) if ids else set()
        )
    for order in orders:
        status = known.get(order.external_id or "")
        if order.external_id not in redemption_ids or status == VoucherState.FAILED:
            orphans.append(
                {"orderId": order.order_id, "externalId": order.external_id, "localStatus": status}
            )
            log.error(
                "ALERT provider order without a live voucher here",
                extra={"order_id": order.order_id, "external_id": order.external_id},
            )
    return {"providerOrders": len(orders), "orphans": orphans[:50], "orphanCount": len(orphans)}
