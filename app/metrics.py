"""/metrics for Prometheus: job, queue, worker and schedule state read at scrape time.

Computed per scrape from Postgres and Redis, so every web replica and gunicorn worker reports the
same truth without prometheus-client's multiprocess mode (workers and cron runs have no HTTP port
to scrape). Every query is bounded: active jobs through their partial index, finished jobs through
`ix_jobs_finished` over the last `WINDOW_SECONDS`, cron history through (task, started_at), Redis
with O(queues + workers) calls. Off unless METRICS_TOKEN is set; scrapers send it as a bearer token.
docs/runbook.md has the alert rules that use these metrics.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.registry import FailedJobRegistry
from rq.utils import str_to_date
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app import db, runtime
from app.cron.history import schedule_status
from app.errors import NotFound, Unauthenticated
from app.jobs.rq_plumbing import JSONJob, queue

blp = Blueprint("metrics", __name__)

WINDOW_SECONDS = 900  # jobs finished in the last 15 minutes: outcomes and durations
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
RECONCILE_TASK = "reconcile-jobs"


def _jobs(conn: Connection) -> Iterator[Metric]:
    active = GaugeMetricFamily("valorize_jobs_active", "Jobs not yet finished", labels=["status", "queue"])
    oldest = GaugeMetricFamily(
        "valorize_jobs_oldest_active_age_seconds", "Age of the oldest unfinished job", labels=["status"]
    )
    rows = conn.execute(
        text(
            "SELECT status, queue, count(*), extract(epoch FROM now() - min(created_at))"
            " FROM jobs WHERE status IN ('pending','queued','started') GROUP BY status, queue"
        )
    ).all()
    ages: dict[str, float] = {}
    for status, queue_name, count, age in rows:
        active.add_metric([status, queue_name], count)
        ages[status] = max(ages.get(status, 0.0), float(age))
    for status, age in ages.items():
        oldest.add_metric([status], age)
    yield active
    yield oldest

    finished = GaugeMetricFamily(
        "valorize_jobs_finished",
        f"Jobs that finished in the last {WINDOW_SECONDS // 60} minutes, by kind and outcome",
        labels=["kind", "outcome"],
    )
    durations = GaugeHistogramMetricFamily(
        "valorize_job_duration_seconds",
        f"Run time (started_at to finished_at) of jobs finished in the last {WINDOW_SECONDS // 60} minutes",
        labels=["kind"],
    )
    rows = conn.execute(
        text(
            "SELECT kind, status, width_bucket(d, CAST(:bounds AS double precision[])), count(*), sum(d)"
            " FROM (SELECT kind, status, extract(epoch FROM finished_at - started_at)::float8 AS d FROM jobs"
            "       WHERE finished_at >= now() - make_interval(secs => :window)) AS recent"
            " GROUP BY 1, 2, 3"
        ),
        {"bounds": list(DURATION_BUCKETS), "window": WINDOW_SECONDS},
    ).all()
    outcomes: dict[tuple[str, str], int] = defaultdict(int)
    buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(DURATION_BUCKETS) + 1))
    sums: dict[str, float] = defaultdict(float)
    for kind, status, bucket, count, total in rows:
        outcomes[(kind, status)] += count
        if bucket is not None:  # never started (canceled while queued): no duration
            buckets[kind][bucket] += count
            sums[kind] += float(total or 0)
    for (kind, outcome), count in sorted(outcomes.items()):
        finished.add_metric([kind, outcome], count)
    for kind, counts in sorted(buckets.items()):
        cumulative, running = [], 0
        for bound, count in zip((*map(floatToGoString, DURATION_BUCKETS), "+Inf"), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        durations.add_metric([kind], cumulative, sums[kind])
    yield finished
    yield durations


def _schedule(conn: Connection, now: datetime) -> Iterator[Metric]:
    last_ok = GaugeMetricFamily(
        "valorize_cron_last_success_timestamp_seconds",
        "When each scheduled task last succeeded",
        labels=["task"],
    )
    lag = GaugeMetricFamily(
        "valorize_cron_lag_seconds",
        "How long each scheduled task has been due without succeeding (0 while on schedule)",
        labels=["task"],
    )
    for status in schedule_status(conn, now):
        name = status.task.name
        if status.history.last_success_at is not None:
            last_ok.add_metric([name], status.history.last_success_at.timestamp())
        if status.overdue_seconds is not None:
            lag.add_metric([name], status.overdue_seconds)
    yield last_ok
    yield lag

    republished = GaugeMetricFamily(
        "valorize_reconciler_republished_last_hour",
        "Jobs the reconciler re-enqueued in the last hour (lost by Redis or never enqueued)",
    )
    total = conn.execute(
        text(
            "SELECT coalesce(sum((summary->>'republished')::int), 0) FROM cron_runs"
            " WHERE task = :task AND started_at >= now() - interval '1 hour' AND outcome = 'succeeded'"
        ),
        {"task": RECONCILE_TASK},
    ).scalar_one()
    republished.add_metric([], float(total))
    yield republished


def _redis(connection: Redis, now: datetime) -> list[Metric]:
    depth = GaugeMetricFamily("valorize_rq_queue_length", "Jobs waiting on each RQ queue", labels=["queue"])
    oldest = GaugeMetricFamily(
        "valorize_rq_queue_oldest_job_age_seconds",
        "How long the job at the head of each RQ queue has waited (0 when empty)",
        labels=["queue"],
    )
    failed = GaugeMetricFamily("valorize_rq_failed_jobs", "RQ failed-job registry size", labels=["queue"])
    count = GaugeMetricFamily("valorize_rq_workers", "Registered RQ workers")
    listening = GaugeMetricFamily(
        "valorize_rq_queue_workers", "Registered RQ workers listening on each queue", labels=["queue"]
    )
    heartbeat = GaugeMetricFamily(
        "valorize_rq_worker_heartbeat_age_seconds",
        "Time since each RQ worker's last heartbeat",
        labels=["worker"],
    )
    names = set(runtime.settings().rq_queues) | {q.name for q in Queue.all(connection=connection)}
    per_queue: dict[str, int] = dict.fromkeys(names, 0)
    workers = Worker.all(connection=connection)
    for worker in workers:
        for name in worker.queue_names():
            per_queue[name] = per_queue.get(name, 0) + 1
        if worker.last_heartbeat is not None:
            heartbeat.add_metric([worker.name], max(0.0, (now - worker.last_heartbeat).total_seconds()))
    for name in sorted(per_queue):
        rq_queue = queue(name, connection)
        depth.add_metric([name], rq_queue.count)
        failed.add_metric([name], FailedJobRegistry(queue=rq_queue).count)
        listening.add_metric([name], per_queue[name])
        oldest.add_metric([name], _head_age(connection, rq_queue, now))
    count.add_metric([], len(workers))
    return [depth, oldest, failed, count, listening, heartbeat]


def _head_age(connection: Redis, rq_queue: Queue, now: datetime) -> float:
    head = rq_queue.get_job_ids(0, 1)
    if not head:
        return 0.0
    enqueued = connection.hget(JSONJob.key_for(head[0]), "enqueued_at")
    return max(0.0, (now - str_to_date(enqueued)).total_seconds()) if enqueued else 0.0


class _StateCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = db.utcnow()
        with db.engine().connect() as conn:
            yield from _jobs(conn)
            yield from _schedule(conn, now)
        up = GaugeMetricFamily("valorize_redis_up", "Redis answered this scrape")
        try:
            families = _redis(runtime.redis(), now)
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


_registry = CollectorRegistry(auto_describe=False)
_registry.register(_StateCollector())


@blp.get("/metrics")
def metrics() -> Response:
    expected = runtime.settings().metrics_token
    if not expected:
        raise NotFound("Metrics are disabled (set METRICS_TOKEN)")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthenticated("Metrics need the METRICS_TOKEN bearer token")
    return Response(generate_latest(_registry), mimetype="text/plain; version=0.0.4")
