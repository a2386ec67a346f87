"""POST /wallets/reset-weekly-balance (contract §5) through the slow-endpoint pattern, and
concurrent `cron.py run weekly-reset` processes (real worker and cron processes, real clock)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from app import runtime
from tests.conftest import ROOT, kill_tree, start_worker_process, subprocess_env
from tests.recognition_helpers import assert_ledger_consistent
from tests.test_weekly_reset_helpers import compliment_balances, make_company, resets, spend_allowance


@pytest.mark.slow
def test_operator_reset_answers_the_contract_body_once_per_week(client, make_tenant, make_user, settings):
    runtime.init(replace(settings, sync_wait_seconds=60))
    operator = make_tenant("Platform", super_admin=True)  # admin:manage_system: every company
    target, _ = make_company("Target", users=4)
    other, _ = make_company("Other", users=2)
    _, company_admin = make_user(operator.company_id, role="Company Admin")
    assert (
        client.post("/wallets/reset-weekly-balance", headers=operator.headers(company_admin)).status_code
        == 403
    )
    assert (
        client.post("/wallets/reset-weekly-balance?companyId=nope", headers=operator.headers()).status_code
        == 404
    )

    process = start_worker_process()
    try:
        first = client.post(f"/wallets/reset-weekly-balance?companyId={target}", headers=operator.headers())
        spend_allowance(target, every=1)
        second = client.post(f"/wallets/reset-weekly-balance?companyId={target}", headers=operator.headers())
        everyone = client.post("/wallets/reset-weekly-balance", headers=operator.headers())
        queued = client.post(
            "/wallets/reset-weekly-balance", headers={**operator.headers(), "Prefer": "respond-async"}
        )
    finally:
        kill_tree(process)

    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body == {
        "message": "Weekly balance reset successfully",
        "companyId": target,
        "companyName": "Target",
        "walletsUpdated": 4,  # bulk-inserted users get their wallet and allowance
        "weeklyLimit": 100,
        "resetBy": operator.admin_id,
        "alreadyReset": False,
    }
    again = second.get_json()
    assert second.status_code == 200
    assert (again["walletsUpdated"], again["alreadyReset"]) == (0, True)
    assert set(compliment_balances(target)) == {93}  # spent after this week's reset: kept

    assert everyone.status_code == 200
    assert everyone.get_json() == {
        "message": "Weekly balance reset for 2 companies",
        "companiesUpdated": 2,  # Platform and Other; Target was already reset this week
        # Other's two users and Platform's company admin (users made without a wallet get one);
        # Platform's creator already had the allowance: unchanged, no ledger row.
        "walletsUpdated": 3,
        "resetBy": operator.admin_id,
        "companiesAlreadyReset": 1,
    }
    assert queued.status_code == 202 and queued.headers["Location"].startswith("/jobs/")
    assert {r.trigger for r in resets(other)} == {"api"}
    assert [r.requested_by for r in resets(target)] == [operator.admin_id]
    assert_ledger_consistent()


@pytest.mark.slow
def test_concurrent_cron_processes_reset_each_company_once(settings):
    # Four real processes (the ten-way race is in test_weekly_reset.py, with threads: the same
    # code path, without paying ten interpreter start-ups).
    companies = [make_company(f"Proc {i}", users=50)[0] for i in range(2)]
    command = [sys.executable, str(ROOT / "cron.py"), "run", "weekly-reset"]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0] * 4, outputs
    for company_id in companies:
        [week] = resets(company_id)
        assert week.wallets_changed == 50 and week.trigger == "cron"
        assert set(compliment_balances(company_id)) == {100}
    assert_ledger_consistent()
