"""Domain errors (app/errors.py) reach HTTP through one mapping, and decide a job's retries."""

from __future__ import annotations

import pytest
from flask import Flask

from app import api, db, errors
from app.jobs import enqueue
from app.jobs.models import Job, JobStatus

CASES = [
    (errors.Invalid("bad"), 400, "VALIDATION_ERROR"),
    (errors.Unauthenticated("who?"), 401, "UNAUTHORIZED"),
    (errors.Forbidden("no", "NOT_YOURS"), 403, "NOT_YOURS"),
    (errors.NotFound("gone"), 404, "NOT_FOUND"),
    (errors.Conflict("taken", "EMAIL_ALREADY_EXISTS"), 409, "EMAIL_ALREADY_EXISTS"),
    (errors.TooLarge("big"), 413, "PAYLOAD_TOO_LARGE"),
    (errors.RateLimited("slow down", retry_after=7), 429, "RATE_LIMITED"),
    (errors.Unavailable("down", retry_after=3), 503, "UNAVAILABLE"),
]


@pytest.fixture(scope="module")
def bare_app() -> Flask:
    app = Flask(__name__)
    api.init_app(app)

    @app.get("/raise/<int:index>")
    def raise_case(index: int) -> None:
        raise CASES[index][0]

    return app


@pytest.mark.parametrize("index", range(len(CASES)))
def test_each_domain_error_has_one_status_and_the_error_shape(bare_app, index):
    error, status, code = CASES[index]
    response = bare_app.test_client().get(f"/raise/{index}", headers={"X-Request-ID": "req-1"})
    assert response.status_code == status
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"] == body["message"] == error.message
    assert body["request_id"] == "req-1"
    if isinstance(error, errors.RateLimited | errors.Unavailable):
        assert response.headers["Retry-After"] == str(error.retry_after)
    else:
        assert "Retry-After" not in response.headers


def _run(kind: str, worker) -> Job:
    with db.session_scope() as session:
        job, _ = enqueue(session, "probe.domain_error", {"kind": kind})
        job_id = job.id
    worker()
    with db.session_scope() as session:
        return session.get_one(Job, job_id)


def test_a_permanent_domain_error_fails_the_job_at_once(worker):
    job = _run("invalid", worker)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert "this input can never work" in (job.error or "")


def test_a_transient_domain_error_is_retried_until_the_attempts_run_out(worker):
    job = _run("unavailable", worker)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
