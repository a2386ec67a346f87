"""The one schedule in code and the Railway cron services must agree (issue 6: one schedule)."""

from __future__ import annotations

import tomllib

from croniter import croniter

from app.cron import schedule
from tests.conftest import ROOT

RAILWAY_MINIMUM_MINUTES = 5  # Railway rejects cron services that run more often


def _every_minutes(expression: str) -> float:
    times = croniter(expression, 0)
    first, second = times.get_next(float), times.get_next(float)
    return (second - first) / 60


def test_every_scheduled_task_has_a_railway_cron_service_with_its_expression():
    for task in schedule.all_tasks():
        if task.name.startswith("probe-"):
            continue  # the test-suite's own task
        path = ROOT / "railway" / f"cron-{task.name}.toml"
        assert path.exists(), f"{path.name} is missing"
        deploy = tomllib.loads(path.read_text())["deploy"]
        assert deploy["startCommand"] == f"python cron.py run {task.name}"
        if _every_minutes(task.cron) >= RAILWAY_MINIMUM_MINUTES:
            assert deploy["cronSchedule"] == task.cron, task.name
        else:  # runs as often as Railway allows; `cron.py serve` keeps the app's own pace
            assert _every_minutes(deploy["cronSchedule"]) == RAILWAY_MINIMUM_MINUTES, task.name
