"""Rules E1-E3, E5 of contract §S9.7 against a local server speaking Tremendous's API that times
out, answers 5xx or 429, refuses, or holds a request while its worker is killed: never two orders for
one redemption, never a double debit, a refund exactly once on final failure."""

from __future__ import annotations

import threading

import pytest

from app import db, runtime
from app.features.economy import service as economy
from app.features.economy.models import CompanyLedgerEntry
from app.features.store import issuing
from app.features.store.models import Redemption
from app.jobs import enqueue
from app.jobs.models import Job
from app.jobs.reconciler import reconcile as reconcile_jobs
from tests import store_helpers
from tests.conftest import kill_tree, start_worker_process, wait_for
from tests.recognition_helpers import assert_ledger_consistent
from tests.store_helpers import (
    add_voucher,
    bearer,
    count,
    deposit,
    give_coins,
    movements,
    redeemable,
    redemption,
    voucher,
)
from tests.tremendous_fake import FakeTremendous, Fault

tremendous = store_helpers.tremendous  # fixture


def _redeem_voucher(client, make_tenant, make_user, coins: int = 600) -> tuple[str, str, str]:
    """(company id, user id, redemption id) of a fresh voucher redemption (500 coins, R$ 30)."""
    tenant = make_tenant("Acme")
    user_id, token = make_user(tenant.company_id)
    give_coins(user_id, tenant.company_id, coins)
    _, prize_id = add_voucher(None)
    answer = client.post("/redemptions/redeem", json={"prizeId": prize_id}, headers=bearer(token))
    assert answer.status_code == 201, answer.json
    return tenant.company_id, user_id, answer.json["redemption"]["id"]


def _exactly_one_debit(redemption_id: str) -> None:
    assert len(movements(f"redemption:{redemption_id}:debit")) == 1


def _rerun_issue(redemption_id: str, company_id: str) -> None:
    with db.session_scope() as session:
        enqueue(session, "store.issue_voucher", {"redemption_id": redemption_id}, company_id=company_id)


def test_timeout_after_the_order_was_created_is_resolved_by_lookup_not_a_second_order(
    client, make_tenant, make_user, worker, tremendous: FakeTremendous
):
    tremendous.create_faults = [Fault("timeout_after_create", delay=1.5)]  # the client gives up at 0.5 s
    company_id, user_id, rid = _redeem_voucher(client, make_tenant, make_user)
    worker()
    assert tremendous.posts == 1 and tremendous.creates[rid] == 1
    row, issued = redemption(rid), voucher(rid)
    assert row.status == "sent"
    assert issued.provider_order_id == tremendous.order_for(rid)["id"] and issued.create_calls == 1
    assert issued.provider_reward_id == tremendous.order_for(rid)["rewards"][0]["id"]
    _exactly_one_debit(rid)
    assert movements(f"redemption:{rid}:refund") == [] and redeemable(user_id) == 100
    _rerun_issue(rid, company_id)  # a duplicate run finds the recorded order and exits
    worker()
    assert tremendous.posts == 1 and tremendous.creates[rid] == 1
    assert_ledger_consistent()


def test_5xx_after_creating_then_lookup_finds_the_order(client, make_tenant, make_user, worker, tremendous):
    tremendous.create_faults = [Fault("error_after_create")]
    _, _, rid = _redeem_voucher(client, make_tenant, make_user)
    worker()
    assert tremendous.creates[rid] == 1 and tremendous.posts == 1
    assert redemption(rid).status == "sent"


def test_429_and_5xx_are_retried_with_backoff_until_one_order_is_created(
    client, make_tenant, make_user, worker, tremendous
):
    tremendous.create_faults = [Fault("rate_limit"), Fault("error"), Fault("rate_limit")]
    _, user_id, rid = _redeem_voucher(client, make_tenant, make_user)
    worker()
    assert tremendous.posts == 4 and tremendous.creates[rid] == 1
    assert redemption(rid).status == "sent"
    with db.session_scope() as session:
        job = session.query(Job).filter(Job.kind == "store.issue_voucher").one()
        assert (job.status, job.attempts) == ("succeeded", 4)
    assert redeemable(user_id) == 100


def test_a_refused_order_fails_and_refunds_exactly_once(client, make_tenant, make_user, worker, tremendous):
    tremendous.create_faults = [Fault("reject")]
    company_id, user_id, rid = _redeem_voucher(client, make_tenant, make_user)
    worker()
    row, issued = redemption(rid), voucher(rid)
    assert row.status == "failed" and issued.status == "failed"
    assert "Invalid product" in issued.error_message
    assert redeemable(user_id) == 600
    [refund] = movements(f"redemption:{rid}:refund")
    assert refund.amount == 500 and refund.remaining_amount == 500  # a fresh FIFO lot
    _rerun_issue(rid, company_id)
    worker()
    assert len(movements(f"redemption:{rid}:refund")) == 1 and tremendous.creates[rid] == 0
    assert_ledger_consistent()


def test_retries_exhausted_with_no_order_at_the_provider_fails_and_refunds_once(
    client, make_tenant, make_user, worker, tremendous
):
    tremendous.create_faults = [Fault("error") for _ in range(10)]
    _, user_id, rid = _redeem_voucher(client, make_tenant, make_user)
    worker()
    assert tremendous.posts == 6 and tremendous.creates[rid] == 0  # every attempt, never an order
    assert redemption(rid).status == "failed"
    assert len(movements(f"redemption:{rid}:refund")) == 1 and redeemable(user_id) == 600


def test_an_unknowable_outcome_is_parked_never_refunded_and_reconciled_from_the_provider(
    client, make_tenant, make_user, worker, tremendous
):
    # Every create fails, the last one after creating the order, and then the provider cannot even
    # be asked: the voucher waits for reconciliation instead of being refunded.
    tremendous.create_faults = [Fault("error") for _ in range(5)] + [Fault("error_after_create")]
    tremendous.lookup_faults = [Fault("pass") for _ in range(5)] + [Fault("error") for _ in range(5)]
    _, user_id, rid = _redeem_voucher(client, make_tenant, make_user)
    worker()
    assert voucher(rid).status == "review" and redemption(rid).status == "processing"
    assert movements(f"redemption:{rid}:refund") == [] and redeemable(user_id) == 100
    tremendous.lookup_faults = []
    summary = issuing.reconcile()
    assert summary.sent == 1
    assert redemption(rid).status == "sent" and tremendous.creates[rid] == 1
    assert movements(f"redemption:{rid}:refund") == []


def test_reconciliation_confirms_delivery_or_fails_and_refunds_from_the_order(
    client,
    make_tenant,
    make_user,
    worker,
    tremendous,
    settings,
):
    from dataclasses import replace

    runtime.init(replace(runtime.settings(), voucher_reconcile_after_minutes=0))
    _, _, delivered = _redeem_voucher(client, make_tenant, make_user, coins=1100)
    worker()
    tremendous.set_delivery(delivered, "SUCCEEDED")
    summary = issuing.reconcile()
    assert summary.delivered == 1 and voucher(delivered).status == "delivered"
    assert redemption(delivered).status == "sent"  # the UI knows no other voucher success state


def test_admin_send_debits_the_company_fund_once_and_a_final_failure_credits_it_once(
    client, make_tenant, make_user, worker, tremendous
):
    tenant = make_tenant("Acme")
    user_id, _ = make_user(tenant.company_id, email="bia@acme.test")
    product_id, _ = add_voucher(None, value_cents=2500)
    deposit(tenant.company_id, 10_000)
    tremendous.create_faults = [Fault("reject")]
    answer = client.post(
        "/admin/redemptions/send-to-user",
        json={"userId": user_id, "email": "bia@acme.test", "prizeId": product_id, "customAmount": 40},
        headers=tenant.headers(),
    )
    assert answer.status_code == 202, answer.json
    rid = answer.json["redemptionId"]
    assert answer.json["status"] == "processing" and answer.json["jobId"]
    with db.session_scope() as session:
        assert economy.account(session, tenant.company_id).balance_cents == 6_000
    worker()
    assert redemption(rid).status == "failed"
    with db.session_scope() as session:
        acct = economy.account(session, tenant.company_id)
        assert acct.balance_cents == 10_000 and economy.ledger_sum(session, tenant.company_id) == 10_000
        assert acct.total_spent_cents == 0 and acct.total_deposited_cents == 10_000
    assert count(CompanyLedgerEntry, CompanyLedgerEntry.reference == f"redemption:{rid}:refund") == 1
    assert movements(f"redemption:{rid}") == []  # the employee's coins were never touched (E5)
    assert redeemable(user_id) == 0


def test_bulk_send_reserves_the_whole_batch_or_nothing(client, make_tenant, make_user, worker, tremendous):
    tenant = make_tenant("Acme")
    users = [make_user(tenant.company_id, email=f"p{i}@acme.test")[0] for i in range(3)]
    product_id, _ = add_voucher(None, value_cents=2000)
    deposit(tenant.company_id, 5_000)
    body = {
        "prizeId": product_id,
        "customAmount": 20,
        "users": [{"userId": u, "email": f"p{i}@acme.test"} for i, u in enumerate(users)],
        "allUsersSelected": False,
    }
    refused = client.post("/admin/redemptions/bulk-redeem", json=body, headers=tenant.headers())
    assert refused.status_code == 400 and refused.json["message"] == "Insufficient company wallet balance"
    assert count(Redemption) == 0
    deposit(tenant.company_id, 1_000)
    accepted = client.post("/admin/redemptions/bulk-redeem", json=body, headers=tenant.headers())
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["summary"]["total"] == 3 and len(accepted.json["results"]) == 3
    batch_job = accepted.json["jobId"]
    worker()
    job = client.get(f"/jobs/{batch_job}", headers=tenant.headers()).json
    assert job["status"] == "succeeded" and job["progress"] == 100
    assert sorted(tremendous.creates.values()) == [1, 1, 1]
    assert count(Redemption, Redemption.status == "sent") == 3
    with db.session_scope() as session:
        assert economy.account(session, tenant.company_id).balance_cents == 0


@pytest.mark.slow
def test_worker_killed_mid_issue_never_creates_a_second_order(
    client, make_tenant, make_user, worker, tremendous
):
    release = threading.Event()
    tremendous.create_faults = [Fault("hold", release=release)]
    _, user_id, rid = _redeem_voucher(client, make_tenant, make_user)
    settings = runtime.settings()
    process = start_worker_process(
        VOUCHER_PROVIDER="tremendous",
        TREMENDOUS_API_KEY="test-key",
        TREMENDOUS_BASE_URL=tremendous.url,
        TREMENDOUS_TIMEOUT_SECONDS="60",
        TREMENDOUS_WEBHOOK_SECRET=settings.tremendous_webhook_secret or "x",
    )
    try:
        assert tremendous.held.wait(60), "the worker never called the provider"
        assert voucher(rid).create_calls == 1  # counted (committed) before the request left
    finally:
        kill_tree(process)
    release.set()  # the provider finishes creating the order the dead worker asked for
    wait_for(lambda: tremendous.creates[rid] == 1, timeout=10)
    assert redemption(rid).status == "processing"
    assert wait_for(lambda: reconcile_jobs().republished, timeout=30)
    worker()
    assert redemption(rid).status == "sent"
    assert tremendous.creates[rid] == 1 and tremendous.posts == 1
    assert voucher(rid).provider_order_id == tremendous.order_for(rid)["id"]
    _exactly_one_debit(rid)
    assert movements(f"redemption:{rid}:refund") == [] and redeemable(user_id) == 100
    assert_ledger_consistent()
