"""/metrics that page someone: queue depth and head age, job outcomes and durations, reconciler
republishes, each scheduled task's lag, worker heartbeats; and the runbook's alert rules use only
metrics that exist."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import yaml
from prometheus_client.parser import text_string_to_metric_families
from rq import Worker
from rq.utils import utcformat
from sqlalchemy import text

from app import db, runtime
from app.jobs import enqueue
from app.jobs.rq_plumbing import JSONJob, queue
from tests.conftest import ROOT

TOKEN = {"Authorization": "Bearer scrape-secret"}


def _scrape(client) -> tuple[set[str], dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    response = client.get("/metrics", headers=TOKEN)
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.get_data(as_text=True)))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples
    }
    return {family.name for family in families}, samples


def _cron_run(task: str, ago: timedelta, summary: str = "{}", outcome: str = "succeeded") -> None:
    with db.engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cron_runs (task, trigger, outcome, summary, started_at, finished_at)"
                " VALUES (:task, 'cli', :outcome, CAST(:summary AS jsonb), now() - :ago, now() - :ago)"
            ),
            {"task": task, "outcome": outcome, "summary": summary, "ago": ago},
        )


def _populate(worker) -> str:  # type: ignore[no-untyped-def]
    with db.session_scope() as session:
        for _ in range(2):
            enqueue(session, "probe.effect")
        enqueue(session, "probe.permanent")
    worker()  # two succeed, one fails at once
    with db.session_scope() as session:
        waiting = enqueue(session, "probe.effect")[0].id
    connection = runtime.redis()
    connection.hset(JSONJob.key_for(waiting), "enqueued_at", utcformat(db.utcnow() - timedelta(minutes=10)))
    listener = Worker([queue("default", connection)], connection=connection, job_class=JSONJob, name="w-1")
    listener.register_birth()
    listener.heartbeat()
    _cron_run("reconcile-jobs", timedelta(minutes=5), '{"republished": 2, "examined": 3}')
    _cron_run("reconcile-jobs", timedelta(minutes=20), '{"republished": 1, "examined": 1}')
    _cron_run("reconcile-jobs", timedelta(hours=3), '{"republished": 50, "examined": 50}')  # out of the hour
    _cron_run("weekly-reset", timedelta(hours=3))  # hourly task: its next runs were missed
    _cron_run("prune-jobs", timedelta(minutes=1))
    return waiting


def test_metrics_that_page_someone(client, settings, worker) -> None:
    runtime.init(replace(settings, metrics_token="scrape-secret"))
    _populate(worker)
    _, samples = _scrape(client)

    assert samples[("valorize_rq_queue_length", (("queue", "default"),))] == 1
    assert samples[("valorize_rq_queue_oldest_job_age_seconds", (("queue", "default"),))] >= 600
    assert samples[("valorize_rq_queue_oldest_job_age_seconds", (("queue", "emails"),))] == 0
    assert samples[("valorize_jobs_finished", (("kind", "probe.effect"), ("outcome", "succeeded")))] == 2
    assert samples[("valorize_jobs_finished", (("kind", "probe.permanent"), ("outcome", "failed")))] == 1
    effect = (("kind", "probe.effect"),)
    assert samples[("valorize_job_duration_seconds_bucket", (*effect, ("le", "+Inf")))] == 2
    assert samples[("valorize_job_duration_seconds_gcount", effect)] == 2
    assert samples[("valorize_job_duration_seconds_bucket", (*effect, ("le", "1800.0")))] == 2
    assert samples[("valorize_reconciler_republished_last_hour", ())] == 3
    weekly_lag = samples[("valorize_cron_lag_seconds", (("task", "weekly-reset"),))]
    assert 2 * 3600 <= weekly_lag <= 3 * 3600  # overdue since the first full hour after its success
    assert samples[("valorize_cron_lag_seconds", (("task", "prune-jobs"),))] == 0
    assert (
        samples[("valorize_cron_lag_seconds", (("task", "expire-coins"),))] >= 0
    )  # counted from the first run
    assert samples[("valorize_rq_workers", ())] == 1
    assert samples[("valorize_rq_queue_workers", (("queue", "default"),))] == 1
    assert samples[("valorize_rq_queue_workers", (("queue", "emails"),))] == 0
    assert 0 <= samples[("valorize_rq_worker_heartbeat_age_seconds", (("worker", "w-1"),))] < 300


def _alert_rules() -> list[dict[str, str]]:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", runbook, flags=re.S)
    rules = [rule for block in blocks for group in yaml.safe_load(block)["groups"] for rule in group["rules"]]
    assert len(rules) >= 8
    return rules


def test_every_metric_the_runbook_alerts_on_is_exported(client, settings, worker) -> None:
    runtime.init(replace(settings, metrics_token="scrape-secret"))
    _populate(worker)
    exported, samples = _scrape(client)
    sample_names = {name for name, _ in samples}
    for rule in _alert_rules():
        assert rule["alert"] and rule["annotations"]["summary"] and rule["labels"]["severity"]
        names = set(re.findall(r"\bvalorize_[a-z0-9_]+", rule["expr"]))
        assert names, rule["alert"]
        for name in names:
            assert name in sample_names or name in exported, f"{rule['alert']}: {name} is not exported"
