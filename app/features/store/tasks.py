"""Store jobs. Thin: the logic is in `issuing.py`, `flows.py`, `sync.py` and `notifications.py`.

- `store.issue_voucher(redemption_id)`: one per voucher redemption (E1, see issuing.py).
- `store.apply_voucher_event(event_id)`: one stored webhook delivery (E4).
- `store.dispatch_voucher_batch(redemption_ids)`: the issue jobs of an admin bulk send.
- `store.sync_voucher_catalogue()`: the provider's products into the catalogue.
- `store.notify_redemption(redemption_id, event)`: a redemption e-mail, once per (redemption, event).
"""

from __future__ import annotations

from typing import Any

from app.features.emails.tasks import deferred_when_rate_limited
from app.features.store import flows, issuing, notifications, sync
from app.jobs import JobContext, task

# Provider calls retry with the kernel's exponential backoff (JOB_RETRY_BACKOFF_SECONDS * 3^n).
ISSUE_ATTEMPTS = 6


@task(flows.ISSUE_KIND, queue="default", max_attempts=ISSUE_ATTEMPTS, timeout_seconds=120)
def issue_voucher(ctx: JobContext, redemption_id: str) -> dict[str, Any]:
    return issuing.issue_voucher(ctx, redemption_id)


@task(issuing.APPLY_EVENT_KIND, queue="default", max_attempts=5, timeout_seconds=60)
def apply_voucher_event(ctx: JobContext, event_id: str) -> dict[str, Any]:
    return issuing.apply_event(ctx, event_id)


@task("store.dispatch_voucher_batch", queue="default", max_attempts=5, timeout_seconds=600)
def dispatch_voucher_batch(ctx: JobContext, redemption_ids: list[str]) -> dict[str, Any]:
    jobs: dict[str, str | None] = {}
    for index, redemption_id in enumerate(redemption_ids):
        jobs[redemption_id] = flows.dispatch_issue_job(ctx.session, redemption_id, ctx.requested_by)
        ctx.progress((index + 1) * 100 // max(1, len(redemption_ids)))
    return {"total": len(redemption_ids), "jobs": jobs}


@task("store.sync_voucher_catalogue", queue="default", max_attempts=3, timeout_seconds=600)
def sync_voucher_catalogue(ctx: JobContext) -> dict[str, Any]:
    result = sync.sync_catalogue(ctx.session)
    return {"success": True, "message": "Voucher catalogue synchronised", "result": result}


class TransientEmailFailure(Exception):
    """Some sends hit a transient SMTP error: retried later (what left is not sent again)."""


@task(notifications.KIND, queue="emails", max_attempts=4, timeout_seconds=120)
def notify_redemption(ctx: JobContext, redemption_id: str, event: str) -> dict[str, Any]:
    with deferred_when_rate_limited(ctx):
        outcome = notifications.send(ctx.session, redemption_id, event)
    if outcome.transient:
        raise TransientEmailFailure(f"{outcome.transient} e-mail(s) hit a transient SMTP error")
    return {"sent": outcome.sent, "duplicate": outcome.duplicate, "failed": outcome.failed}
