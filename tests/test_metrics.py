"""/metrics: job and queue state for Prometheus, off unless METRICS_TOKEN is set."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import db, runtime
from app.cron import runner
from app.jobs import enqueue


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def test_metrics_are_off_without_a_token(client, settings):
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_token(client, settings):
    runtime.init(replace(settings, metrics_token="scrape-secret"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_metrics_report_jobs_queues_and_cron_successes(client, settings, worker):
    runtime.init(replace(settings, metrics_token="scrape-secret"))
    with db.session_scope() as session:
        for _ in range(3):
            enqueue(session, "probe.effect")
        enqueue(session, "cron.run", {"task_name": "reconcile-jobs"})
    runner.run_task("prune-jobs", trigger="cli")

    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200
    samples = _samples(response.get_data(as_text=True))
    assert samples[("valorize_jobs_active", (("queue", "default"), ("status", "queued")))] == 3
    assert samples[("valorize_jobs_active", (("queue", "cron"), ("status", "queued")))] == 1
    assert samples[("valorize_rq_queue_length", (("queue", "default"),))] == 3
    assert samples[("valorize_rq_queue_length", (("queue", "cron"),))] == 1
    assert samples[("valorize_redis_up", ())] == 1
    assert samples[("valorize_cron_last_success_timestamp_seconds", (("task", "prune-jobs"),))] > 0

    worker()
    drained = _samples(
        client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).get_data(True)
    )
    assert not any(name == "valorize_jobs_active" for name, _ in drained)
    assert drained[("valorize_rq_queue_length", (("queue", "default"),))] == 0


@pytest.mark.slow
def test_metrics_say_when_redis_is_down(client, settings, private_redis):
    runtime.init(replace(runtime.settings(), metrics_token="scrape-secret"))
    private_redis.stop()
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200
    assert _samples(response.get_data(as_text=True))[("valorize_redis_up", ())] == 0
