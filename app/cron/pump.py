"""The kernel pump: the loop that keeps accepted jobs moving with no human step.

Every tick it publishes the retries and deferrals whose `next_attempt_at` has come and the bulk
jobs whose company has a free turn (both normally published sooner, this catches misses); once per
RECONCILE_INTERVAL_SECONDS it runs `reconcile-jobs` (recorded in `cron_runs`), one process at a time
under a Postgres advisory lock; and when Redis comes back empty (its run_id changed) it reconciles
at once without the grace period and tells its owner (the scheduler registers the schedule again).

It runs in every worker (a daemon thread beside the job loop, so no backlog can delay it) and in
`cron.py serve`. Running it in many processes is safe: rows are claimed with SKIP LOCKED and the
reconcile lock admits one process per interval. A dependency outage is logged once when it starts
and once when it ends; the loop never exits on one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from app import db, runtime
from app.cron import runner
from app.cron.models import CronRun
from app.jobs.fairness import release_turns
from app.jobs.reconciler import publish_due

log = logging.getLogger(__name__)

RECONCILE_TASK = "reconcile-jobs"
# Session-level advisory lock: at most one process reconciles at a time.
_RECONCILE_LOCK = 0x7661_6C6F_7263_6E31  # "valorcn1"


class Outage:
    """Logs a dependency failure once when it starts and once when it ends."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self._since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning(f"{self._what}: dependency unavailable, retrying", extra={"error": str(error)})

    def ok(self) -> None:
        if self._since is not None:
            seconds = round(time.monotonic() - self._since, 1)
            self._log.warning(f"{self._what}: recovered", extra={"outage_seconds": seconds})
            self._since = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None


class Pump:
    def __init__(
        self,
        on_redis_restart: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._on_redis_restart = on_redis_restart
        self._on_tick = on_tick
        self._redis_run_id: str | None = None
        self._outage = Outage(log, "job pump")

    def tick(self) -> None:
        try:
            if self._on_tick is not None:
                self._on_tick()
            self._watch_redis()
            publish_due()
            release_turns()
            reconcile_if_due(timedelta(seconds=runtime.settings().reconcile_interval_seconds))
        except (RedisError, DBAPIError, runner.TaskFailed) as exc:
            self._outage.failed(exc)
            return
        self._outage.ok()

    def _watch_redis(self) -> None:
        run_id = str(runtime.redis().info("server")["run_id"])
        restarted = self._redis_run_id is not None and run_id != self._redis_run_id
        self._redis_run_id = run_id
        if restarted:
            log.warning("redis restarted: republishing every active job now")
            if self._on_redis_restart is not None:
                self._on_redis_restart()
            runner.run_task(RECONCILE_TASK, trigger="pump", grace_seconds=0)

    def run_forever(self, stop: threading.Event) -> None:
        interval = runtime.settings().job_pump_interval_seconds
        while not stop.is_set():
            self.tick()
            stop.wait(interval)

    def start_thread(self) -> threading.Event:
        """Run the pump in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        threading.Thread(target=self.run_forever, args=(stop,), name="job-pump", daemon=True).start()
        return stop


def reconcile_if_due(every: timedelta) -> CronRun | None:
    """Run `reconcile-jobs` unless another process is running it or it succeeded within `every`."""
    with db.engine().connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.execute(select(func.pg_try_advisory_lock(_RECONCILE_LOCK))).scalar():
            return None
        try:
            last = conn.execute(
                select(func.max(CronRun.started_at) > func.clock_timestamp() - every).where(
                    CronRun.task == RECONCILE_TASK, CronRun.outcome == "succeeded"
                )
            ).scalar()
            if last:
                return None
            return runner.run_task(RECONCILE_TASK, trigger="pump")
        finally:
            conn.execute(select(func.pg_advisory_unlock(_RECONCILE_LOCK)))
