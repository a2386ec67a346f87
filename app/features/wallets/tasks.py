"""Wallet jobs for the operator routes (issue 6). Thin: the logic is in `weekly_reset.py` and `expiry.py`.

Both are idempotent: the reset applies each company's current week once whatever runs it, and
expiry finds nothing left to expire on a second attempt. They commit per company / per batch in
their own transactions (not the job's), so a retried job resumes where the first attempt stopped.
"""

from __future__ import annotations

from typing import Any

from app.features.wallets import expiry, weekly_reset
from app.jobs import JobContext, task


@task("wallets.reset_weekly", queue="default", max_attempts=3)
def reset_weekly(ctx: JobContext, company_id: str | None = None) -> dict[str, Any]:
    summary = weekly_reset.run_weekly_reset(
        trigger="api", company_id=company_id, requested_by=ctx.requested_by
    )
    if summary.failed:
        raise RuntimeError(f"weekly reset failed for {len(summary.failed)} companies")
    return {
        **summary.as_dict(),
        "companies": [
            {
                "companyId": o.company_id,
                "companyName": o.company_name,
                "weeklyLimit": o.weekly_amount,
                "walletsUpdated": o.wallets_changed,
                "alreadyReset": not o.applied,
                "periodStart": o.period_start.isoformat(),
            }
            for o in summary.outcomes[:100]
        ],
    }


@task("wallets.expire_coins", queue="default", max_attempts=3)
def expire_coins(ctx: JobContext, company_id: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    return expiry.expire_due_coins(company_id=company_id, dry_run=dry_run).as_contract()
