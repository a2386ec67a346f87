"""/metrics for Prometheus: job and queue state read at scrape time.

Computed per scrape from Postgres (active jobs only, served by the partial index) and Redis, so
every web replica and gunicorn worker reports the same truth without prometheus-client's
multiprocess mode. Off unless METRICS_TOKEN is set; scrapers send it as a bearer token.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Worker
from rq.registry import FailedJobRegistry
from sqlalchemy import text

from app import db, runtime
from app.api import ApiError
from app.jobs.rq_plumbing import queue

blp = Blueprint("metrics", __name__)


class _StateCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "valorize_jobs_active", "Jobs not yet finished", labels=["status", "queue"]
        )
        oldest = GaugeMetricFamily(
            "valorize_jobs_oldest_active_age_seconds", "Age of the oldest unfinished job", labels=["status"]
        )
        last_ok = GaugeMetricFamily(
            "valorize_cron_last_success_timestamp_seconds",
            "When each scheduled task last succeeded",
            labels=["task"],
        )
        with db.engine().connect() as conn:
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
            for task, finished in conn.execute(
                text(
                    "SELECT task, extract(epoch FROM max(finished_at)) FROM cron_runs"
                    " WHERE outcome = 'succeeded' GROUP BY task"
                )
            ):
                last_ok.add_metric([task], float(finished))
        yield active
        yield oldest
        yield last_ok

        up = GaugeMetricFamily("valorize_redis_up", "Redis answered this scrape")
        depth = GaugeMetricFamily(
            "valorize_rq_queue_length", "Jobs waiting on each RQ queue", labels=["queue"]
        )
        failed = GaugeMetricFamily("valorize_rq_failed_jobs", "RQ failed-job registry size", labels=["queue"])
        workers = GaugeMetricFamily("valorize_rq_workers", "Registered RQ workers")
        connection = runtime.redis()
        try:
            for name in runtime.settings().rq_queues:
                rq_queue = queue(name, connection)
                depth.add_metric([name], rq_queue.count)
                failed.add_metric([name], FailedJobRegistry(queue=rq_queue).count)
            workers.add_metric([], Worker.count(connection=connection))
            up.add_metric([], 1)
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        yield up
        yield depth
        yield failed
        yield workers


_registry = CollectorRegistry(auto_describe=False)
_registry.register(_StateCollector())


@blp.get("/metrics")
def metrics() -> Response:
    expected = runtime.settings().metrics_token
    if not expected:
        raise ApiError(404, "Metrics are disabled (set METRICS_TOKEN)")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "Metrics need the METRICS_TOKEN bearer token")
    return Response(generate_latest(_registry), mimetype="text/plain; version=0.0.4")
