"""Email jobs: the welcome/invite email of one user, and the bulk fan-out."""

from __future__ import annotations

from typing import Any

from app.api import format_utc
from app.features.emails import service
from app.jobs import JobContext, PermanentJobError, task
from app.jobs.models import Job

WELCOME_KIND = "users.send_welcome_email"
BULK_WELCOME_KIND = "users.send_welcome_emails_bulk"


class TransientEmailFailure(Exception):
    """Some sends hit transient SMTP errors: the kernel retries the job later (what was sent in
    this run is not sent again)."""


def _retry_if_transient(ctx: JobContext, results: list[service.WelcomeResult]) -> None:
    transient = [r for r in results if r.transient]
    if not transient:
        return
    job = ctx.session.get(Job, ctx.job_id)
    if job is not None and ctx.attempt < job.max_attempts:
        raise TransientEmailFailure(f"{len(transient)} email(s) hit a transient SMTP error; retrying later")


@task(WELCOME_KIND, queue="emails", timeout_seconds=600)
def send_welcome_email(ctx: JobContext, user_id: str) -> dict[str, Any]:
    if not user_id:
        raise PermanentJobError("user_id is required")
    [result] = service.send_welcome_emails(ctx.session, ctx.company_id, [user_id], ctx.job_id, ctx.progress)
    _retry_if_transient(ctx, [result])
    count, last = service.welcome_stats(ctx.session, [user_id]).get(user_id, (0, None))
    return {
        **result.as_dict(),
        "emailSendCount": count,
        "lastEmailSentAt": format_utc(last) if last else None,  # the contract's …000Z form
    }


@task(BULK_WELCOME_KIND, queue="emails", timeout_seconds=3600)
def send_welcome_emails_bulk(ctx: JobContext, user_ids: list[str]) -> dict[str, Any]:
    results = service.send_welcome_emails(
        ctx.session, ctx.company_id, list(user_ids), ctx.job_id, ctx.progress
    )
    _retry_if_transient(ctx, results)
    return service.bulk_response(results)
