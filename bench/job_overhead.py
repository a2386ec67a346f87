"""What the audited job kernel costs over bare RQ, each side measured with the worker class it uses.

    bench/run job_overhead

1. execution of no-op jobs by one burst worker: bare RQ's best class (`SimpleWorker`; the forking
   `Worker` is shown too) vs the class we ship (`KernelWorker`: SimpleWorker + lock, started and
   succeeded rows in Postgres);
2. enqueue → start latency with an idle worker process (bare `SimpleWorker` vs `worker.py`), p50;
3. enqueue, one job per transaction (what an API request does), and 100 per transaction (fan-out).
Interleaved pairs; medians; ours ÷ baseline in throughput.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from common import ROOT, Row, bench_environment, compare, print_rows, timed

os.environ["VALORIZE_EXTRA_TASK_MODULES"] = "bench.noop_task"

from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from app import db, runtime
from app.jobs import enqueue, service
from app.jobs.rq_plumbing import JSONJob, queue, worker_redis
from app.jobs.worker import build_worker

N = int(os.environ.get("BENCH_JOBS", "1000"))
PAIRS = 3
LATENCY_SAMPLES = 60


def _bare_queue(name: str) -> Queue:
    return queue(name, runtime.redis())


def _fill_bare(name: str, count: int) -> None:
    datas = [Queue.prepare_data("bench.noop_task.bare_noop", args=[i], result_ttl=3600) for i in range(count)]
    with runtime.redis().pipeline() as pipe:
        _bare_queue(name).enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def _fill_ours(count: int) -> None:
    with db.session_scope() as session:
        for i in range(count):
            enqueue(session, "bench.noop", {"i": i})


def _drain_bare(name: str, worker_class: type[Worker]) -> None:
    connection = worker_redis(runtime.settings().redis_url)
    worker_class(
        [queue(name, connection)], connection=connection, job_class=JSONJob, serializer=JSONSerializer
    ).work(burst=True, logging_level="ERROR", with_scheduler=False)


def _drain_ours() -> None:
    build_worker(["bench-ours"], worker_redis(runtime.settings().redis_url), f"bench-{time.time_ns()}").work(
        burst=True, logging_level="ERROR", with_scheduler=False
    )


def execution() -> list[Row]:
    simple_rates: list[float] = []
    fork_rates: list[float] = []
    our_rates: list[float] = []
    for index in range(PAIRS):
        sides = [("simple", simple_rates), ("ours", our_rates)]
        for side, rates in sides if index % 2 == 0 else reversed(sides):
            if side == "simple":
                _fill_bare("bench-bare", N)
                rates.append(N / timed(lambda: _drain_bare("bench-bare", SimpleWorker)))
            else:
                _fill_ours(N)
                rates.append(N / timed(_drain_ours))
    fork_n = max(50, N // 10)  # a fork per job: slow enough that fewer jobs tell
    _fill_bare("bench-fork", fork_n)
    fork_rates.append(fork_n / timed(lambda: _drain_bare("bench-fork", Worker)))
    return [
        Row(
            f"no-op jobs, one burst worker ({N})",
            "jobs/s",
            "bare RQ `SimpleWorker`",
            simple_rates,
            "`KernelWorker` (shipped)",
            our_rates,
            "≥ 1.0x",
        ),
        Row(
            "same, against bare forking `Worker`",
            "jobs/s",
            "bare RQ `Worker` (fork per job)",
            fork_rates,
            "`KernelWorker` (shipped)",
            our_rates,
            "",
        ),
    ]


_STAMP_WORKER = """
import sys
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
sys.path.insert(0, {root!r})
from app.jobs.rq_plumbing import JSONJob, queue
connection = Redis.from_url({url!r})
SimpleWorker([queue("bench-latency-bare", connection)], connection=connection, job_class=JSONJob,
             serializer=JSONSerializer).work(logging_level="ERROR", with_scheduler=False)
"""


def _await_stamp(key: str) -> float:
    redis = runtime.redis()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        value = redis.get(key)
        if value is not None:
            return float(value)
        time.sleep(0.0005)
    raise SystemExit("bench: a latency probe never started")


def latency() -> tuple[list[float], list[float]]:
    """ms from the moment the job is handed to Redis to its first line, with idle worker processes:
    bare `Queue.enqueue` vs our publish after commit (the commit itself is the enqueue cost,
    measured in the rows above)."""
    handed: list[float] = []
    real_push = service.push_to_rq

    def stamped_push(rows: Any, **kwargs: Any) -> list[str]:
        handed.append(time.time())
        return real_push(rows, **kwargs)

    service.push_to_rq = stamped_push  # type: ignore[assignment]
    settings = runtime.settings()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "ERROR"}
    bare = subprocess.Popen(
        [sys.executable, "-c", _STAMP_WORKER.format(root=str(ROOT), url=settings.redis_url)], env=env
    )
    ours = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--queues", "bench-latency"], env=env, cwd=ROOT
    )
    bare_ms: list[float] = []
    our_ms: list[float] = []
    try:
        time.sleep(3)  # both idle and blocked on their queues
        for i in range(LATENCY_SAMPLES):
            key = f"bench:stamp:{i}"
            if i % 2:
                started = time.time()
                _bare_queue("bench-latency-bare").enqueue("bench.noop_task.bare_stamp", key)
                bare_ms.append((_await_stamp(key) - started) * 1000)
            else:
                with db.session_scope() as session:
                    enqueue(session, "bench.stamp", {"key": key})
                our_ms.append((_await_stamp(key) - handed[-1]) * 1000)
            time.sleep(0.05)
    finally:
        service.push_to_rq = real_push  # type: ignore[assignment]
        for process in (bare, ours):
            process.terminate()
            process.wait(timeout=30)
    return bare_ms, our_ms


def enqueueing() -> list[Row]:
    bare_q = _bare_queue("bench-enqueue-bare")

    def bare_single() -> None:
        for i in range(N):
            bare_q.enqueue("bench.noop_task.bare_noop", i)

    def ours_single() -> None:
        for i in range(N):
            with db.session_scope() as session:
                enqueue(session, "bench.noop", {"i": i})

    def bare_batch() -> None:
        for start in range(0, N, 100):
            with runtime.redis().pipeline() as pipe:
                for i in range(start, start + 100):
                    bare_q.enqueue("bench.noop_task.bare_noop", i, pipeline=pipe)
                pipe.execute()

    def ours_batch() -> None:
        for start in range(0, N, 100):
            with db.session_scope() as session:
                for i in range(start, start + 100):
                    enqueue(session, "bench.noop", {"i": i})

    single = compare(PAIRS, N, bare_single, ours_single)
    batch = compare(PAIRS, N, bare_batch, ours_batch)
    return [
        Row(
            "enqueue, one job per transaction",
            "jobs/s",
            "`Queue.enqueue`",
            single[0],
            "`enqueue()` + commit",
            single[1],
        ),
        Row(
            "enqueue, 100 per transaction",
            "jobs/s",
            "pipelined `Queue.enqueue`",
            batch[0],
            "`enqueue()` x100 + commit",
            batch[1],
        ),
    ]


def main() -> None:
    with bench_environment():
        rows = execution()
        bare_ms, our_ms = latency()
        rows += enqueueing()
    print_rows("Job kernel vs bare RQ", rows)
    bare_p50, our_p50 = statistics.median(bare_ms), statistics.median(our_ms)
    print(
        f"\nenqueue → start, idle worker process (p50 of {LATENCY_SAMPLES // 2} each): "
        f"bare SimpleWorker {bare_p50:.1f} ms, worker.py {our_p50:.1f} ms (aim: ≤ bare + 2 ms)"
    )


if __name__ == "__main__":
    main()
