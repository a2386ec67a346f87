"""Wallets and the ledger: creation, lots spent oldest-first, expiry, append-only, the routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app import db
from app.db import utcnow
from app.features.users import onboarding
from app.features.wallets import service as wallets
from app.features.wallets.models import Wallet, WalletTransaction
from tests.recognition_helpers import assert_ledger_consistent, snapshot


def _wallet(session, user_id: str) -> Wallet:
    wallet = wallets.wallet_of(session, user_id)
    assert wallet is not None
    return wallet


def test_company_admin_gets_a_wallet_with_the_initial_allowance(make_tenant):
    tenant = make_tenant()
    with db.session_scope() as session:
        wallet = _wallet(session, tenant.admin_id)
        assert (wallet.compliment_balance, wallet.redeemable_balance) == (100, 0)
        rows = session.scalars(
            select(WalletTransaction).where(WalletTransaction.wallet_id == wallet.id)
        ).all()
        assert [
            (r.transaction_type, r.balance_type, r.amount, r.previous_balance, r.new_balance) for r in rows
        ] == [("RESET", "COMPLIMENT", 100, 0, 100)]
        assert wallets.get_balances(session, tenant.admin_id) == (100, 0)
        assert wallets.get_balances(session, "no-such-user") == (0, 0)
    assert_ledger_consistent()


def test_create_user_with_wallet(make_tenant):
    tenant = make_tenant()
    with db.session_scope() as session:
        user = onboarding.create_user(session, tenant.company_id, " New@Example.com ", "New")
        user_id = user.id
    with db.session_scope() as session:
        assert _wallet(session, user_id).compliment_balance == 100
        from app.features.identity import service as identity

        assert "praise:send" in identity.permissions_of(session, user_id)
    assert_ledger_consistent()


def test_spending_consumes_oldest_unexpired_credits_first_and_never_an_expired_one(make_tenant):
    tenant = make_tenant()
    now = utcnow()
    with db.session_scope() as session:
        wallet = _wallet(session, tenant.admin_id)
        expired = wallets.credit_redeemable(session, wallet, 30, "old", now=now - timedelta(days=20 * 30))
        oldest = wallets.credit_redeemable(session, wallet, 10, "a", now=now - timedelta(days=17 * 30))
        middle = wallets.credit_redeemable(session, wallet, 20, "b", now=now - timedelta(days=60))
        newest = wallets.credit_redeemable(session, wallet, 40, "c", now=now - timedelta(days=1))
        ids = expired.id, oldest.id, middle.id, newest.id
        assert expired.expires_at < now < oldest.expires_at < middle.expires_at < newest.expires_at

    with db.session_scope() as session:
        wallet = _wallet(session, tenant.admin_id)
        assert wallet.redeemable_balance == 100
        assert wallets.spendable_redeemable(session, wallet.id, now) == 70
        debit = wallets.spend_redeemable(session, wallet, 25, "Prize", {"prizeName": "Mug"}, now=now)
        assert (debit.previous_balance, debit.new_balance) == (100, 75)
        assert debit.metadata_["prizeName"] == "Mug"
        assert debit.metadata_["consumedCredits"] == [
            {"transactionId": ids[1], "amount": 10},
            {"transactionId": ids[2], "amount": 15},
        ]

    def remaining() -> list[int]:
        with db.session_scope() as session:
            rows = dict(
                session.execute(
                    select(WalletTransaction.id, WalletTransaction.remaining_amount).where(
                        WalletTransaction.id.in_(ids)
                    )
                )
                .tuples()
                .all()
            )
            return [rows[i] for i in ids]

    assert remaining() == [30, 0, 5, 40]

    # More than the unexpired coins (45) fails although the balance (75) would cover it.
    with db.session_scope() as session, pytest.raises(wallets.InsufficientBalance, match="45 unexpired"):
        wallets.spend_redeemable(session, _wallet(session, tenant.admin_id), 50, "Too much", now=now)
    assert remaining() == [30, 0, 5, 40]

    with db.session_scope() as session:
        wallets.spend_redeemable(session, _wallet(session, tenant.admin_id), 45, "All of it", now=now)
    assert remaining() == [30, 0, 0, 0]  # the expired lot is untouched
    assert_ledger_consistent()

    with db.session_scope() as session:
        row = wallets.expire_redeemable(session, _wallet(session, tenant.admin_id), now=now)
        assert row is not None
        assert (row.transaction_type, row.amount, row.previous_balance, row.new_balance) == (
            "EXPIRED",
            30,
            30,
            0,
        )
        assert wallets.expire_redeemable(session, _wallet(session, tenant.admin_id), now=now) is None
    assert remaining() == [0, 0, 0, 0]
    assert_ledger_consistent()


def test_redeemable_credits_expire_after_18_months(make_tenant):
    tenant = make_tenant()
    with db.session_scope() as session:
        wallet = _wallet(session, tenant.admin_id)
        moment = utcnow().replace(year=2025, month=8, day=31)
        lot = wallets.credit_redeemable(session, wallet, 5, "x", now=moment)
        assert (lot.remaining_amount, lot.expires_at) == (5, moment.replace(year=2027, month=2, day=28))


def test_the_ledger_is_append_only(make_tenant):
    tenant = make_tenant()
    with db.session_scope() as session:
        lot = wallets.credit_redeemable(session, _wallet(session, tenant.admin_id), 10, "x")
        lot_id = lot.id
    for statement in (
        "UPDATE wallet_transactions SET amount = 99 WHERE id = :id",
        "UPDATE wallet_transactions SET remaining_amount = 11 WHERE id = :id",
        "DELETE FROM wallet_transactions WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.engine().begin() as conn:
            conn.execute(text(statement), {"id": lot_id})
    with db.engine().begin() as conn:  # drawing a lot down is the one allowed change
        conn.execute(
            text("UPDATE wallet_transactions SET remaining_amount = 4 WHERE id = :id"), {"id": lot_id}
        )


def test_debit_beyond_the_allowance_is_refused(make_tenant):
    tenant = make_tenant()
    before = snapshot()
    with db.session_scope() as session, pytest.raises(wallets.InsufficientBalance):
        wallets.debit_compliment(session, _wallet(session, tenant.admin_id), 105, "too much")
    assert snapshot() == before


def test_balance_route_reports_expiring_coins(client, make_tenant):
    tenant = make_tenant()
    now = utcnow()
    with db.session_scope() as session:
        wallet = _wallet(session, tenant.admin_id)
        # expires 2 days ago (not "expiring": already expired), in 3, 45 and 200 days
        born = wallets.add_months(now, -18)
        for days, amount in ((-2, 1), (3, 5), (45, 10), (200, 20)):
            wallets.credit_redeemable(session, wallet, amount, "gift", now=born + timedelta(days=days))

    response = client.get("/wallets/balance", headers=tenant.headers())
    assert response.status_code == 200, response.json
    body = response.json
    assert body["complimentBalance"] == 100
    assert body["redeemableBalance"] == 36
    expiring = body["expiringCoins"]
    assert (expiring["next30Days"], expiring["next90Days"], expiring["urgentExpiration"]) == (5, 15, True)
    assert [d["amount"] for d in expiring["details"]] == [5, 10]
    assert expiring["details"][0]["isUrgent"] is True and expiring["details"][1]["isUrgent"] is False
    assert expiring["details"][0]["expiresAt"].endswith("Z")


def test_balance_requires_a_token(client):
    assert client.get("/wallets/balance").status_code == 401
    assert client.get("/wallets/transactions").status_code == 401


def test_transactions_route_filters_and_paginates_newest_first(client, make_tenant):
    tenant = make_tenant()
    now = utcnow()
    with db.session_scope() as session:
        wallet = _wallet(session, tenant.admin_id)
        for day in range(1, 6):
            wallets.credit_redeemable(
                session, wallet, day * 5, f"credit {day}", {"n": day}, now=now - timedelta(days=day)
            )
        wallets.debit_compliment(session, wallet, 10, "Compliment sent to X", {"receiverName": "X"}, now=now)

    headers = tenant.headers()
    page = client.get("/wallets/transactions?limit=2&offset=0", headers=headers).json
    assert page["pagination"] == {"total": 7, "limit": 2, "offset": 0, "hasMore": True}
    first = page["transactions"][0]
    assert set(first) >= {
        "id", "transactionType", "balanceType", "amount", "previousBalance", "newBalance", "reason",
        "metadata", "createdAt",
    }  # fmt: skip
    assert (first["transactionType"], first["balanceType"], first["amount"]) == ("DEBIT", "COMPLIMENT", 10)
    assert first["metadata"] == {"receiverName": "X"}
    assert first["createdAt"].endswith("Z")
    last = client.get("/wallets/transactions?limit=2&offset=6", headers=headers).json
    assert last["pagination"]["hasMore"] is False
    assert [t["reason"] for t in last["transactions"]] == ["credit 5"]  # backdated: the oldest

    credits = client.get(
        "/wallets/transactions?balanceType=REDEEMABLE&transactionType=CREDIT&limit=20", headers=headers
    ).json
    assert [t["amount"] for t in credits["transactions"]] == [5, 10, 15, 20, 25]

    window = client.get(
        "/wallets/transactions",
        query_string={
            "fromDate": (now - timedelta(days=3, hours=1)).isoformat().replace("+00:00", "Z"),
            "toDate": (now - timedelta(hours=12)).isoformat(),
        },
        headers=headers,
    ).json
    assert [t["amount"] for t in window["transactions"]] == [5, 10, 15]
    assert window["pagination"]["total"] == 3
    assert client.get("/wallets/transactions?limit=50", headers=headers).json["pagination"]["limit"] == 50
    assert client.get("/wallets/transactions", headers=headers).json["pagination"]["limit"] == 50


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "offset=-1",
        "limit=abc",
        "balanceType=GIFT",
        "transactionType=REFUND",
        "fromDate=yesterday",
        "fromDate=2025-02-01T00:00:00Z&toDate=2025-01-01T00:00:00Z",
    ],
)
def test_transactions_route_rejects_bad_queries(client, make_tenant, query):
    tenant = make_tenant()
    response = client.get(f"/wallets/transactions?{query}", headers=tenant.headers())
    assert response.status_code == 400
    assert response.json["message"]


def test_transactions_are_scoped_to_the_caller(client, make_tenant, make_user):
    acme, other = make_tenant("Acme"), make_tenant("Other")
    _, token = make_user(acme.company_id)
    with db.session_scope() as session:
        wallets.credit_redeemable(session, _wallet(session, other.admin_id), 50, "other company")
    body = client.get("/wallets/transactions", headers=acme.headers(token)).json
    # a user created without the services gets a wallet on first sight
    assert [t["reason"] for t in body["transactions"]] == ["Initial weekly allowance"]
    assert client.get("/wallets/balance", headers=acme.headers(token)).json["redeemableBalance"] == 0
    assert_ledger_consistent()
