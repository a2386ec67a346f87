"""/admin/wallet-management (contract §10): expire-coins (dry run and real, through the worker)
and the expiration report, scoped to the caller's company unless the caller operates the platform."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from app import db, runtime
from app.features.users import onboarding
from app.features.wallets import service as wallets
from app.features.wallets.service import REDEEMABLE_LIFETIME_MONTHS, add_months
from tests.conftest import kill_tree, start_worker_process


def _credit(company_id: str, email: str, name: str, amount: int, expires_in: timedelta) -> str:
    """A user holding one lot that expires `expires_in` from now (negative: already expired)."""
    with db.session_scope() as session:
        user = onboarding.create_user(session, company_id, email, name)
        wallet = wallets.get_wallet(session, user.id, company_id)
        target = db.utcnow() + expires_in
        credited = add_months(target, -REDEEMABLE_LIFETIME_MONTHS)
        lot = wallets.credit_redeemable(session, wallet, amount, "Compliment", now=credited)
        lot.expires_at = target  # pinned exactly (add_months clamps month ends); flushed before commit
        return user.id


@pytest.mark.slow
def test_expire_coins_dry_run_then_real_scoped_by_company(client, make_tenant, make_user, settings):
    runtime.init(replace(settings, sync_wait_seconds=30))
    platform = make_tenant("Platform", super_admin=True)
    acme = make_tenant("Acme")
    _, acme_admin = make_user(acme.company_id, role="Company Admin")
    _, employee = make_user(acme.company_id, role="Employee")
    ana = _credit(acme.company_id, "ana@acme.test", "Ana", 40, timedelta(days=-1))
    bob = _credit(platform.company_id, "bob@platform.test", "Bob", 25, timedelta(days=-2))

    assert (
        client.post("/admin/wallet-management/expire-coins", headers=acme.headers(employee)).status_code
        == 403
    )
    process = start_worker_process()
    try:
        dry = client.post(
            "/admin/wallet-management/expire-coins?dryRun=true", headers=acme.headers(acme_admin)
        )
        real = client.post("/admin/wallet-management/expire-coins", headers=acme.headers(acme_admin))
        again = client.post("/admin/wallet-management/expire-coins", headers=acme.headers(acme_admin))
        everyone = client.post("/admin/wallet-management/expire-coins", headers=platform.headers())
    finally:
        kill_tree(process)

    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json() == {
        "success": True,
        "message": "40 coins of 1 users would expire",
        "data": {
            "usersAffected": 1,
            "totalCoinsExpired": 40,
            "expirationsByUser": [{"userId": ana, "userName": "Ana", "coinsExpired": 40, "transactions": 1}],
            "dryRun": True,
        },
    }
    assert real.get_json()["data"] == {**dry.get_json()["data"], "dryRun": False}  # Acme only
    assert again.get_json()["data"]["usersAffected"] == 0
    platform_wide = everyone.get_json()["data"]  # a platform operator: every company; Ana is done
    assert platform_wide["expirationsByUser"] == [
        {"userId": bob, "userName": "Bob", "coinsExpired": 25, "transactions": 1}
    ]
    with db.session_scope() as session:
        assert wallets.get_balances(session, ana) == (100, 0)


def test_expiration_report_windows_and_scope(client, make_tenant, make_user, settings):
    acme = make_tenant("Acme")
    other = make_tenant("Other", super_admin=True)  # a platform operator
    _, acme_admin = make_user(acme.company_id, role="Company Admin")
    soon = _credit(acme.company_id, "soon@acme.test", "Soon", 10, timedelta(days=10))
    later = _credit(acme.company_id, "later@acme.test", "Later", 30, timedelta(days=60))
    _credit(acme.company_id, "far@acme.test", "Far", 99, timedelta(days=200))
    _credit(other.company_id, "x@other.test", "X", 77, timedelta(days=5))

    report = client.get("/admin/wallet-management/expiration-report", headers=acme.headers(acme_admin))
    assert report.status_code == 200
    body = report.get_json()
    assert body["success"] is True and body["message"]
    data = body["data"]
    assert data["next30Days"] == {"users": 1, "coins": 10}
    assert data["next90Days"] == {"users": 2, "coins": 40}
    assert [(d["userId"], d["coinsExpiring"]) for d in data["details"]] == [(later, 30), (soon, 10)]
    assert data["details"][0]["earliestExpiration"].endswith("Z")

    narrow = client.get(
        "/admin/wallet-management/expiration-report?days=30", headers=acme.headers(acme_admin)
    )
    assert [d["userId"] for d in narrow.get_json()["data"]["details"]] == [soon]
    wide = client.get("/admin/wallet-management/expiration-report?days=365", headers=acme.headers(acme_admin))
    assert len(wide.get_json()["data"]["details"]) == 3
    operator = client.get("/admin/wallet-management/expiration-report", headers=other.headers())
    assert operator.get_json()["data"]["next30Days"] == {"users": 2, "coins": 87}  # every company
    for bad in ("0", "366", "soon"):
        response = client.get(
            f"/admin/wallet-management/expiration-report?days={bad}", headers=acme.headers()
        )
        assert response.status_code == 400 and response.get_json()["message"]
