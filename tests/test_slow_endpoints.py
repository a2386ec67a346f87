"""The slow-endpoint pattern: Prefer: respond-async → 202 at once; otherwise wait (on Redis, not by
polling Postgres) for the job and answer synchronously, or 202 when the bound runs out."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import event

from app import db, runtime
from tests.conftest import kill_tree, start_worker_process


class _QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: object) -> None:
        self.count += 1


@pytest.mark.slow
def test_without_prefer_the_request_waits_and_answers_with_the_finished_job(client, make_tenant, settings):
    runtime.init(replace(settings, sync_wait_seconds=60))
    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    process = start_worker_process()
    try:
        response = client.post("/admin/cron/reconcile-jobs/run", headers=tenant.headers())
    finally:
        kill_tree(process)
    assert response.status_code == 200
    job = response.get_json()
    assert (job["status"], job["attempts"], job["kind"]) == ("succeeded", 1, "cron.run")
    assert job["result"]["summary"]["republished"] == 0


def test_prefer_respond_async_answers_202_at_once(client, make_tenant, settings):
    runtime.init(replace(settings, sync_wait_seconds=60))  # would wait a minute without the header
    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    headers = {**tenant.headers(), "Prefer": "wait=10, respond-async"}
    response = client.post("/admin/cron/reconcile-jobs/run", headers=headers)
    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "respond-async"
    assert response.headers["Location"] == f"/jobs/{response.get_json()['job_id']}"
    assert response.get_json()["status"] == "queued"


def test_the_wait_is_bounded_and_does_not_poll_the_database(client, make_tenant, settings):
    runtime.init(replace(settings, sync_wait_seconds=2.5))
    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    counter = _QueryCounter()
    event.listen(db.engine(), "before_cursor_execute", counter)
    try:
        response = client.post("/admin/cron/reconcile-jobs/run", headers=tenant.headers())  # no worker
    finally:
        event.remove(db.engine(), "before_cursor_execute", counter)
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    # auth, insert, publish, one read before waiting: a handful, not one per few milliseconds
    assert counter.count < 15, counter.count


def test_a_waiting_request_wakes_when_the_job_is_canceled(client, make_tenant, settings):
    runtime.init(replace(settings, sync_wait_seconds=60))
    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    accepted = client.post(
        "/admin/cron/reconcile-jobs/run", headers={**tenant.headers(), "Prefer": "respond-async"}
    ).get_json()
    # A second request for the same work (same idempotency key semantics aside) waits on the same job.
    results: list = []

    def wait_on_it() -> None:
        from app.api import request_session
        from app.jobs.models import Job
        from app.jobs.waiting import wait_for_job

        with client.application.test_request_context():
            session = request_session()
            results.append(wait_for_job(session, session.get(Job, accepted["job_id"]), 60).status)

    waiter = threading.Thread(target=wait_on_it)
    waiter.start()
    assert client.post(f"/jobs/{accepted['job_id']}/cancel", headers=tenant.headers()).status_code == 200
    waiter.join(timeout=30)
    assert results == ["canceled"]
