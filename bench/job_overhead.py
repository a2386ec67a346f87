"""What the audited job kernel costs over bare RQ, measured in one run on the same servers.

    python scripts/with_services.py --mode test -- .venv/bin/python bench/job_overhead.py [--jobs 2000]

Three comparisons, each against its baseline in the same process:
1. enqueue, one job per transaction (an API request): bare `Queue.enqueue` vs `enqueue()` + commit
   (row insert, publish after commit, status update);
2. enqueue, 100 jobs per transaction (a fan-out): bare RQ pipeline vs one transaction of `enqueue()`;
3. execution: a burst worker draining N no-op jobs, bare RQ function vs our runner (advisory lock,
   started/succeeded updates in Postgres).
Prints jobs/s for each side and the ratio (ours / bare; below 1.0 means slower).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

from alembic.config import Config
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alembic import command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("APP_ENV", "test")
os.environ["VALORIZE_EXTRA_TASK_MODULES"] = "bench.noop_task"

from app import db, runtime  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.jobs import enqueue  # noqa: E402
from app.jobs.rq_plumbing import JSONJob, queue  # noqa: E402


def timed(label: str, count: int, action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(f"  {label:<44} {count:>6} jobs in {elapsed:6.2f}s = {rate:8.0f} jobs/s")
    return rate


def drain(queue_name: str) -> None:
    connection = runtime.redis()
    SimpleWorker(
        [queue(queue_name, connection)], connection=connection, job_class=JSONJob, serializer=JSONSerializer
    ).work(burst=True, logging_level="ERROR", with_scheduler=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    n = args.jobs

    admin_url = make_url(os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    admin_url = admin_url.set(drivername="postgresql+psycopg2")
    redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    name = f"valorize_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes.update(database_url=database_url, configure_logger=False)
        command.upgrade(config, "head")
        settings = load_settings(
            {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": f"{redis_base}/14",
                "LOG_LEVEL": "ERROR",
            }
        )
        runtime.init(settings)
        redis = runtime.redis()
        if redis.dbsize():
            sys.exit("bench: Redis db 14 is not empty; refusing to flush someone else's data")
        run(n)
        redis.flushdb()
    finally:
        db.engine().dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(n: int) -> None:
    bare_q = queue("bench-bare", runtime.redis())
    ours_queue = "bench-ours"

    print(f"1. enqueue, one job per transaction ({n} jobs)")

    def bare_single() -> None:
        for i in range(n):
            bare_q.enqueue("bench.noop_task.bare_noop", i)

    def ours_single() -> None:
        for i in range(n):
            with db.session_scope() as session:
                enqueue(session, "bench.noop", {"i": i})

    bare = timed("bare RQ Queue.enqueue", n, bare_single)
    ours = timed("enqueue() + commit (row, publish, queued)", n, ours_single)
    print(f"  ratio ours/bare: {ours / bare:.2f}")

    print("2. execution by a burst worker (same jobs)")
    bare_exec = timed("bare RQ, no-op function", n, lambda: drain("bench-bare"))
    ours_exec = timed("runner: lock, started, task, succeeded", n, lambda: drain(ours_queue))
    print(f"  ratio ours/bare: {ours_exec / bare_exec:.2f}")

    batch = 100
    print(f"3. enqueue, {batch} jobs per transaction ({n} jobs)")

    def bare_batch() -> None:
        for start in range(0, n, batch):
            with runtime.redis().pipeline() as pipe:
                for i in range(start, start + batch):
                    bare_q.enqueue("bench.noop_task.bare_noop", i, pipeline=pipe)
                pipe.execute()

    def ours_batch() -> None:
        for start in range(0, n, batch):
            with db.session_scope() as session:
                for i in range(start, start + batch):
                    enqueue(session, "bench.noop", {"i": i})

    bare_b = timed("bare RQ, pipelined", n, bare_batch)
    ours_b = timed("enqueue() x100 + one commit", n, ours_batch)
    print(f"  ratio ours/bare: {ours_b / bare_b:.2f}")


if __name__ == "__main__":
    main()
