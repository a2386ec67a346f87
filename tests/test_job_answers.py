"""One renderer (app/jobs/http.py:job_answer) for every slow endpoint's job that did not succeed: a
domain error's own status and code, 409 for a canceled job, a 500 that echoes no internals for any
other failure, 202 while it runs."""

from __future__ import annotations

from flask import Flask

from app import db
from app.jobs import enqueue
from app.jobs.http import job_answer
from app.jobs.models import Job, JobStatus


def _failed_job(worker, kind: str, args: dict) -> Job:
    with db.session_scope() as session:
        job, _ = enqueue(session, kind, args)
        job_id = job.id
    worker()
    with db.session_scope() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
    assert job.status == JobStatus.FAILED, (job.status, job.error)
    return job


def _answer(app: Flask, job: Job) -> tuple[int, dict, dict]:
    with app.test_request_context("/"):
        response = app.make_response(job_answer(job))
    return response.status_code, response.get_json(), dict(response.headers)


def test_a_job_that_failed_with_a_domain_error_answers_that_errors_status_and_code(app, worker):
    job = _failed_job(worker, "probe.domain_error", {"kind": "invalid"})
    assert job.attempts == 1  # permanent: failed at once
    status, body, _ = _answer(app, job)
    assert status == 400
    assert body["error"] == {"code": "BAD_INPUT", "message": "this input can never work"}
    assert body["message"] == "this input can never work"
    assert body["job_id"] == job.id


def test_a_transient_domain_error_after_the_last_attempt_answers_its_status_and_retry_after(app, worker):
    job = _failed_job(worker, "probe.domain_error", {"kind": "unavailable"})
    assert job.attempts == 3
    status, body, headers = _answer(app, job)
    assert (status, body["error"]["code"], headers["Retry-After"]) == (503, "UNAVAILABLE", "5")


def test_a_permanent_job_error_answers_422(app, worker):
    job = _failed_job(worker, "probe.permanent", {})
    status, body, _ = _answer(app, job)
    assert (status, body["error"]["code"], body["message"]) == (422, "JOB_FAILED", "input can never work")


def test_an_internal_failure_answers_500_without_echoing_it(app, worker):
    job = _failed_job(worker, "probe.effect", {"fail_attempts": 9})
    assert "RuntimeError: probe failure" in (job.error or "")  # kept for operators at GET /jobs/<id>
    status, body, _ = _answer(app, job)
    assert (status, body["error"]["code"], body["job_id"]) == (500, "JOB_FAILED", job.id)
    assert "RuntimeError" not in str(body) and "probe failure" not in str(body)


def test_canceled_and_still_running_jobs(app):
    with db.session_scope() as session:
        job, _ = enqueue(session, "probe.effect", {})
    status, body, headers = _answer(app, job)
    assert (status, body["job_id"], headers["Location"]) == (202, job.id, f"/jobs/{job.id}")
    job.status = JobStatus.CANCELED
    status, body, _ = _answer(app, job)
    assert (status, body["error"]["code"], body["job_id"]) == (409, "JOB_CANCELED", job.id)


def test_a_slow_endpoint_answers_a_failed_job_through_the_renderer(client, make_tenant, worker):
    """POST /admin/cron/<task>/run of a task that raises: the first request answers 202
    (respond-async), the worker fails the job, and the same request again (same Idempotency-Key)
    answers the failure: a 500 naming the job, never the task's own error text."""
    tenant = make_tenant(super_admin=True)
    headers = {**tenant.headers(), "Idempotency-Key": "run-probe-fail-once"}
    first = client.post("/admin/cron/probe-fail/run", headers={**headers, "Prefer": "respond-async"})
    assert first.status_code == 202
    worker()
    again = client.post("/admin/cron/probe-fail/run", headers=headers)
    assert again.status_code == 500, again.get_json()
    body = again.get_json()
    assert (body["error"]["code"], body["job_id"]) == ("JOB_FAILED", first.get_json()["job_id"])
    assert "probe cron failure" not in again.get_data(as_text=True)
    job = client.get(f"/jobs/{body['job_id']}", headers=tenant.headers()).get_json()
    assert job["status"] == "failed" and "probe cron failure" in job["error"]
