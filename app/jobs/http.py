"""The one pattern for slow endpoints.

The request has already written its job row. With `Prefer: respond-async` (RFC 7240) it answers
202 + job id at once. Without it, it waits for the job up to SYNC_WAIT_SECONDS (blocking on Redis,
not polling Postgres) and answers with the endpoint's synchronous body, or 202 + job id if the job
is still running, so clients written for a synchronous API keep working.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app import runtime
from app.api import accepted
from app.jobs.models import TERMINAL_STATUSES, Job
from app.jobs.waiting import wait_for_job


def prefers_async() -> bool:
    preferences = request.headers.get("Prefer", "")
    return any(p.split(";", 1)[0].strip().lower() == "respond-async" for p in preferences.split(","))


def respond_when_done(
    session: Session, job: Job, render: Callable[[Job], ResponseReturnValue]
) -> ResponseReturnValue:
    """202 now (respond-async), `render(job)` once the job is terminal, or 202 after the bound."""
    if prefers_async():
        body, status, headers = accepted(job.id, job.status)
        return body, status, {**headers, "Preference-Applied": "respond-async"}
    job = wait_for_job(session, job, runtime.settings().sync_wait_seconds)
    if job.status in TERMINAL_STATUSES:
        return render(job)
    return accepted(job.id, job.status)
