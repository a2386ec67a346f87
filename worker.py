"""The RQ worker: runs queued jobs with the app's config and services.

    python worker.py [--group interactive|bulk] [--queues q1,q2] [--burst] [--name NAME] [--no-pump]

Jobs run in this process (app.jobs.worker.KernelWorker). Beside the job loop, a thread runs the
kernel pump (due retries, the reconciler once a minute, the worker's heartbeat), so recovery never
waits behind a backlog. Redis or Postgres going away is ridden out with reconnects, never an exit.
SIGTERM is a warm shutdown: the running job finishes before the process exits. If the platform
kills the process anyway, the job's transaction rolls back and the job runs again (the reconciler
sees its advisory lock released), so a redeploy never loses it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app import runtime
from app.config import ConfigError
from app.cron.pump import Pump
from app.jobs.registry import load_task_modules
from app.jobs.worker import GROUPS, WorkerLoop
from app.logging import configure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument(
        "--group", choices=sorted(GROUPS), help="serve a worker group's queues (default: all of RQ_QUEUES)"
    )
    parser.add_argument("--queues", help="comma-separated queue names, in priority order")
    parser.add_argument("--name", help="worker name (default: host.pid)")
    parser.add_argument("--no-pump", action="store_true", help="don't run the kernel pump (tests only)")
    args = parser.parse_args(argv)

    try:
        settings = runtime.init()
    except ConfigError as exc:
        print(f"worker: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level, service="worker")
    if settings.smtp_url is None:  # optional outside dev/test: only jobs that send email need it
        logging.getLogger(__name__).warning("SMTP_URL is not set: jobs that send email fail until it is")
    load_task_modules()

    if args.queues:
        names = [q.strip() for q in args.queues.split(",") if q.strip()]
    else:
        names = list(GROUPS[args.group]) if args.group else list(settings.rq_queues)
    loop = WorkerLoop(settings.redis_url, names, args.name, settings.log_level)
    if not args.no_pump:
        Pump(on_tick=loop.beat).start_thread()
    logging.getLogger(__name__).info("worker starting", extra={"queues": names})
    return loop.serve(burst=args.burst)


if __name__ == "__main__":
    sys.exit(main())
