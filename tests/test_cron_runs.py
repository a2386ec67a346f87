"""The one schedule (every task listed and registered once) and GET /admin/cron-runs."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from app import runtime
from app.cron import runner, schedule
from app.cron.scheduler import registered_ids
from tests.conftest import ROOT, subprocess_env

ISSUE_6_TASKS = {"weekly-reset": "0 * * * *", "expire-coins": "30 2 * * *", "expiry-notices": "0 12 * * *"}


def _cron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cron.py"), *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_cron_list_shows_every_task_with_its_expression():
    result = _cron("list")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0]: " ".join(line.split()[1:6]) for line in result.stdout.splitlines()}
    for name, expression in {
        **ISSUE_6_TASKS,
        "reconcile-jobs": "* * * * *",
        "prune-jobs": "17 3 * * *",
    }.items():
        assert listed[name] == expression


@pytest.mark.slow
def test_serve_twice_registers_each_task_once_including_the_wallet_tasks(settings):
    for _ in range(2):
        result = _cron("serve", "--register-only")
        assert result.returncode == 0, result.stderr
    expected = sorted(f"cron-{task.name}" for task in schedule.all_tasks())
    assert {f"cron-{name}" for name in ISSUE_6_TASKS} <= set(expected)
    assert registered_ids(runtime.redis()) == expected
    scheduled = runtime.redis().zrange("rq:scheduler:scheduled_jobs", 0, -1)
    assert sorted(s.decode() for s in scheduled) == expected


def test_cron_runs_lists_filters_and_paginates_for_operators(client, make_tenant, make_user, settings):
    tenant = make_tenant(super_admin=True)
    _, company_admin = make_user(tenant.company_id, role="Company Admin")
    for _ in range(3):
        runner.run_task("weekly-reset", trigger="cli")
    runner.run_task("expire-coins", trigger="scheduler")
    with contextlib.suppress(runner.TaskFailed):
        runner.run_task("probe-fail", trigger="cli")

    assert client.get("/admin/cron-runs", headers=tenant.headers(company_admin)).status_code == 403
    everything = client.get("/admin/cron-runs", headers=tenant.headers()).get_json()
    assert (everything["totalCount"], everything["pageCount"], everything["currentPage"]) == (5, 1, 1)
    assert everything["data"][0]["task"] == "probe-fail"  # newest first
    failed = everything["data"][0]
    assert failed["outcome"] == "failed" and "probe cron failure" in failed["error"]

    resets = client.get(
        "/admin/cron-runs?task=weekly-reset&limit=2&page=2", headers=tenant.headers()
    ).get_json()
    assert (resets["totalCount"], resets["pageCount"], resets["currentPage"]) == (3, 2, 2)
    [oldest] = resets["data"]
    assert oldest["trigger"] == "cli" and oldest["outcome"] == "succeeded"
    # the company admin was created without a wallet: the reset gives it one (0 -> 100)
    assert oldest["summary"]["companies_reset"] == 1 and oldest["summary"]["wallets_changed"] == 1
    assert oldest["startedAt"].endswith("Z") and oldest["durationMs"] >= 0

    only_failed = client.get("/admin/cron-runs?outcome=failed", headers=tenant.headers()).get_json()
    assert [r["task"] for r in only_failed["data"]] == ["probe-fail"]
    assert client.get("/admin/cron-runs?outcome=weird", headers=tenant.headers()).status_code == 400
