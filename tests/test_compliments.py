"""Compliments: the praise flow, its validation, tenant isolation and concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import db
from app.db import utcnow
from app.features.compliments import service as compliments
from app.features.identity.models import Department, User
from app.features.values import service as values
from app.features.wallets.models import WalletTransaction
from tests.recognition_helpers import add_value, assert_ledger_consistent, balances, set_allowance, snapshot

MESSAGE = "Obrigado pela ajuda no deploy!"


@pytest.fixture
def team(make_tenant, make_user):
    """A company with a sender, a receiver and an active value; another company beside it."""
    acme = make_tenant("Acme")
    sender_id, sender_token = make_user(acme.company_id)
    receiver_id, _ = make_user(acme.company_id)
    value_id = add_value(acme.company_id, "Ownership", icon_name="lightbulb", icon_color="#00D959")
    other = make_tenant("Other")
    return {
        "acme": acme,
        "sender": sender_id,
        "headers": acme.headers(sender_token),
        "receiver": receiver_id,
        "value": value_id,
        "other": other,
    }


def _send(client, team, **overrides):
    body = {"receiverId": team["receiver"], "valueId": team["value"], "coins": 10, "message": MESSAGE}
    body.update(overrides)
    return client.post("/compliments/send-compliment", json=body, headers=team["headers"])


def test_send_compliment_moves_coins_and_writes_two_ledger_rows(client, team):
    response = _send(client, team, coins=15, extra="ignored")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["message"] == "Compliment sent successfully!"
    record = body["compliment"]
    assert record["senderId"] == team["sender"] and record["receiverId"] == team["receiver"]
    assert (record["valueId"], record["coins"], record["message"], record["isPublic"]) == (
        team["value"],
        15,
        MESSAGE,
        True,
    )
    assert record["companyId"] == team["acme"].company_id
    assert record["data"]["id"] == record["id"]  # where the previous API put the record
    assert balances(team["sender"]) == (85, 0)
    assert balances(team["receiver"]) == (100, 15)

    with db.session_scope() as session:
        rows = session.scalars(
            select(WalletTransaction)
            .where(WalletTransaction.transaction_type != "RESET")
            .order_by(WalletTransaction.seq)
        ).all()
        debit, credit = rows
        assert (debit.transaction_type, debit.balance_type, debit.amount) == ("DEBIT", "COMPLIMENT", 15)
        assert debit.reason == "Compliment sent to User"
        assert debit.metadata_ == {
            "complimentId": record["id"],
            "receiverId": team["receiver"],
            "receiverName": "User",
            "valueId": team["value"],
            "message": MESSAGE,
        }
        assert (credit.transaction_type, credit.balance_type, credit.amount) == ("CREDIT", "REDEEMABLE", 15)
        assert credit.reason == "Compliment received from User"
        assert credit.metadata_["senderId"] == team["sender"] and credit.metadata_["senderName"] == "User"
        assert credit.remaining_amount == 15 and credit.expires_at is not None
    assert_ledger_consistent()


def test_message_preview_in_the_ledger_is_capped(client, team):
    assert _send(client, team, message="x" * 300).status_code == 201
    with db.session_scope() as session:
        metadata = session.scalars(
            select(WalletTransaction.metadata_).where(WalletTransaction.transaction_type == "DEBIT")
        ).one()
    assert metadata["message"] == "x" * 100


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"coins": 3}, "coins"),
        ({"coins": 7}, "coins"),
        ({"coins": 105}, "coins"),
        ({"coins": 0}, "coins"),
        ({"coins": -5}, "coins"),
        ({"coins": 10.5}, "coins"),
        ({"coins": "ten"}, "coins"),
        ({"coins": None}, "coins"),
        ({"coins": True}, "coins"),
        ({"coins": "10.5"}, "coins"),
        ({"message": "x" * 9}, "message"),
        ({"message": "x" * 501}, "message"),
        ({"message": " " * 12}, "message"),
        ({"message": 12345678901}, "message"),
        ({"valueId": "abc"}, "valueId"),
        ({"valueId": 2**40}, "valueId"),
        ({"receiverId": 42}, "receiverId"),
        ({"receiverId": None}, "receiverId"),
    ],
)
def test_schema_violations_are_400_and_change_nothing(client, team, overrides, fragment):
    before = snapshot()
    response = _send(client, team, **overrides)
    assert response.status_code == 400, response.json
    assert fragment in response.json["message"]
    assert snapshot() == before


@pytest.mark.parametrize("missing", ["receiverId", "valueId", "coins", "message"])
def test_missing_fields_are_400(client, team, missing):
    body = {"receiverId": team["receiver"], "valueId": team["value"], "coins": 10, "message": MESSAGE}
    del body[missing]
    before = snapshot()
    response = client.post("/compliments/send-compliment", json=body, headers=team["headers"])
    assert response.status_code == 400 and missing in response.json["message"]
    assert snapshot() == before


def test_business_rule_violations_are_400_and_change_nothing(client, team, make_user):
    acme, other = team["acme"], team["other"]
    other_user, _ = make_user(other.company_id)
    other_value = add_value(other.company_id, "Theirs")
    inactive = add_value(acme.company_id, "Retired")
    with db.session_scope() as session:
        values.deactivate_value(session, acme.company_id, inactive)
        inactive_user = session.get(User, make_user(acme.company_id)[0])
        inactive_user.is_active = False
        inactive_user_id = inactive_user.id
    set_allowance(team["sender"], acme.company_id, 10)
    before = snapshot()

    cases = [
        ({"receiverId": team["sender"]}, "yourself"),
        ({"receiverId": other_user}, "active user of your company"),
        ({"receiverId": other.admin_id}, "active user of your company"),
        ({"receiverId": inactive_user_id}, "active user of your company"),
        ({"receiverId": "does-not-exist"}, "active user of your company"),
        ({"valueId": inactive}, "inactive"),
        ({"valueId": other_value}, "inactive"),
        ({"valueId": 999999}, "inactive"),
        ({"coins": 15}, "Insufficient compliment balance"),
    ]
    for overrides, fragment in cases:
        response = _send(client, team, **overrides)
        assert response.status_code == 400, (overrides, response.json)
        assert fragment in response.json["message"], (overrides, response.json)
        assert snapshot() == before, overrides
    assert _send(client, team, coins=10).status_code == 201  # exactly the balance is fine
    assert balances(team["sender"]) == (0, 0)
    assert_ledger_consistent()


def test_sending_needs_praise_send(client, team, make_user):
    _, token = make_user(team["acme"].company_id, role="Employee")
    with db.session_scope() as session:
        from app.features.identity.models import Role

        role = session.scalars(
            select(Role).where(Role.company_id == team["acme"].company_id, Role.name == "Employee")
        ).one()
        role.permissions = [p for p in role.permissions if p.name != "praise:send"]
    before = snapshot()
    response = client.post(
        "/compliments/send-compliment",
        json={"receiverId": team["receiver"], "valueId": team["value"], "coins": 10, "message": MESSAGE},
        headers=team["acme"].headers(token),
    )
    assert response.status_code == 403
    assert "praise:send" in response.json["message"]
    assert snapshot() == before
    assert client.post("/compliments/send-compliment", json={}).status_code == 401


def test_twenty_concurrent_compliments_from_one_sender_exactly_five_succeed(app, team, make_user):
    acme = team["acme"]
    receivers = [team["receiver"], *(make_user(acme.company_id)[0] for _ in range(3))]
    set_allowance(team["sender"], acme.company_id, 25)
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        try:
            client = app.test_client()
            body = {
                "receiverId": receivers[index % 4],
                "valueId": team["value"],
                "coins": 5,
                "message": MESSAGE,
            }
            barrier.wait(timeout=30)
            response = client.post("/compliments/send-compliment", json=body, headers=team["headers"])
            with lock:
                statuses.append(response.status_code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(statuses) == [201] * 5 + [400] * 15
    assert balances(team["sender"]) == (0, 0)
    assert sum(balances(r)[1] for r in receivers) == 25
    with db.session_scope() as session:
        debits = session.scalars(
            select(WalletTransaction).where(WalletTransaction.transaction_type == "DEBIT")
        ).all()
        assert len(debits) == 5
    assert_ledger_consistent()


def test_crossed_concurrent_compliments_do_not_deadlock(app, team, make_user):
    """A→B and B→A at the same time: wallets are locked in one order, so nobody deadlocks."""
    acme = team["acme"]
    b_id, b_token = make_user(acme.company_id)  # no wallet yet: created lazily, concurrently
    pairs = [(team["headers"], b_id), (acme.headers(b_token), team["sender"])] * 10
    barrier = threading.Barrier(len(pairs))
    statuses: list[int] = []

    def send(headers, receiver):
        client = app.test_client()
        barrier.wait(timeout=30)
        response = client.post(
            "/compliments/send-compliment",
            json={"receiverId": receiver, "valueId": team["value"], "coins": 5, "message": MESSAGE},
            headers=headers,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [201] * 20
    assert balances(team["sender"]) == (50, 50)
    assert balances(b_id) == (50, 50)
    assert_ledger_consistent()


def test_receivable_users_are_active_colleagues_without_the_caller(client, team, make_user):
    acme = team["acme"]
    inactive_id, _ = make_user(acme.company_id)
    with db.session_scope() as session:
        session.get(User, inactive_id).is_active = False
    response = client.get("/compliments/list-receivable-users", headers=team["headers"])
    assert response.status_code == 200
    users = response.json["users"]
    assert {u["id"] for u in users} == {acme.admin_id, team["receiver"]}
    assert set(users[0]) == {"id", "name", "email", "avatar"}


def test_company_values_only_for_the_callers_company(client, team):
    acme, other = team["acme"], team["other"]
    add_value(other.company_id, "Theirs")
    inactive = add_value(acme.company_id, "Retired")
    with db.session_scope() as session:
        values.deactivate_value(session, acme.company_id, inactive)
    response = client.get(f"/companies/{acme.company_id}/values", headers=team["headers"])
    assert response.status_code == 200
    (value,) = response.json
    assert value == {
        "id": team["value"],
        "companyId": acme.company_id,
        "title": "Ownership",
        "description": None,
        "example": None,
        "iconName": "lightbulb",
        "iconColor": "#00D959",
        "order": 1,
        "isActive": True,
        "createdAt": value["createdAt"],
        "updatedAt": value["updatedAt"],
    }
    assert client.get(f"/companies/{other.company_id}/values", headers=team["headers"]).status_code == 404
    assert client.get("/companies/nope/values", headers=team["headers"]).status_code == 404
    assert client.get(f"/companies/{acme.company_id}/values").status_code == 401


def test_history_sent_and_received(client, team, make_user):
    acme = team["acme"]
    for coins in (5, 10, 15):
        assert _send(client, team, coins=coins).status_code == 201
    other_id, other_token = make_user(acme.company_id)
    client.post(
        "/compliments/send-compliment",
        json={"receiverId": team["sender"], "valueId": team["value"], "coins": 20, "message": MESSAGE},
        headers=acme.headers(other_token),
    )

    sent = client.get("/compliments/history?type=sent", headers=team["headers"]).json
    assert [c["coins"] for c in sent["compliments"]] == [15, 10, 5]  # newest first
    assert sent["metainfo"] == {
        "currentPage": 1,
        "totalPages": 1,
        "totalCount": 3,
        "hasNextPage": False,
        "hasPreviousPage": False,
    }
    item = sent["compliments"][0]
    assert item["sender"] == {
        "id": team["sender"],
        "name": "User",
        "email": item["sender"]["email"],
        "avatar": None,
    }
    assert item["receiver"]["id"] == team["receiver"]
    assert item["companyValue"] == {
        "id": team["value"],
        "title": "Ownership",
        "description": None,
        "iconName": "lightbulb",
        "iconColor": "#00D959",
    }
    assert item["createdAt"].endswith("Z")

    received = client.get("/compliments/history?type=received", headers=team["headers"]).json
    assert [(c["coins"], c["sender"]["id"]) for c in received["compliments"]] == [(20, other_id)]

    page2 = client.get("/compliments/history?type=sent&page=2&limit=2", headers=team["headers"]).json
    assert [c["coins"] for c in page2["compliments"]] == [5]
    assert page2["metainfo"]["hasPreviousPage"] is True and page2["metainfo"]["totalPages"] == 2

    for query in ("", "?type=all", "?type=sent&limit=0", "?type=sent&limit=101", "?type=sent&page=0"):
        response = client.get(f"/compliments/history{query}", headers=team["headers"])
        assert response.status_code == 400, query
        assert response.json["message"]


def test_history_and_feed_never_show_another_company(client, team, make_user):
    other = team["other"]
    other_user, _ = make_user(other.company_id)
    with db.session_scope() as session:
        compliments.send_compliment(
            session,
            company_id=other.company_id,
            sender_id=other.admin_id,
            receiver_id=other_user,
            value_id=add_value(other.company_id, "Theirs"),
            coins=5,
            message=MESSAGE,
        )
    assert client.get("/compliments/feed", headers=team["headers"]).json == []
    assert client.get("/compliments/history?type=sent", headers=team["headers"]).json["compliments"] == []
    assert len(client.get("/compliments/feed", headers=other.headers()).json) == 1


def test_feed_lists_the_latest_ten_public_compliments_with_departments(client, team):
    acme = team["acme"]
    now = utcnow()
    with db.session_scope() as session:
        department = Department(company_id=acme.company_id, name="Engenharia")
        session.add(department)
        session.flush()
        session.get(User, team["sender"]).department_id = department.id
        set_coins = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
    set_allowance(team["sender"], acme.company_id, 500)
    with db.session_scope() as session:
        for index, coins in enumerate(set_coins):
            compliments.send_compliment(
                session,
                company_id=acme.company_id,
                sender_id=team["sender"],
                receiver_id=team["receiver"],
                value_id=team["value"],
                coins=coins,
                message=MESSAGE,
                is_public=coins != 60,
                now=now - timedelta(hours=len(set_coins) - index),
            )
    feed = client.get("/compliments/feed", headers=team["headers"]).json
    assert [item["coins"] for item in feed] == [55, 50, 45, 40, 35, 30, 25, 20, 15, 10]
    first = feed[0]
    assert set(first) == {
        "id",
        "coins",
        "message",
        "sender",
        "receiver",
        "companyValue",
        "createdAt",
        "timeAgo",
    }
    assert first["sender"] == {
        "id": team["sender"],
        "name": "User",
        "avatar": None,
        "department": "Engenharia",
    }
    assert first["receiver"]["department"] is None
    assert first["companyValue"] == {
        "id": team["value"],
        "title": "Ownership",
        "iconName": "lightbulb",
        "iconColor": "#00D959",
    }
    assert first["timeAgo"] == "há 2 horas"
    assert feed[-1]["timeAgo"] == "há 11 horas"
