"""Scheduled store tasks (each idempotent: any number of concurrent or repeated runs is safe).

- `reconcile-vouchers` (every 5 minutes): vouchers without a final outcome are resolved from the
  provider's records; unprocessed webhook deliveries are enqueued again.
- `sync-voucher-catalogue` (daily): the provider's products into the catalogue.
- `voucher-orphans` (daily): provider orders with no live voucher here, logged as alerts.
"""

from __future__ import annotations

from typing import Any

from app import db
from app.cron.schedule import scheduled
from app.features.store import issuing, sync


@scheduled("reconcile-vouchers", cron="*/5 * * * *", description="Resolve vouchers without a final outcome")
def reconcile_vouchers() -> dict[str, Any]:
    return issuing.reconcile().as_dict()


@scheduled("sync-voucher-catalogue", cron="20 5 * * *", description="Sync the voucher provider's catalogue")
def sync_voucher_catalogue() -> dict[str, Any]:
    with db.session_scope() as session:
        return sync.sync_catalogue(session)


@scheduled(
    "voucher-orphans", cron="50 5 * * *", description="Alert on provider orders without a voucher here"
)
def voucher_orphans() -> dict[str, Any]:
    return issuing.find_orphans()
