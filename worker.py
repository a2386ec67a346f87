"""The RQ worker: runs queued jobs with the app's config and services.

    python worker.py [--burst] [--queues default,emails] [--name NAME]

SIGTERM is a warm shutdown: the running job finishes before the process exits. If the platform
kills the process anyway, the job's transaction rolls back and the job runs again (RQ's abandoned-
job handling or the reconciler), so a redeploy never loses it.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from rq import Worker
from rq.serializers import JSONSerializer

from app import runtime
from app.config import ConfigError
from app.jobs.registry import load_task_modules
from app.jobs.rq_plumbing import JSONJob, queue
from app.logging import bind, configure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--queues", help="comma-separated queue names (default: RQ_QUEUES)")
    parser.add_argument("--name", help="worker name (default: host.pid)")
    parser.add_argument(
        "--no-scheduler", action="store_true", help="don't run RQ's scheduler (delayed retries)"
    )
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

    connection = runtime.redis()
    names = [q.strip() for q in args.queues.split(",")] if args.queues else list(settings.rq_queues)
    worker = Worker(
        [queue(name, connection) for name in names],
        connection=connection,
        job_class=JSONJob,
        serializer=JSONSerializer,
        name=args.name or f"{socket.gethostname()}.{os.getpid()}",
    )
    bind(worker=worker.name)
    logging.getLogger(__name__).info("worker starting", extra={"queues": names})
    # RQ's scheduler moves retries waiting out their backoff back onto the queues.
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler, logging_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
