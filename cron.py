"""Scheduled tasks.

    python cron.py list             the schedule (task, cron expression in UTC, queue)
    python cron.py run <task>       run once now; exit code 0 on success, 1 on failure
    python cron.py serve            run rq-scheduler with the schedule, and the kernel pump

`run` is what a Railway cron service calls; `serve` is for hosts without a cron service (exactly
one scheduler should run, though a second one is harmless: registration is idempotent and
rq-scheduler takes a lock). `serve` rides out Redis and Postgres outages and registers the schedule
again when Redis comes back empty. Every run is recorded in `cron_runs`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from app import runtime
from app.config import ConfigError
from app.cron import runner, schedule
from app.cron.scheduler import register_schedule, run_scheduler
from app.logging import configure

log = logging.getLogger("cron")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cron.py", description="Valorize scheduled tasks")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the schedule")
    run_cmd = commands.add_parser("run", help="run one task now")
    run_cmd.add_argument("task")
    serve_cmd = commands.add_parser("serve", help="run rq-scheduler with the schedule")
    serve_cmd.add_argument("--register-only", action="store_true", help="register the schedule and exit")
    args = parser.parse_args(argv)

    if args.command == "list":
        for task in schedule.all_tasks():
            print(f"{task.name:<20} {task.cron:<15} {task.queue:<10} {task.description}")
        return 0

    try:
        settings = runtime.init()
    except ConfigError as exc:
        print(f"cron: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level, service="cron")

    if args.command == "run":
        try:
            schedule.get(args.task)
        except LookupError as exc:
            print(f"cron: {exc}", file=sys.stderr)
            return 2
        try:
            run = runner.run_task(args.task, trigger="cli")
        except runner.TaskFailed as exc:
            print(f"cron: {exc}", file=sys.stderr)
            return 1
        print(f"{args.task}: succeeded (cron_run {run.id}) {run.summary}")
        return 0

    if args.register_only:
        registered = register_schedule(runtime.redis())
        print(f"cron: registered {', '.join(registered)}")
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("scheduler starting")  # the loop registers the schedule on its first tick
    run_scheduler(runtime.redis(), stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
