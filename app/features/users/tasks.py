"""Jobs of the CSV import: checking a large preview, and the import itself."""

from __future__ import annotations

from typing import Any

from app.features.users import csv_import
from app.jobs import JobContext, PermanentJobError, enqueue, task


@task(csv_import.CHECK_KIND, queue="default")
def check_csv_preview(ctx: JobContext, preview_id: str) -> dict[str, Any]:
    """A preview gone meanwhile fails the job with NotFound (PREVIEW_NOT_FOUND)."""
    return csv_import.run_preview_check(ctx.session, preview_id, ctx.progress)


@task(csv_import.IMPORT_KIND, queue="default", timeout_seconds=1800)
def import_csv(
    ctx: JobContext, preview_id: str, confirmed_rows: list[int] | None = None, send_invites: bool = False
) -> dict[str, Any]:
    """All rows or none, in this job's transaction; invites are queued in the same transaction.
    A preview gone meanwhile fails the job with Invalid (400 PREVIEW_NOT_FOUND, as the contract's
    import route answers)."""
    if ctx.company_id is None:
        raise PermanentJobError("an import job needs a company")
    outcome = csv_import.run_import(ctx.session, preview_id, ctx.company_id, confirmed_rows, ctx.progress)
    body = dict(outcome.body)
    if send_invites and outcome.created:
        body["inviteJobIds"] = [
            enqueue(
                ctx.session,
                csv_import.INVITE_KIND,
                {"user_ids": ids},
                company_id=ctx.company_id,
                requested_by=ctx.requested_by,
            )[0].id
            for ids in csv_import.created_user_ids(ctx.session, csv_import.INVITE_JOB_SIZE)
        ]
        # Stored with the report so a re-run answers the same body.
        csv_import.remember_report(ctx.session, preview_id, body)
    ctx.progress(100)
    return body
