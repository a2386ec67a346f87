"""POST /redemptions/redeem and cancel: one short transaction, coins debited once (E2), refunded
once (E3), stock never negative, the Idempotency-Key honoured, tenancy kept."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from app import db
from app.features.store.models import Redemption, VoucherRedemption
from app.features.wallets.models import WalletTransaction
from app.jobs.models import Job
from tests import store_helpers
from tests.recognition_helpers import assert_ledger_consistent
from tests.store_helpers import (
    add_address,
    add_product,
    add_voucher,
    bearer,
    count,
    give_coins,
    movements,
    redeemable,
    redemption,
    stock_of,
    voucher,
)

wide_pool = store_helpers.wide_pool  # fixture


def _employee(make_tenant, make_user, coins: int = 1000):
    tenant = make_tenant("Acme")
    user_id, token = make_user(tenant.company_id)
    give_coins(user_id, tenant.company_id, coins)
    return tenant, user_id, token


def test_product_redemption_debits_fifo_snapshots_the_address_and_takes_stock(client, make_tenant, make_user):
    tenant, user_id, token = _employee(make_tenant, make_user, 300)
    address_id = add_address(user_id, tenant.company_id)
    prize_id = add_product(tenant.company_id, price=120, stock=2)

    answer = client.post(
        "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=bearer(token)
    )
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["message"] == "Prize redeemed successfully"
    row = body["redemption"]
    assert (row["status"], row["coinsSpent"], row["prizeId"], row["addressId"]) == (
        "pending",
        120,
        prize_id,
        address_id,
    )
    assert redeemable(user_id) == 180
    assert stock_of(prize_id) == 1
    [debit] = movements(f"redemption:{row['id']}:debit")
    assert debit.transaction_type == "DEBIT" and debit.amount == 120
    assert debit.metadata_["prizeName"] == "Caneca Valorize" and debit.metadata_["consumedCredits"]
    stored = redemption(row["id"])
    assert stored.address_snapshot["zipCode"] == "01001000" and stored.address_snapshot["city"] == "São Paulo"
    # editing or deleting the address later never rewrites the order's destination
    client.delete(f"/addresses/{address_id}", headers=bearer(token))
    assert redemption(row["id"]).address_snapshot["street"] == "Rua das Flores"
    assert_ledger_consistent()


def test_rules_answer_the_contract_messages(client, make_tenant, make_user):
    tenant, user_id, token = _employee(make_tenant, make_user, 50)
    prize_id = add_product(tenant.company_id, price=100, stock=1)
    sized = add_product(tenant.company_id, name="Camiseta", price=10, variants=[("Tamanho", "M", 1)])
    address_id = add_address(user_id, tenant.company_id)
    headers = bearer(token)

    def redeem(**body):
        return client.post("/redemptions/redeem", json=body, headers=headers)

    assert redeem(prizeId=prize_id).json["message"] == "Address is required for product prizes"
    low = redeem(prizeId=prize_id, addressId=address_id)
    assert low.status_code == 400 and low.json["message"] == "Insufficient redeemable balance"
    assert redeem(prizeId=sized, addressId=address_id).json["message"] == (
        "This prize has variants. You must select a variant to redeem"
    )
    assert redeem(prizeId=prize_id, addressId="nope").json["message"] == "Address not found"
    assert redeem(prizeId="missing", addressId=address_id).status_code == 404
    assert count(WalletTransaction, WalletTransaction.transaction_type == "DEBIT") == 0  # nothing partial


def test_the_same_idempotency_key_returns_the_same_redemption(client, make_tenant, make_user):
    tenant, user_id, token = _employee(make_tenant, make_user, 1000)
    address_id = add_address(user_id, tenant.company_id)
    prize_id = add_product(tenant.company_id, price=100, stock=5)
    headers = {**bearer(token), "Idempotency-Key": "submit-1"}
    first = client.post(
        "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=headers
    )
    second = client.post(
        "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert first.json["redemption"]["id"] == second.json["redemption"]["id"]
    assert redeemable(user_id) == 900 and stock_of(prize_id) == 4
    assert count(Redemption) == 1


@pytest.mark.usefixtures("wide_pool")
def test_fifty_parallel_redemptions_of_a_balance_that_covers_ten(app, make_tenant, make_user):
    tenant, user_id, token = _employee(make_tenant, make_user, 1000)
    address_id = add_address(user_id, tenant.company_id)
    prize_id = add_product(tenant.company_id, price=100, stock=1000)
    statuses: list[int] = []
    barrier = threading.Barrier(50)

    def one() -> None:
        client = app.test_client()
        barrier.wait()
        answer = client.post(
            "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=bearer(token)
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {201: 10, 400: 40}
    assert redeemable(user_id) == 0
    assert count(Redemption) == 10
    assert stock_of(prize_id) == 990
    assert count(WalletTransaction, WalletTransaction.transaction_type == "DEBIT") == 10
    assert_ledger_consistent()


@pytest.mark.usefixtures("wide_pool")
def test_parallel_redemptions_of_the_last_unit_never_oversell(app, make_tenant, make_user):
    tenant = make_tenant("Acme")
    prize_id = add_product(tenant.company_id, price=10, stock=1)
    sized_id = add_product(
        tenant.company_id, name="Camiseta", price=10, stock=5, variants=[("Tamanho", "G", 1)]
    )
    users = []
    for _ in range(12):
        user_id, token = make_user(tenant.company_id)
        give_coins(user_id, tenant.company_id, 100)
        users.append((user_id, token, add_address(user_id, tenant.company_id)))
    with db.session_scope() as session:
        from app.features.store.models import PrizeVariant

        variant_id = session.query(PrizeVariant.id).filter(PrizeVariant.prize_id == sized_id).scalar()
    results: dict[str, list[int]] = {"prize": [], "variant": []}
    barrier = threading.Barrier(len(users) * 2)

    def one(token: str, address_id: str, which: str) -> None:
        body = {"prizeId": prize_id, "addressId": address_id}
        if which == "variant":
            body = {"prizeId": sized_id, "variantId": variant_id, "addressId": address_id}
        client = app.test_client()
        barrier.wait()
        results[which].append(
            client.post("/redemptions/redeem", json=body, headers=bearer(token)).status_code
        )

    threads = [
        threading.Thread(target=one, args=(token, address, which))
        for _, token, address in users
        for which in ("prize", "variant")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(results["prize"]) == {201: 1, 409: 11}
    assert Counter(results["variant"]) == {201: 1, 409: 11}
    assert stock_of(prize_id) == 0
    with db.session_scope() as session:
        from app.features.store.models import PrizeVariant

        assert session.get_one(PrizeVariant, variant_id).stock == 0
    assert sum(redeemable(u) for u, _, _ in users) == 12 * 100 - 2 * 10  # the losers were not charged
    assert_ledger_consistent()


def test_employee_cancel_refunds_once_and_restocks(client, make_tenant, make_user):
    tenant, user_id, token = _employee(make_tenant, make_user, 200)
    address_id = add_address(user_id, tenant.company_id)
    prize_id = add_product(tenant.company_id, price=150, stock=1)
    rid = client.post(
        "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=bearer(token)
    ).json["redemption"]["id"]
    assert (redeemable(user_id), stock_of(prize_id)) == (50, 0)

    cancel = client.post(
        f"/redemptions/my-redemptions/{rid}/cancel", json={"reason": "mudei"}, headers=bearer(token)
    )
    assert cancel.status_code == 200, cancel.json
    assert cancel.json == {
        "success": True,
        "message": "Redemption cancelled successfully",
        "coinsRefunded": 150,
        "newBalance": 200,
    }
    again = client.post(
        f"/redemptions/my-redemptions/{rid}/cancel", json={"reason": "de novo"}, headers=bearer(token)
    )
    assert again.status_code == 400
    assert (redeemable(user_id), stock_of(prize_id)) == (200, 1)
    [refund] = movements(f"redemption:{rid}:refund")
    assert refund.transaction_type == "CREDIT" and refund.remaining_amount == 150 and refund.expires_at
    detail = client.get(f"/redemptions/my-redemptions/{rid}", headers=bearer(token)).json["redemption"]
    assert detail["status"] == "cancelled"
    assert [t["status"] for t in detail["tracking"]] == ["pending", "cancelled"]
    assert_ledger_consistent()


def test_parallel_cancels_refund_exactly_once(app, make_tenant, make_user):
    tenant, user_id, token = _employee(make_tenant, make_user, 100)
    address_id = add_address(user_id, tenant.company_id)
    prize_id = add_product(tenant.company_id, price=100, stock=1)
    rid = (
        app.test_client()
        .post(
            "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=bearer(token)
        )
        .json["redemption"]["id"]
    )
    codes: list[int] = []
    barrier = threading.Barrier(8)

    def cancel(use_admin: bool) -> None:
        client = app.test_client()
        barrier.wait()
        if use_admin:
            answer = client.delete(f"/admin/redemptions/{rid}/cancel", json={}, headers=tenant.headers())
        else:
            answer = client.post(
                f"/redemptions/my-redemptions/{rid}/cancel", json={"reason": "x"}, headers=bearer(token)
            )
        codes.append(answer.status_code)

    threads = [threading.Thread(target=cancel, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) == 1, codes
    assert len(movements(f"redemption:{rid}:refund")) == 1
    assert (redeemable(user_id), stock_of(prize_id)) == (100, 1)
    assert_ledger_consistent()


def test_voucher_redemption_is_issued_by_a_job_with_the_local_provider(
    client, make_tenant, make_user, worker
):
    _, _, token = _employee(make_tenant, make_user, 1000)
    _, prize_id = add_voucher(None, provider="local", external_id="LOCAL-IFOOD", price=500, value_cents=3000)
    answer = client.post("/redemptions/redeem", json={"prizeId": prize_id}, headers=bearer(token))
    assert answer.status_code == 201, answer.json
    rid = answer.json["redemption"]["id"]
    assert answer.json["redemption"]["status"] == "processing"
    assert voucher(rid).status == "issuing"
    assert count(Job, Job.kind == "store.issue_voucher") == 1
    worker()
    assert redemption(rid).status == "sent"
    issued = voucher(rid)
    assert issued.provider_order_id == f"LOCAL-O-{rid}" and issued.voucher_code.startswith("DEMO-")
    assert count(VoucherRedemption) == 1
    assert stock_of(prize_id) == 999  # global provider vouchers are never used up
    # a voucher cannot be cancelled by the employee (it was e-mailed)
    refused = client.post(
        f"/redemptions/my-redemptions/{rid}/cancel", json={"reason": "x"}, headers=bearer(token)
    )
    assert refused.status_code == 400


def test_another_companys_ids_answer_404(client, make_tenant, make_user):
    acme, user_id, token = _employee(make_tenant, make_user, 500)
    other = make_tenant("Other")
    other_user, other_token = make_user(other.company_id)
    give_coins(other_user, other.company_id, 500)
    other_address = add_address(other_user, other.company_id)
    other_prize = add_product(other.company_id, price=10)
    own_address = add_address(user_id, acme.company_id)
    rid = client.post(
        "/redemptions/redeem",
        json={"prizeId": other_prize, "addressId": other_address},
        headers=bearer(other_token),
    ).json["redemption"]["id"]

    assert client.get(f"/prizes/catalog/{other_prize}", headers=bearer(token)).status_code == 404
    assert (
        client.post(
            "/redemptions/redeem",
            json={"prizeId": other_prize, "addressId": own_address},
            headers=bearer(token),
        ).status_code
        == 404
    )
    assert client.get(f"/redemptions/my-redemptions/{rid}", headers=bearer(token)).status_code == 404
    assert client.get(f"/addresses/{other_address}", headers=bearer(token)).status_code == 404
    assert client.put(f"/addresses/{other_address}", json={}, headers=bearer(token)).status_code in (400, 404)
    for method, path in [
        ("get", f"/admin/redemptions/{rid}"),
        ("patch", f"/admin/redemptions/{rid}/status"),
        ("patch", f"/admin/redemptions/{rid}/tracking"),
        ("post", f"/admin/redemptions/{rid}/notes"),
        ("delete", f"/admin/redemptions/{rid}/cancel"),
        ("get", f"/admin/prizes/{other_prize}"),
        ("patch", f"/admin/prizes/{other_prize}"),
        ("delete", f"/admin/prizes/{other_prize}"),
    ]:
        body = {"status": "shipped", "trackingCode": "X", "note": "n", "name": "x"}
        answer = getattr(client, method)(path, json=body, headers=acme.headers())
        assert answer.status_code == 404, (method, path, answer.status_code, answer.json)
    admin_list = client.get("/admin/prizes", query_string={"search": "Caneca"}, headers=acme.headers()).json
    assert admin_list["prizes"] == [] and admin_list["total"] == 0  # search never crosses tenants
