"""Task registry: `@task("kind")` turns a function into something `enqueue()` can schedule."""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from app.errors import PermanentJobError

__all__ = [
    "BULK_QUEUES",
    "Deferred",
    "JobCanceled",
    "JobContext",
    "PermanentJobError",
    "TaskSpec",
    "get_task",
    "known_kinds",
    "task",
]


# Bulk queues: each company takes turns there (app/jobs/fairness.py), so one company's backlog
# never queues ahead of another's. Interactive and scheduled queues run in arrival order.
BULK_QUEUES = frozenset({"emails"})


class Deferred(Exception):
    """Raised by `JobContext.defer`: commit the progress so far and run again after `seconds`."""

    def __init__(self, seconds: float, note: str) -> None:
        super().__init__(note)
        self.seconds = max(0.0, float(seconds))
        self.note = note


class JobCanceled(Exception):
    """The row was canceled while the task ran: its effects roll back."""


@dataclass
class JobContext:
    """What a task receives. `session` is the job's transaction: commit nothing yourself unless you
    must; the kernel commits your effects together with the `succeeded` marker."""

    session: Session
    job_id: str
    kind: str
    company_id: str | None
    requested_by: str | None
    attempt: int
    report_progress: Callable[[int], None]

    def progress(self, percent: int) -> None:
        """Publish progress (visible at once on /jobs/<id>). Raises JobCanceled when an operator
        canceled the job meanwhile, so a long task stops at its next progress report."""
        self.report_progress(max(0, min(100, int(percent))))

    def defer(self, seconds: float, note: str) -> NoReturn:
        """Stop here and run again in `seconds` (a rate limit's window): what the task wrote so far
        commits, the attempt is not spent, and no worker waits meanwhile."""
        raise Deferred(seconds, note)


TaskFunc = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    func: TaskFunc
    queue: str
    max_attempts: int | None
    timeout_seconds: int | None


_TASKS: dict[str, TaskSpec] = {}


def task(
    kind: str, *, queue: str = "default", max_attempts: int | None = None, timeout_seconds: int | None = None
) -> Callable[[TaskFunc], TaskFunc]:
    def register(func: TaskFunc) -> TaskFunc:
        existing = _TASKS.get(kind)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"task kind {kind!r} registered twice")
        _TASKS[kind] = TaskSpec(kind, func, queue, max_attempts, timeout_seconds)
        return func

    return register


def get_task(kind: str) -> TaskSpec:
    load_task_modules()
    try:
        return _TASKS[kind]
    except KeyError:
        raise LookupError(f"unknown job kind {kind!r}") from None


def known_kinds() -> list[str]:
    load_task_modules()
    return sorted(_TASKS)


_loaded = False
# Where task and scheduled-task modules live. Named, not imported: the kernel depends on neither
# the scheduling layer nor the features; they register themselves when loaded.
TASK_PACKAGES = ("app.cron", "app.features")


def load_task_modules() -> None:
    """Import every `tasks` and `scheduled` module under TASK_PACKAGES (and any extra listed in
    VALORIZE_EXTRA_TASK_MODULES, which the test-suite uses for its probe tasks)."""
    global _loaded
    if _loaded:
        return
    for package_name in TASK_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if module.name.rsplit(".", 1)[-1] in ("tasks", "scheduled"):
                importlib.import_module(module.name)
    for extra in filter(None, os.environ.get("VALORIZE_EXTRA_TASK_MODULES", "").split(",")):
        importlib.import_module(extra.strip())
    _loaded = True
