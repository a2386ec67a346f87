"""The job lifecycle end to end: HTTP 202 → RQ → worker → audit row, retries, failure, cancel."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select, text

from app import db, runtime
from app.cron.models import CronRun
from app.jobs import enqueue
from app.jobs.models import Job
from app.jobs.publish import push_to_rq
from app.jobs.reconciler import publish_due
from app.jobs.rq_plumbing import JSONJob, queue


def _job(job_id: str) -> Job:
    with db.session_scope() as session:
        return session.get_one(Job, job_id)


def _effects(job_id: str | None = None) -> int:
    with db.engine().connect() as conn:
        sql = "SELECT count(*) FROM probe_effects" + (" WHERE job_id = :j" if job_id else "")
        return int(conn.execute(text(sql), {"j": job_id}).scalar_one())


def _enqueue(kind: str, args: dict | None = None, **kwargs: object) -> str:
    with db.session_scope() as session:
        job, _ = enqueue(session, kind, args or {}, **kwargs)
        return job.id


def test_post_answers_202_and_worker_completes_the_audited_job(client, make_tenant, worker):
    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    response = client.post("/admin/cron/reconcile-jobs/run", headers=tenant.headers())
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert response.headers["Location"] == f"/jobs/{body['job_id']}"
    assert JSONJob.fetch(body["job_id"], connection=runtime.redis()).get_status() == "queued"

    worker()

    job = client.get(f"/jobs/{body['job_id']}", headers=tenant.headers()).get_json()
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert job["progress"] == 100
    assert job["error"] is None
    # The reconciler saw its own job running (lock held) and left it alone.
    assert job["result"]["summary"] == {
        "examined": 1,
        "republished": 0,
        "marked_queued": 0,
        "published_due": 0,
    }
    for stamp in ("created_at", "enqueued_at", "started_at", "finished_at"):
        assert job[stamp] is not None, stamp
    assert job["created_at"] <= job["enqueued_at"] <= job["started_at"] <= job["finished_at"]
    assert job["worker_name"]
    with db.session_scope() as session:
        run = session.scalars(select(CronRun)).one()
        assert (run.task, run.trigger, run.outcome) == ("reconcile-jobs", "api", "succeeded")
        assert job["result"]["cron_run_id"] == run.id


def test_effect_and_success_marker_commit_together(settings, worker):
    job_id = _enqueue("probe.effect", {"note": "once"})
    assert _job(job_id).status == "queued"
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts, job.result) == ("succeeded", 1, {"note": "once", "attempt": 1})
    assert _effects(job_id) == 1


def test_failing_job_is_retried_then_fails_after_last_attempt(settings, worker):
    job_id = _enqueue("probe.effect", {"fail_attempts": 99})

    worker(max_jobs=1)  # first attempt only: an intermediate failure is an attempt, not a state
    job = _job(job_id)
    assert (job.status, job.attempts) == ("queued", 1)
    assert "probe failure on attempt 1" in job.error
    assert job.finished_at is None

    worker()
    job = _job(job_id)
    assert (job.status, job.attempts, job.max_attempts) == ("failed", 3, 3)
    assert job.error == "RuntimeError: probe failure on attempt 3"
    assert job.finished_at is not None
    assert _effects(job_id) == 0  # each failed attempt rolled its effect back
    assert JSONJob.fetch(job_id, connection=runtime.redis()).get_status() == "failed"


def test_job_that_fails_twice_then_succeeds_has_one_effect(settings, worker):
    job_id = _enqueue("probe.effect", {"fail_attempts": 2})
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts, job.error) == ("succeeded", 3, None)
    assert _effects(job_id) == 1


def _make_due(job_id: str) -> None:
    with db.engine().begin() as conn:
        conn.execute(text("UPDATE jobs SET next_attempt_at = now() WHERE id = :id"), {"id": job_id})


def test_retries_wait_out_an_exponential_backoff_in_postgres(settings, worker):
    """A failed attempt waits in the row (`next_attempt_at`), on no Redis queue, so no worker's
    death can freeze it; the pump publishes it when due. Backoff: base, 3·base, 9·base…"""
    runtime.init(replace(settings, job_retry_backoff_seconds=7))
    job_id = _enqueue("probe.effect", {"fail_attempts": 99})
    worker(max_jobs=1)
    job = _job(job_id)
    for attempt, wait in ((1, 7), (2, 21)):
        assert (job.status, job.attempts) == ("queued", attempt)
        waited = (job.next_attempt_at - job.updated_at).total_seconds()
        assert wait <= waited < wait + 1
        assert queue("default", runtime.redis()).count == 0  # not on Redis until due
        assert publish_due() == []
        _make_due(job_id)
        assert publish_due() == [job_id]
        assert _job(job_id).next_attempt_at is None
        worker(max_jobs=1)
        job = _job(job_id)
    assert (job.status, job.attempts, job.next_attempt_at) == ("failed", 3, None)


def test_a_retry_delivered_before_its_time_is_not_run(settings, worker):
    runtime.init(replace(settings, job_retry_backoff_seconds=60))
    job_id = _enqueue("probe.effect", {"fail_attempts": 1})
    worker(max_jobs=1)
    # A stray copy on Redis (a duplicate delivery) must not jump the backoff.
    push_to_rq([_job(job_id)])
    worker()
    assert (_job(job_id).status, _job(job_id).attempts) == ("queued", 1)


def test_a_deferred_job_commits_its_progress_and_keeps_its_attempts(settings, worker):
    job_id = _enqueue("probe.defer", {"times": 2})
    worker(max_jobs=1)
    job = _job(job_id)
    assert (job.status, job.attempts) == ("queued", 0)
    assert job.next_attempt_at is not None and job.error == "deferred 1"
    assert _effects(job_id) == 1  # the first slice's work committed with the deferral
    worker()  # probe.defer defers 0 s, so the pump's publish_due brings it back at once
    job = _job(job_id)
    assert (job.status, job.attempts, job.result) == ("succeeded", 1, {"slices": 3})
    assert _effects(job_id) == 3


def test_permanent_error_fails_at_once_without_retries(settings, worker):
    job_id = _enqueue("probe.permanent")
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.error == "PermanentJobError: input can never work"


def test_same_idempotency_key_twice_yields_one_job(client, make_tenant, worker):
    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    headers = {**tenant.headers(), "Idempotency-Key": "run-reconcile-1"}
    first = client.post("/admin/cron/reconcile-jobs/run", headers=headers)
    second = client.post("/admin/cron/reconcile-jobs/run", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json()["job_id"] == second.get_json()["job_id"]
    third = client.post(
        "/admin/cron/reconcile-jobs/run", headers={**tenant.headers(), "Idempotency-Key": "other"}
    )
    assert third.get_json()["job_id"] != first.get_json()["job_id"]
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2
    worker()
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(CronRun)) == 2


def test_cancel_a_queued_job_means_it_never_runs(client, make_tenant, worker):
    tenant = make_tenant()
    job_id = _enqueue("probe.effect", company_id=tenant.company_id, requested_by=tenant.admin_id)
    response = client.post(f"/jobs/{job_id}/cancel", headers=tenant.headers())
    assert response.status_code == 200
    assert response.get_json()["status"] == "canceled"
    worker()
    assert _job(job_id).status == "canceled"
    assert _effects() == 0
    again = client.post(f"/jobs/{job_id}/cancel", headers=tenant.headers())
    assert again.status_code == 409
    assert "canceled" in again.get_json()["message"]


def test_retry_a_failed_job_gives_it_a_fresh_budget(client, make_tenant, worker):
    tenant = make_tenant()
    job_id = _enqueue(
        "probe.effect", {"fail_attempts": 3}, company_id=tenant.company_id, requested_by=tenant.admin_id
    )
    worker()
    assert _job(job_id).status == "failed"

    response = client.post(f"/jobs/{job_id}/retry", headers=tenant.headers())
    assert response.status_code == 202
    assert response.get_json() == {"job_id": job_id, "status": "queued"}
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts, job.max_attempts) == ("succeeded", 4, 6)
    assert _effects(job_id) == 1
    assert client.post(f"/jobs/{job_id}/retry", headers=tenant.headers()).status_code == 409


def test_job_list_filters_and_paginates(client, make_tenant, worker):
    tenant = make_tenant()
    ids = [
        _enqueue("probe.effect", {"note": str(i)}, company_id=tenant.company_id, requested_by=tenant.admin_id)
        for i in range(5)
    ]
    _enqueue("probe.permanent", company_id=tenant.company_id, requested_by=tenant.admin_id)
    worker()
    page = client.get(
        "/jobs?status=succeeded&kind=probe.effect&page=2&limit=2", headers=tenant.headers()
    ).get_json()
    assert (page["totalCount"], page["pageCount"], page["currentPage"]) == (5, 3, 2)
    assert len(page["data"]) == 2 and {j["id"] for j in page["data"]} <= set(ids)
    failed = client.get("/jobs?status=failed", headers=tenant.headers()).get_json()
    assert [j["kind"] for j in failed["data"]] == ["probe.permanent"]
    bad = client.get("/jobs?status=exploded&limit=500", headers=tenant.headers())
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "VALIDATION_ERROR"
    assert "status" in bad.get_json()["message"] and "limit" in bad.get_json()["message"]


def test_concurrent_requests_with_one_idempotency_key_create_one_job(client, make_tenant):
    import threading

    tenant = make_tenant(super_admin=True)  # runs a platform cron task
    headers = {**tenant.headers(), "Idempotency-Key": "double-click", "Prefer": "respond-async"}
    barrier = threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        local = client.application.test_client()
        barrier.wait()
        response = local.post("/admin/cron/reconcile-jobs/run", headers=headers)
        answers.append((response.status_code, response.get_json()["job_id"]))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in answers} == {202}
    assert len({job_id for _, job_id in answers}) == 1
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
