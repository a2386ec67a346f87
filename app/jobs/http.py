"""The one pattern for slow endpoints.

The request has already written its job row. With `Prefer: respond-async` (RFC 7240) it answers
202 + job id at once. Without it, it waits for the job up to SYNC_WAIT_SECONDS (blocking on Redis,
not polling Postgres) and answers with the endpoint's synchronous body, or 202 + job id if the job
is still running, so clients written for a synchronous API keep working.

A job that did not succeed is answered by one renderer, `job_answer`, for every slow endpoint: a
job that failed with a domain error answers that error's status and code (as the request would
have, had it done the work itself), a canceled one 409 `JOB_CANCELED`, and any other failure 500
`JOB_FAILED` without echoing internals (the job's `error` is for operators, at GET /jobs/<id>).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app import errors, runtime
from app.api import accepted, error_response, status_of
from app.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from app.jobs.waiting import wait_for_job

JOB_FAILED_MESSAGE = "The work could not be completed; the job failed"
JOB_CANCELED_MESSAGE = "The job was canceled before it finished"


def prefers_async() -> bool:
    preferences = request.headers.get("Prefer", "")
    return any(p.split(";", 1)[0].strip().lower() == "respond-async" for p in preferences.split(","))


def respond_when_done(
    session: Session, job: Job, render: Callable[[Job], ResponseReturnValue]
) -> ResponseReturnValue:
    """202 now (respond-async); `render(job)` once the job succeeded; `job_answer(job)` when it
    failed, was canceled, or is still running after the bound."""
    if prefers_async():
        body, status, headers = accepted(job.id, job.status)
        return body, status, {**headers, "Preference-Applied": "respond-async"}
    job = wait_for_job(session, job, runtime.settings().sync_wait_seconds)
    if job.status == JobStatus.SUCCEEDED:
        return render(job)
    return job_answer(job)


def job_answer(job: Job) -> ResponseReturnValue:
    """The HTTP answer for a job that has not succeeded (every slow endpoint's, one shape):
    - still pending, queued or running: 202 + job id + Location (watch GET /jobs/<id>);
    - failed with a domain error (app/errors.py; the runner keeps it in the job's `result`): that
      error's status, code, message and details, as `app/api.py` maps it;
    - canceled: 409 `JOB_CANCELED`;
    - any other failure: 500 `JOB_FAILED`, naming the job but never echoing its internal error.
    Every error answer carries `job_id` beside the error shape."""
    if job.status in ACTIVE_STATUSES:
        return accepted(job.id, job.status)
    extra = {"job_id": job.id}
    if job.status == JobStatus.CANCELED:
        return error_response(409, JOB_CANCELED_MESSAGE, "JOB_CANCELED", extra=extra)
    failure = _domain_failure(job)
    if failure is None:
        return error_response(500, JOB_FAILED_MESSAGE, "JOB_FAILED", extra=extra)
    kind, info = failure
    message = str(info.get("message") or JOB_FAILED_MESSAGE)
    response = error_response(status_of(kind), message, info.get("code"), info.get("details"), extra)
    if info.get("retry_after") is not None:
        response.headers["Retry-After"] = str(info["retry_after"])
    return response


def _domain_failure(job: Job) -> tuple[type[errors.DomainError], dict[str, Any]] | None:
    """The domain error class and its stored fields when the job failed with one (see
    `app/jobs/runner.py:domain_error_result`), else None."""
    info = (
        job.result.get("error") if job.status == JobStatus.FAILED and isinstance(job.result, dict) else None
    )
    if not isinstance(info, dict):
        return None
    kind = getattr(errors, str(info.get("kind")), None)
    if isinstance(kind, type) and issubclass(kind, errors.DomainError):
        return kind, info
    return None
