"""Email jobs: the welcome/invite email of one user, and the bulk fan-out.

A send that finds its company's rate-limit window used up raises `RateLimited` (what already left
is recorded); every email job turns it into a deferral (`deferred_when_rate_limited`), so it runs
again when the window turns, without spending an attempt and without holding a worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.api import format_utc
from app.errors import RateLimited
from app.features.auth.service import invite_links
from app.features.emails import service
from app.features.emails.schemas import bulk_welcome_body, welcome_result_body
from app.jobs import JobContext, PermanentJobError, task
from app.jobs.models import Job

WELCOME_KIND = "users.send_welcome_email"
BULK_WELCOME_KIND = "users.send_welcome_emails_bulk"


class TransientEmailFailure(Exception):
    """Some sends hit transient SMTP errors: the kernel retries the job later (what was sent in
    this run is not sent again)."""


@contextmanager
def deferred_when_rate_limited(ctx: JobContext) -> Iterator[None]:
    """Around an email job's sends: out of rate-limit slots, the job defers until the window turns."""
    try:
        yield
    except RateLimited as limited:
        ctx.defer(limited.retry_after, limited.message)


def _retry_if_transient(ctx: JobContext, results: list[service.WelcomeResult]) -> None:
    transient = [r for r in results if r.transient]
    if not transient:
        return
    job = ctx.session.get(Job, ctx.job_id)
    if job is not None and ctx.attempt < job.max_attempts:
        raise TransientEmailFailure(f"{len(transient)} email(s) hit a transient SMTP error; retrying later")


def _welcome(ctx: JobContext, user_ids: list[str]) -> list[service.WelcomeResult]:
    with deferred_when_rate_limited(ctx):
        results = service.send_welcome_emails(
            ctx.session, ctx.company_id, user_ids, ctx.job_id, invite_links, ctx.progress
        )
    _retry_if_transient(ctx, results)
    return results


@task(WELCOME_KIND, queue="emails", timeout_seconds=600)
def send_welcome_email(ctx: JobContext, user_id: str) -> dict[str, Any]:
    if not user_id:
        raise PermanentJobError("user_id is required")
    [result] = _welcome(ctx, [user_id])
    count, last = service.welcome_stats(ctx.session, [user_id]).get(user_id, (0, None))
    return {
        **welcome_result_body(result),
        "emailSendCount": count,
        "lastEmailSentAt": format_utc(last) if last else None,  # the contract's …000Z form
    }


@task(BULK_WELCOME_KIND, queue="emails", timeout_seconds=3600)
def send_welcome_emails_bulk(ctx: JobContext, user_ids: list[str]) -> dict[str, Any]:
    return bulk_welcome_body(_welcome(ctx, list(user_ids)))
