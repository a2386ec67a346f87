"""Nothing lost: killed workers, a flushed or absent Redis, and racing reconcilers."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import text

from app import db, runtime
from app.jobs import enqueue
from app.jobs.models import Job
from app.jobs.reconciler import reconcile
from app.jobs.rq_plumbing import queue
from tests.conftest import kill_tree, start_worker_process, wait_for

pytestmark = pytest.mark.slow  # every test here starts a Redis or Postgres server, or a worker


def _job(job_id: str) -> Job:
    with db.session_scope() as session:
        return session.get_one(Job, job_id)


def _effects_by_job() -> Counter[str]:
    with db.engine().connect() as conn:
        return Counter(conn.execute(text("SELECT job_id FROM probe_effects")).scalars())


def _enqueue_many(count: int, **args: object) -> list[str]:
    with db.session_scope() as session:
        return [enqueue(session, "probe.effect", {"note": str(i), **args})[0].id for i in range(count)]


def _enqueue_unpublished(count: int) -> list[str]:
    """Rows committed but never pushed to Redis (as when Redis was down at commit time)."""
    session = db.new_session()
    try:
        ids = [enqueue(session, "probe.effect", {"note": str(i)})[0].id for i in range(count)]
        session.info.clear()  # drop the after-commit publication
        session.commit()
    finally:
        session.close()
    return ids


def test_kill_9_of_the_whole_worker_mid_job_reruns_it_with_a_single_effect(settings, private_redis, worker):
    """Worker and work-horse die mid-job (container killed): the transaction rolls back, the
    reconciler sees no runner holds the job, republishes it, and the re-run commits the only effect."""
    [job_id] = _enqueue_many(1, seconds=30, slow_attempts=1)
    process = start_worker_process("--no-pump", REDIS_URL=private_redis.url)
    try:
        wait_for(lambda: _job(job_id).progress >= 10, timeout=60)
        running = _job(job_id)
        assert (running.status, running.attempts) == ("started", 1)
    finally:
        kill_tree(process)

    assert _effects_by_job()[job_id] == 0  # the killed run's effect never committed
    # Postgres sees the dead connection and frees the runner's lock: now the job is orphaned.
    assert wait_for(lambda: reconcile().republished, timeout=30) == [job_id]
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert _effects_by_job()[job_id] == 1


def test_a_slow_job_is_never_mistaken_for_a_dead_one(settings, private_redis):
    [job_id] = _enqueue_many(1, seconds=6)
    process = start_worker_process("--no-pump", REDIS_URL=private_redis.url)
    try:
        wait_for(lambda: _job(job_id).status == "started", timeout=60)
        # Even with its RQ job gone (Redis flushed mid-run), a live runner keeps its job.
        runtime.redis().flushall()
        report = reconcile()
        assert report.examined == 1 and report.republished == []
        wait_for(lambda: _job(job_id).status == "succeeded", timeout=60)
    finally:
        kill_tree(process)
    assert _effects_by_job()[job_id] == 1


def test_flushall_after_accepting_jobs_loses_none(settings, private_redis, worker):
    ids = _enqueue_many(25)
    assert queue("default", runtime.redis()).count == 25
    runtime.redis().flushall()
    assert queue("default", runtime.redis()).count == 0

    report = reconcile()
    assert sorted(report.republished) == sorted(ids)
    worker()
    assert {_job(i).status for i in ids} == {"succeeded"}
    assert _effects_by_job() == Counter({i: 1 for i in ids})


def test_redis_restart_loses_queue_and_reconciler_restores_it(settings, private_redis, worker):
    ids = _enqueue_many(10)
    private_redis.stop()  # this server keeps nothing on disk: a restart is an empty Redis
    private_redis.start()
    assert queue("default", runtime.redis()).count == 0
    assert sorted(reconcile().republished) == sorted(ids)
    worker()
    assert _effects_by_job() == Counter({i: 1 for i in ids})


def test_enqueue_while_redis_is_down_keeps_the_job_until_reconciled(settings, private_redis, worker):
    private_redis.stop()
    with db.session_scope() as session:  # the request still succeeds: the row is the promise
        job, _ = enqueue(session, "probe.effect", {"note": "while down"})
    assert _job(job.id).status == "queued"  # handed to the queue layer; not on Redis yet
    with pytest.raises(Exception):  # noqa: B017 - the reconciler itself needs Redis
        reconcile()
    private_redis.start()
    assert reconcile().republished == [job.id]
    assert _job(job.id).status == "queued"
    worker()
    assert _job(job.id).status == "succeeded"


def test_two_reconcilers_at_once_never_enqueue_a_job_twice(settings, private_redis, worker):
    ids = _enqueue_unpublished(200)
    barrier = threading.Barrier(2)
    reports: list[list[str]] = []

    def run() -> None:
        barrier.wait()
        reports.append(reconcile(batch_size=50).republished + reconcile(batch_size=500).republished)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    published = reports[0] + reports[1]
    assert sorted(published) == sorted(ids)  # every job once, none twice, across both
    queued = queue("default", runtime.redis()).get_job_ids()
    assert len(queued) == len(set(queued)) == 200
    worker()
    assert _effects_by_job() == Counter({i: 1 for i in ids})


def test_postgres_restart_mid_job_loses_nothing_and_duplicates_nothing(
    settings, private_postgres, private_redis
):
    """Postgres goes away under a running job (and under the worker's pool): the attempt's
    transaction is gone, RQ retries or the reconciler republishes, and every job ends with one effect."""
    ids = _enqueue_many(4, seconds=4, slow_attempts=1)
    process = start_worker_process(DATABASE_URL=private_postgres.admin_url, REDIS_URL=private_redis.url)
    try:
        wait_for(lambda: _job(ids[0]).progress >= 10, timeout=60)
        private_postgres.stop()
        time.sleep(1)  # the worker hits the outage (its job and its next ones fail to connect)
        private_postgres.start()
        # No reconcile from the test: the worker's own pump and connection retries recover.
        wait_for(lambda: {_job(i).status for i in ids} == {"succeeded"}, timeout=120, interval=0.5)
    finally:
        kill_tree(process)
    assert _effects_by_job() == Counter({i: 1 for i in ids})


@pytest.mark.slow
def test_canceling_a_running_job_stops_it_at_its_next_progress_and_rolls_it_back(
    settings, private_redis, client, make_tenant
):
    """Jobs run in the worker process (no work-horse to kill): cancel is cooperative. The job
    stops at its next progress report, its transaction rolls back, and the worker goes on."""
    tenant = make_tenant()
    with db.session_scope() as session:
        job, _ = enqueue(session, "probe.effect", {"seconds": 20}, company_id=tenant.company_id)
    process = start_worker_process("--no-pump", REDIS_URL=private_redis.url)
    try:
        wait_for(lambda: _job(job.id).progress >= 10, timeout=60)
        answer = client.post(f"/jobs/{job.id}/cancel", headers=tenant.headers())
        assert answer.status_code == 200, answer.get_json()
        [after] = _enqueue_many(1)  # the worker is free again once the canceled job stopped
        wait_for(lambda: _job(after).status == "succeeded", timeout=60)
    finally:
        kill_tree(process)
    canceled = _job(job.id)
    assert canceled.status == "canceled"
    assert canceled.progress < 100
    assert _effects_by_job()[job.id] == 0  # its effect rolled back
