"""Scheduled wallet tasks (issue 6). Thin: the logic is in `weekly_reset.py`, `expiry.py` and
`expiry_notices.py`.

Every task is idempotent per period, so any number of concurrent or repeated runs (Railway cron
one-shots, `cron.py serve`, an operator's run-now) is safe.
"""

from __future__ import annotations

from typing import Any

from app.cron.schedule import scheduled
from app.features.wallets import expiry
from app.features.wallets import expiry_notices as notices
from app.features.wallets import weekly_reset as reset


@scheduled(
    "weekly-reset",
    cron="0 * * * *",
    description="Weekly compliment allowance reset, per company on its renewal day (local time)",
)
def weekly_reset() -> dict[str, Any]:
    summary = reset.run_weekly_reset(trigger="cron")
    if summary.failed:
        raise RuntimeError(
            f"weekly reset failed for {len(summary.failed)} companies "
            f"({summary.as_dict()}): {sorted(summary.failed.items())[:5]}"
        )
    return summary.as_dict()


@scheduled("expire-coins", cron="30 2 * * *", description="Expire redeemable coins 18 months after credit")
def expire_coins() -> dict[str, Any]:
    return expiry.expire_due_coins().as_summary()


@scheduled(
    "expiry-notices",
    cron="0 12 * * *",
    description="Email users whose coins expire within 90 and 30 days (once per lot and threshold)",
)
def expiry_notices() -> dict[str, Any]:
    return notices.send_expiry_notices()
