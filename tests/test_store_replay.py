"""The frontend's calls for the store screens (contract §S1-§S6), in the screens' order, reading what
the UI reads: the employee store and orders, addresses, the admin prize, voucher and redemption
screens, the Economy page and the operator's fund and plan routes."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from app import db
from app.features.economy import service as economy
from tests import store_helpers
from tests.recognition_helpers import assert_ledger_consistent
from tests.store_helpers import add_product, add_voucher, bearer, deposit, give_coins

documented = store_helpers.documented  # fixture: every store answer is checked against /openapi.json
pytestmark = pytest.mark.usefixtures("documented")

ADDRESS = {
    "name": "Casa",
    "street": "Rua Augusta",
    "number": "100",
    "complement": "",
    "neighborhood": "Consolação",
    "city": "São Paulo",
    "state": "sp",
    "zipCode": "01305-000",
    "country": "BR",
    "phone": "(11) 98765-4321",
}


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_admin_builds_the_catalogue_and_an_employee_redeems_and_cancels(
    client, make_tenant, make_user, worker
):
    tenant = make_tenant("Acme")
    admin = tenant.headers()
    user_id, token = make_user(tenant.company_id, email="bia@acme.test")
    give_coins(user_id, tenant.company_id, 2000)
    me = bearer(token)

    # Admin: PrizeNewPage (type "produto"), images upload, list with offset/total, toggle.
    created = client.post(
        "/admin/prizes",
        json={
            "name": "Camiseta",
            "description": "Algodão",
            "category": "Vestuário",
            "type": "produto",
            "brand": "Valorize",
            "coinPrice": 300,
            "stock": 5,
            "isActive": True,
            "specifications": {"Material": "Algodão"},
        },
        headers=admin,
    )
    assert created.status_code == 201, created.json
    prize = created.json["prize"]
    assert (prize["type"], prize["companyId"], prize["images"]) == ("product", tenant.company_id, [])
    upload = client.post(
        f"/admin/prizes/{prize['id']}/images",
        data={"images": [(io.BytesIO(_png()), "a.png", "image/png")]},
        headers=admin,
        content_type="multipart/form-data",
    )
    assert upload.status_code == 200, upload.json
    [image_url] = upload.json["images"]
    image = client.get(image_url.replace("http://localhost", ""))
    assert image.status_code == 200 and image.mimetype == "image/png"
    bad = client.post(
        f"/admin/prizes/{prize['id']}/images",
        data={"images": [(io.BytesIO(b"<svg/>"), "a.png", "image/png")]},
        headers=admin,
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400
    listing = client.get(
        "/admin/prizes",
        query_string={"limit": 20, "offset": 0, "orderBy": "createdAt", "order": "desc", "type": "produto"},
        headers=admin,
    ).json
    assert listing["total"] == 1 and listing["prizes"][0]["id"] == prize["id"]
    assert (
        client.patch(f"/admin/prizes/{prize['id']}", json={"isActive": True}, headers=admin).status_code
        == 200
    )
    edited = client.patch(
        f"/admin/prizes/{prize['id']}", json={"name": "Camiseta Valorize", "type": "produto"}, headers=admin
    )
    assert edited.json["prize"]["name"] == "Camiseta Valorize"

    # Employee: home widget, catalogue page, categories, detail.
    widget = client.get(
        "/prizes/catalog", query_string={"page": 1, "pageSize": 4, "sortBy": "popular"}, headers=me
    )
    assert widget.status_code == 200
    assert {"prizes", "total", "page", "pageSize"} <= set(widget.json)
    newest = client.get(
        "/prizes/catalog", query_string={"sortBy": "newest", "minPrice": 0, "maxPrice": 500}, headers=me
    )
    assert [p["id"] for p in newest.json["prizes"]] == [prize["id"]]
    item = newest.json["prizes"][0]
    assert {
        "id",
        "name",
        "description",
        "category",
        "type",
        "brand",
        "coinPrice",
        "images",
        "stock",
        "specifications",
        "variants",
    } <= set(item)
    assert client.get("/prizes/categories", headers=me).json == {"categories": ["Vestuário"]}
    assert (
        client.get(f"/prizes/catalog/{prize['id']}", headers=me).json["prize"]["name"] == "Camiseta Valorize"
    )

    # Settings → Endereços: create (masked values), list, edit, set default, limit of 3.
    address = client.post("/addresses", json=ADDRESS, headers=me)
    assert address.status_code == 201, address.json
    a = address.json["address"]
    assert (a["zipCode"], a["state"], a["phone"], a["complement"], a["isDefault"]) == (
        "01305000",
        "SP",
        "11987654321",
        None,
        True,
    )
    assert client.post("/addresses", json={**ADDRESS, "zipCode": "123"}, headers=me).status_code == 400
    second = client.post("/addresses", json={**ADDRESS, "name": "Trabalho"}, headers=me).json["address"]
    client.post("/addresses", json={**ADDRESS, "name": "Praia"}, headers=me)
    over = client.post("/addresses", json={**ADDRESS, "name": "Quarta"}, headers=me)
    assert over.status_code == 400 and over.json["message"] == "User cannot have more than 3 addresses"
    hijack = client.put(
        f"/addresses/{second['id']}", json={**ADDRESS, "name": "Escritório", "userId": "someone"}, headers=me
    )
    assert hijack.status_code == 200 and hijack.json["address"]["userId"] == user_id
    assert client.post(f"/addresses/{second['id']}/set-default", headers=me).json == {
        "message": "Default address updated successfully"
    }
    listed = client.get("/addresses", headers=me).json["addresses"]
    assert listed[0]["id"] == second["id"] and listed[0]["isDefault"] is True

    # PrizeConfirmationPage → redeem; RedemptionsPage with filters; detail; cancel.
    redeemed = client.post(
        "/redemptions/redeem", json={"prizeId": prize["id"], "addressId": second["id"]}, headers=me
    )
    assert redeemed.status_code == 201, redeemed.json
    rid = redeemed.json["redemption"]["id"]
    page = client.get(
        "/redemptions/my-redemptions",
        query_string={"limit": 12, "offset": 0, "status": "PENDING", "search": "camis"},
        headers=me,
    ).json
    assert page["meta"] == {"limit": 12, "offset": 0, "count": 1}
    row = page["redemptions"][0]
    assert (row["status"], row["coinsSpent"], row["prize"]["name"], row["prize"]["type"]) == (
        "pending",
        300,
        "Camiseta Valorize",
        "product",
    )
    assert row["redeemedAt"].endswith("Z") and row["tracking"][0]["status"] == "pending"
    none = client.get("/redemptions/my-redemptions", query_string={"status": "delivered"}, headers=me).json
    assert none["redemptions"] == []
    detail = client.get(f"/redemptions/my-redemptions/{rid}", headers=me).json["redemption"]
    assert detail["prize"]["description"] == "Algodão" and detail["prize"]["image"] == image_url

    # Admin: RedemptionsPage, detail with address snapshot, status, tracking, notes, metrics.
    admin_list = client.get(
        "/admin/redemptions",
        query_string={"limit": 20, "offset": 0, "status": "pending", "search": "bia"},
        headers=admin,
    ).json
    assert admin_list["pagination"]["total"] == 1
    item = admin_list["data"][0]
    assert (item["prizeType"], item["type"], item["userEmail"], item["status"]) == (
        "product",
        "physical",
        "bia@acme.test",
        "pending",
    )
    shown = client.get(f"/admin/redemptions/{rid}", headers=admin).json
    assert (
        shown["type"] == "physical"
        and shown["address"]["zipCode"] == "01305000"
        and shown["user"]["email"] == "bia@acme.test"
    )
    moved = client.patch(
        f"/admin/redemptions/{rid}/status", json={"status": "processing", "notes": "Separando"}, headers=admin
    )
    assert moved.status_code == 200 and moved.json["redemption"]["status"] == "processing"
    back = client.patch(f"/admin/redemptions/{rid}/status", json={"status": "pending"}, headers=admin)
    assert back.status_code == 409
    tracked = client.patch(
        f"/admin/redemptions/{rid}/tracking",
        json={"trackingCode": "BR1", "carrier": "Correios"},
        headers=admin,
    )
    assert tracked.json["trackingCode"] == "BR1" and tracked.json["carrier"] == "Correios"
    assert (
        client.post(
            f"/admin/redemptions/{rid}/notes", json={"note": "Cliente avisado"}, headers=admin
        ).status_code
        == 200
    )
    history = client.get(f"/admin/redemptions/{rid}", headers=admin).json["tracking"]
    assert any(t["notes"].startswith("[TRACKING]") for t in history if t["notes"])
    assert any(t["notes"] == "[ADMIN NOTE] Cliente avisado" for t in history if t["notes"])
    metrics = client.get("/admin/redemptions/metrics", headers=admin).json
    assert metrics["volume"]["totalRedemptions"] == 1 and metrics["financialImpact"]["physicalCost"] == 18.0
    assert {"statusBreakdown", "typeBreakdown", "topPrizes", "userEngagement"} <= set(metrics)

    # The employee cancels: 200 with the refund; the admin's cancel now answers 400.
    cancelled = client.post(
        f"/redemptions/my-redemptions/{rid}/cancel", json={"reason": "mudei de ideia"}, headers=me
    )
    assert cancelled.status_code == 200 and cancelled.json["coinsRefunded"] == 300
    assert client.delete(f"/admin/redemptions/{rid}/cancel", json={}, headers=admin).status_code == 400
    assert client.delete(f"/admin/prizes/{prize['id']}", headers=admin).json == {
        "message": "Prize deleted successfully"
    }
    assert client.get(f"/prizes/catalog/{prize['id']}", headers=me).status_code == 404
    assert_ledger_consistent()


def test_vouchers_page_economy_page_and_operator_routes(client, make_tenant, make_user, worker):
    tenant = make_tenant("Acme")
    operator = make_tenant("Valorize HQ", super_admin=True)
    admin = tenant.headers()
    user_id, _ = make_user(tenant.company_id, email="caio@acme.test")

    # Operator: plan and deposit (wallet-history is PROFESSIONAL only).
    history = client.get("/admin/dashboard/economy/wallet-history", query_string={"limit": 20}, headers=admin)
    assert history.status_code == 403 and history.json["error"]["code"] == "PLAN_RESTRICTION"
    assert (
        client.patch(
            f"/backoffice/companies/{tenant.company_id}/plan",
            json={"planType": "PROFESSIONAL"},
            headers=admin,
        ).status_code
        == 403
    )
    plan = client.patch(
        f"/backoffice/companies/{tenant.company_id}/plan",
        json={"planType": "PROFESSIONAL"},
        headers=operator.headers(),
    )
    assert plan.status_code == 200 and plan.json["data"]["planType"] == "PROFESSIONAL"
    credit = client.post(
        f"/backoffice/companies/{tenant.company_id}/wallet/credits",
        json={"amount": 500.0, "reason": "Depósito de teste"},
        headers=operator.headers(),
    )
    assert credit.status_code == 201 and credit.json["data"]["balance"] == 500.0

    # Admin VouchersPage: sync (operator only), list, detail, send-to-user.
    assert client.post("/admin/voucher-products/sync", headers=admin).status_code == 403
    sync = client.post("/admin/voucher-products/sync", headers=operator.headers())
    assert sync.status_code == 202 and sync.json["result"] == {"synced": 0, "deactivated": 0, "total": 0}
    worker()
    products = client.get(
        "/admin/voucher-products", query_string={"isActive": "true", "limit": 1000}, headers=admin
    ).json
    assert products["success"] is True and products["total"] == 5  # the local demo catalogue
    product = products["items"][0]
    assert product["prizeId"] and product["currency"] == "BRL" and product["minValue"] > 0
    assert (
        client.get(f"/admin/voucher-products/{product['id']}", headers=admin).json["product"]["id"]
        == product["id"]
    )
    sent = client.post(
        "/admin/redemptions/send-to-user",
        json={
            "userId": user_id,
            "email": "caio@acme.test",
            "prizeId": product["id"],
            "customAmount": product["minValue"],
        },
        headers=admin,
    )
    assert sent.status_code == 202 and sent.json["status"] == "processing"
    out_of_range = client.post(
        "/admin/redemptions/send-to-user",
        json={"userId": user_id, "email": "caio@acme.test", "prizeId": product["id"], "customAmount": 0.01},
        headers=admin,
    )
    assert out_of_range.status_code == 400 and out_of_range.json["message"].startswith(
        "Amount must be between"
    )
    worker()
    shown = client.get(f"/admin/redemptions/{sent.json['redemptionId']}", headers=admin).json
    assert shown["status"] == "sent" and shown["type"] == "voucher"
    assert shown["voucherRedemption"]["voucherCode"].startswith("DEMO-")
    assert (
        client.patch(
            f"/admin/redemptions/{shown['id']}/status", json={"status": "delivered"}, headers=admin
        ).status_code
        == 409
    )

    # EconomyPage: the dashboard and the wallet history, from the ledgers.
    board = client.get("/admin/dashboard/economy", headers=admin).json
    spent = round(product["minValue"], 2)
    assert board["wallet_balance"]["total_loaded"] == 500.0
    assert board["wallet_balance"]["total_spent"] == spent
    assert board["wallet_balance"]["available_balance"] == round(500.0 - spent, 2)
    assert board["prize_fund"]["avg_monthly_consumption"] == spent
    for key in ("redeemable_coins", "compliment_engagement", "redemption_rate", "alerts", "deposit_history"):
        assert key in board
    [deposit] = board["deposit_history"]
    assert (
        deposit["amount"] == 500.0
        and deposit["resulting_balance"] == 500.0
        and deposit["deposited_at"].endswith("Z")
    )
    history = client.get(
        "/admin/dashboard/economy/wallet-history", query_string={"limit": 20}, headers=admin
    ).json
    assert history["total"] == 1 and len(history["deposits"]) == 1
    with db.session_scope() as session:
        acct = economy.account(session, tenant.company_id)
        assert economy.ledger_sum(session, tenant.company_id) == acct.balance_cents


@pytest.mark.slow
def test_seeded_demo_store_is_consistent(app, client, worker):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "store:" in result.output
    worker()
    login = client.post("/auth/login", json={"email": "ana.souza@valorize.demo", "password": "valorize-demo"})
    headers = bearer(login.json["data"]["access_token"])
    statuses = {r["status"] for r in client.get("/admin/redemptions", headers=headers).json["data"]}
    assert {"pending", "shipped", "delivered", "cancelled", "sent"} <= statuses
    assert client.get("/admin/dashboard/economy/wallet-history", headers=headers).status_code == 200
    catalogue = client.get("/prizes/catalog", headers=headers).json["prizes"]
    assert {p["type"] for p in catalogue} == {"product", "voucher"}
    assert_ledger_consistent()


def test_voucher_prize_made_from_a_product_can_be_redeemed(client, make_tenant, make_user, worker):
    tenant = make_tenant("Acme")
    product_id, _ = add_voucher(None, provider="local", external_id="LOCAL-UBER", value_cents=2000)
    made = client.post(
        "/admin/prizes",
        json={
            "name": "Uber R$ 20",
            "description": "Créditos",
            "category": "voucher",
            "type": "voucher",
            "coinPrice": 350,
            "stock": 10,
            "isActive": True,
            "images": [],
            "voucherProductId": product_id,
        },
        headers=tenant.headers(),
    )
    assert made.status_code == 201, made.json
    user_id, token = make_user(tenant.company_id)
    give_coins(user_id, tenant.company_id, 400)
    answer = client.post(
        "/redemptions/redeem", json={"prizeId": made.json["prize"]["id"]}, headers=bearer(token)
    )
    assert answer.status_code == 201, answer.json
    worker()
    rid = answer.json["redemption"]["id"]
    assert (
        client.get(f"/redemptions/my-redemptions/{rid}", headers=bearer(token)).json["redemption"]["status"]
        == "sent"
    )


def test_the_other_store_routes_answer_as_documented(client, make_tenant, make_user, documented):
    """What the screens above do not call (a prize's admin page, an address by id, removing an
    image, the admin's cancel, a bulk send, the operator's wallet and plan), each answer checked
    against /openapi.json like every other in this module."""
    tenant = make_tenant("Acme")
    operator = make_tenant("Valorize HQ", super_admin=True).headers()
    admin = tenant.headers()
    user_id, token = make_user(tenant.company_id, email="dora@acme.test")
    me = bearer(token)
    prize_id = add_product(tenant.company_id)
    assert client.get(f"/admin/prizes/{prize_id}", headers=admin).json["prize"]["id"] == prize_id
    removed = client.delete(f"/admin/prizes/{prize_id}/images/0", headers=admin)
    assert removed.status_code == 200 and removed.json["images"] == []
    address_id = client.post("/addresses", json=ADDRESS, headers=me).json["address"]["id"]
    assert client.get(f"/addresses/{address_id}", headers=me).json["address"]["id"] == address_id
    give_coins(user_id, tenant.company_id, 100)
    redeemed = client.post(
        "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=me
    )
    rid = redeemed.json["redemption"]["id"]
    cancelled = client.delete(
        f"/admin/redemptions/{rid}/cancel", json={"reason": "Sem estoque"}, headers=admin
    )
    assert cancelled.status_code == 200 and cancelled.json["refundedCoins"] == 100
    deleted = client.delete(f"/addresses/{address_id}", headers=me)
    assert deleted.json == {"message": "Address deleted successfully"}
    product_id, _ = add_voucher(None, provider="local", external_id="LOCAL-IFOOD", value_cents=2000)
    deposit(tenant.company_id, 10_000)
    queued = client.post(
        "/admin/redemptions/bulk-redeem",
        json={"prizeId": product_id, "customAmount": 20, "users": [], "allUsersSelected": True},
        headers=admin,
    )
    assert queued.status_code == 202 and queued.json["summary"]["queued"] == 2  # the admin and Dora
    wallet = client.get(f"/backoffice/companies/{tenant.company_id}/wallet", headers=operator).json["data"]
    assert wallet["balance"] == wallet["ledgerBalance"] == 60.0
    plan = client.get(f"/backoffice/companies/{tenant.company_id}/plan", headers=operator).json["data"]
    assert plan["planType"] == "ESSENTIAL"
    assert {
        "GET /admin/prizes/{prize_id} 200",
        "DELETE /admin/prizes/{prize_id}/images/{image_index} 200",
        "GET /addresses/{address_id} 200",
        "DELETE /addresses/{address_id} 200",
        "DELETE /admin/redemptions/{redemption_id}/cancel 200",
        "POST /admin/redemptions/bulk-redeem 202",
        "GET /backoffice/companies/{company_id}/wallet 200",
        "GET /backoffice/companies/{company_id}/plan 200",
    } <= set(documented)
