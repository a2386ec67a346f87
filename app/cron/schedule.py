"""The one schedule: each task, its cron expression (UTC) and queue, declared next to its code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from app.jobs.registry import load_task_modules

CronFunc = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    cron: str
    func: CronFunc
    queue: str
    description: str


_SCHEDULE: dict[str, ScheduledTask] = {}


def scheduled(
    name: str, *, cron: str, queue: str = "cron", description: str = ""
) -> Callable[[CronFunc], CronFunc]:
    if not croniter.is_valid(cron):
        raise ValueError(f"invalid cron expression for {name}: {cron!r}")

    def register(func: CronFunc) -> CronFunc:
        _SCHEDULE[name] = ScheduledTask(name, cron, func, queue, description or (func.__doc__ or "").strip())
        return func

    return register


def all_tasks() -> list[ScheduledTask]:
    _load()
    return sorted(_SCHEDULE.values(), key=lambda t: t.name)


def get(name: str) -> ScheduledTask:
    _load()
    try:
        return _SCHEDULE[name]
    except KeyError:
        known = ", ".join(sorted(_SCHEDULE))
        raise LookupError(f"unknown task {name!r}; known tasks: {known}") from None


def _load() -> None:
    # Scheduled tasks live in `scheduled` modules here and in the features; the task registry
    # loads them all, so one import path serves the worker and the cron runner alike.
    load_task_modules()
