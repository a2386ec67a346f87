"""A replay of the employee app's calls, in the contract's order, reading exactly what the UI reads:
login → verify (minimal, full) → balance → values → receivers → send → history → feed →
transactions → refresh."""

from __future__ import annotations

from datetime import timedelta

from app import db
from app.auth import issue_access_token
from app.db import utcnow
from app.features.auth import service as auth
from app.features.users import onboarding
from tests.recognition_helpers import add_value, assert_ledger_consistent

PASSWORD = "correct horse battery"


def _iso(moment) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # JS toISOString()


def test_employee_praise_flow_replay(client, make_tenant):
    tenant = make_tenant("Acme")
    with db.session_scope() as session:
        employee = onboarding.create_user(session, tenant.company_id, "bia@acme.test", "Bia Lima")
        auth.set_password(session, employee, PASSWORD)
        colleague = onboarding.create_user(session, tenant.company_id, "caio@acme.test", "Caio Reis")
        employee_id, colleague_id = employee.id, colleague.id
    value_id = add_value(
        tenant.company_id,
        "Colaboração",
        description="Juntos",
        example="Ajudou",
        icon_name="users",
        icon_color="#00D959",
    )

    # login (the stale bearer the UI may still send must be ignored on a public route)
    login = client.post(
        "/auth/login",
        json={"email": "bia@acme.test", "password": PASSWORD},
        headers={"Authorization": "Bearer stale.token.value"},
    )
    assert login.status_code == 200, login.json
    assert login.json["success"] is True
    data = login.json["data"]
    access, refresh, info = data["access_token"], data["refresh_token"], data["user_info"]
    assert info["sub"] == employee_id and info["companyId"] == tenant.company_id
    headers = {"Authorization": f"Bearer {access}"}

    minimal = client.get("/auth/verify", query_string={"minimal": "true"}, headers=headers).json
    assert minimal["success"] and minimal["data"]["isValid"] is True
    full = client.get("/auth/verify", headers=headers).json
    user = full["data"]["user"]
    assert (user["sub"], user["email"], user["name"], user["companyId"]) == (
        employee_id,
        "bia@acme.test",
        "Bia Lima",
        tenant.company_id,
    )
    assert "avatar" in user and user["isActive"] is True

    balance = client.get("/wallets/balance", headers=headers)
    assert balance.status_code == 200
    assert (balance.json["complimentBalance"], balance.json["redeemableBalance"]) == (100, 0)
    expiring = balance.json["expiringCoins"]
    assert (expiring["next30Days"], expiring["next90Days"], expiring["urgentExpiration"]) == (0, 0, False)

    values = client.get(f"/companies/{user['companyId']}/values", headers=headers)
    assert values.status_code == 200 and isinstance(values.json, list)
    (value,) = values.json
    assert {k: value[k] for k in ("id", "title", "description", "iconName", "iconColor", "example")} == {
        "id": value_id,
        "title": "Colaboração",
        "description": "Juntos",
        "iconName": "users",
        "iconColor": "#00D959",
        "example": "Ajudou",
    }

    receivers = client.get("/compliments/list-receivable-users", headers=headers).json["users"]
    target = next(u for u in receivers if u["name"] == "Caio Reis")
    assert target["id"] == colleague_id and "avatar" in target and target["email"] == "caio@acme.test"

    message = "Valeu pela parceria no projeto novo, fez toda a diferença!"
    sent = client.post(
        "/compliments/send-compliment",
        json={"receiverId": target["id"], "valueId": int(value["id"]), "coins": 25, "message": message},
        headers=headers,
    )
    assert sent.status_code == 201, sent.json

    history = client.get("/compliments/history", query_string={"type": "sent"}, headers=headers)
    assert history.status_code == 200
    (item,) = history.json["compliments"]
    assert (item["sender"]["name"], item["receiver"]["name"]) == ("Bia Lima", "Caio Reis")
    assert "avatar" in item["sender"] and "avatar" in item["receiver"]
    assert (item["message"], item["companyValue"]["title"], item["coins"]) == (message, "Colaboração", 25)
    assert item["id"] and item["createdAt"].endswith("Z")
    received = client.get("/compliments/history", query_string={"type": "received"}, headers=headers).json
    assert received["compliments"] == []

    feed = client.get("/compliments/feed", headers=headers)
    assert feed.status_code == 200
    (post,) = feed.json
    assert post["timeAgo"] == "agora mesmo"
    assert (post["sender"]["name"], post["receiver"]["name"], post["coins"]) == ("Bia Lima", "Caio Reis", 25)
    assert post["companyValue"]["title"] == "Colaboração" and post["message"] == message

    now = utcnow()
    page = client.get(
        "/wallets/transactions",
        query_string={
            "limit": "20",
            "offset": "0",
            "fromDate": _iso(now - timedelta(days=31)),
            "toDate": _iso(now),
        },
        headers=headers,
    )
    assert page.status_code == 200
    newest = page.json["transactions"][0]
    assert (newest["transactionType"], newest["balanceType"], newest["amount"]) == ("DEBIT", "COMPLIMENT", 25)
    assert newest["metadata"]["receiverName"] == "Caio Reis"
    assert "compliment" in newest["reason"].lower()
    assert page.json["pagination"] == {"total": 2, "limit": 20, "offset": 0, "hasMore": False}
    praises = client.get(
        "/wallets/transactions?limit=20&offset=0&balanceType=COMPLIMENT", headers=headers
    ).json
    assert [t["transactionType"] for t in praises["transactions"]] == ["DEBIT", "RESET"]

    # the colleague sees the coins arrive
    colleague_headers = {"Authorization": f"Bearer {issue_access_token(colleague_id, tenant.company_id)}"}
    theirs = client.get(
        "/wallets/transactions?limit=20&transactionType=CREDIT", headers=colleague_headers
    ).json
    assert theirs["transactions"][0]["metadata"]["senderName"] == "Bia Lima"
    assert client.get("/wallets/balance", headers=colleague_headers).json["redeemableBalance"] == 25
    assert (
        client.get("/compliments/history?type=received", headers=colleague_headers).json["compliments"][0][
            "coins"
        ]
        == 25
    )

    # refresh: plain call, no bearer; both tokens come back and the new access token works
    refreshed = client.post("/auth/refresh", json={"refresh_token": refresh})
    assert refreshed.status_code == 200 and refreshed.json["success"] is True
    new_access, new_refresh = refreshed.json["data"]["access_token"], refreshed.json["data"]["refresh_token"]
    assert new_refresh and new_refresh != refresh
    after = client.get("/wallets/balance", headers={"Authorization": f"Bearer {new_access}"})
    assert after.status_code == 200 and after.json["complimentBalance"] == 75
    assert_ledger_consistent()
