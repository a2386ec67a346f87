"""POST /webhooks/tremendous (rule E4): signature on the raw bytes, a delivery stored and applied
once, idempotent per (reward, event), an unknown reward retried later rather than dropped; and the
redemption e-mails, at most once per (redemption, event) (E6)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta

from app import db, runtime
from app.features.emails.models import SentEmail
from app.features.store import issuing
from app.features.vouchers.models import VoucherWebhookEvent
from app.features.vouchers.service import sign
from app.jobs import enqueue
from tests import store_helpers
from tests.email_helpers import smtp_server  # noqa: F401  (fixture)
from tests.store_helpers import (
    WEBHOOK_SECRET,
    add_address,
    add_product,
    add_voucher,
    bearer,
    count,
    give_coins,
    movements,
    redeemable,
    redemption,
    voucher,
)

tremendous = store_helpers.tremendous  # fixture
documented = store_helpers.documented  # fixture: every answer is checked against /openapi.json
URL = "/webhooks/tremendous"


def _event(kind: str, reward_id: str, event_uuid: str | None = None) -> bytes:
    body = {
        "event": kind,
        "uuid": event_uuid or str(uuid.uuid4()),
        "created_utc": "2026-11-23T12:00:00.000Z",
        "payload": {"resource": {"id": reward_id, "type": "rewards"}, "meta": {}},
    }
    return json.dumps(body).encode()


def _post(client, body: bytes, signature: str | None = None):
    headers = {"Content-Type": "application/json"}
    headers["Tremendous-Webhook-Signature"] = signature or sign(WEBHOOK_SECRET, body)
    return client.post(URL, data=body, headers=headers)


def _sent_voucher(client, make_tenant, make_user, worker) -> tuple[str, str, str]:
    tenant = make_tenant("Acme")
    user_id, token = make_user(tenant.company_id)
    give_coins(user_id, tenant.company_id, 600)
    _, prize_id = add_voucher(None)
    rid = client.post("/redemptions/redeem", json={"prizeId": prize_id}, headers=bearer(token)).json[
        "redemption"
    ]["id"]
    worker()
    issued = voucher(rid)
    assert issued.status == "sent"
    return user_id, rid, issued.provider_reward_id


def test_bad_or_missing_signature_is_401_and_stores_nothing(client, tremendous, documented):
    body = _event("REWARDS.DELIVERY.FAILED", "RWD1")
    assert _post(client, body, "sha256=" + "0" * 64).status_code == 401
    assert client.post(URL, data=body, headers={"Content-Type": "application/json"}).status_code == 401
    tampered = body.replace(b"RWD1", b"RWD2")
    assert _post(client, tampered, sign(WEBHOOK_SECRET, body)).status_code == 401
    assert count(VoucherWebhookEvent) == 0


def test_without_a_configured_secret_nothing_is_accepted(client, settings, documented):
    runtime.init(replace(runtime.settings(), tremendous_webhook_secret=None))
    body = _event("REWARDS.DELIVERY.FAILED", "RWD1")
    assert _post(client, body).status_code == 503
    assert count(VoucherWebhookEvent) == 0
    assert documented == ["POST /webhooks/tremendous 503"]


def test_a_signed_body_postgres_cannot_store_is_400(client, tremendous, documented):
    """A NUL character (JSON `\\u0000`) is refused like any request body's, not a 500 from JSONB."""
    body = _event("REWARDS.DELIVERY.FAILED", "RWD\x001")
    assert b"\\u0000" in body
    answer = _post(client, body)
    assert answer.status_code == 400 and answer.json["error"]["code"] == "INVALID_INPUT"
    assert count(VoucherWebhookEvent) == 0


def test_a_failed_delivery_replayed_and_repeated_refunds_once(
    client, make_tenant, make_user, worker, tremendous, documented
):
    user_id, rid, reward_id = _sent_voucher(client, make_tenant, make_user, worker)
    body = _event("REWARDS.DELIVERY.FAILED", reward_id)
    first = _post(client, body)
    assert first.status_code == 200 and first.json == {"status": "received"}
    replay = _post(client, body)
    assert replay.status_code == 200 and replay.json == {"status": "already_processed"}
    again = _post(client, _event("REWARDS.CANCELED", reward_id))  # another uuid, same reward
    assert again.status_code == 200
    worker()
    assert redemption(rid).status == "failed"
    assert len(movements(f"redemption:{rid}:refund")) == 1 and redeemable(user_id) == 600
    assert count(VoucherWebhookEvent) == 2
    assert count(VoucherWebhookEvent, VoucherWebhookEvent.processed_at.is_(None)) == 0
    with db.session_scope() as session:
        outcomes = sorted(e.outcome for e in session.query(VoucherWebhookEvent))
    assert outcomes == ["failed_refunded", "no_change"]


def test_delivery_succeeded_is_recorded_and_the_status_stays_sent(
    client, make_tenant, make_user, worker, tremendous
):
    _, rid, reward_id = _sent_voucher(client, make_tenant, make_user, worker)
    assert _post(client, _event("REWARDS.DELIVERY.SUCCEEDED", reward_id)).status_code == 200
    worker()
    assert voucher(rid).status == "delivered" and voucher(rid).delivered_at is not None
    assert redemption(rid).status == "sent"
    # a failure reported after a confirmed delivery is no longer a failable state for the voucher row,
    # but the redemption transition stays guarded: it refunds at most once
    _post(client, _event("REWARDS.DELIVERY.FAILED", reward_id))
    worker()
    assert len(movements(f"redemption:{rid}:refund")) <= 1


def test_an_event_for_an_unknown_reward_is_retried_later_not_dropped(
    client, make_tenant, make_user, worker, tremendous
):
    # The provider's webhook can arrive before the issue job recorded the reward id.
    early = _post(client, _event("REWARDS.DELIVERY.SUCCEEDED", "RWD000001"))
    assert early.status_code == 200
    worker()  # the apply job retries, then gives up for now; the event stays unprocessed
    with db.session_scope() as session:
        stored = session.query(VoucherWebhookEvent).one()
        assert stored.processed_at is None and stored.attempts >= 1 and "no voucher" in stored.last_error
    _, rid, reward_id = _sent_voucher(client, make_tenant, make_user, worker)
    assert reward_id == "RWD000001"
    summary = issuing.reconcile(event_grace=timedelta(0))  # the cron re-enqueues what is still unprocessed
    assert summary.events_requeued == 1
    worker()
    with db.session_scope() as session:
        stored = session.query(VoucherWebhookEvent).one()
        assert stored.processed_at is not None and stored.outcome == "delivered"
    assert voucher(rid).status == "delivered"


def test_redemption_emails_leave_at_most_once_per_event(
    client,
    make_tenant,
    make_user,
    worker,
    settings,
    smtp_server,  # noqa: F811
):
    runtime.init(replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=100_000))
    tenant = make_tenant("Acme", admin_email="boss@acme.test")
    user_id, token = make_user(tenant.company_id, email="bia@acme.test")
    give_coins(user_id, tenant.company_id, 500)
    address_id = add_address(user_id, tenant.company_id)
    prize_id = add_product(tenant.company_id, price=100)
    rid = client.post(
        "/redemptions/redeem", json={"prizeId": prize_id, "addressId": address_id}, headers=bearer(token)
    ).json["redemption"]["id"]
    worker()
    # the same event's job runs again (a duplicate delivery): nobody gets a second e-mail
    with db.session_scope() as session:
        enqueue(session, "store.notify_redemption", {"redemption_id": rid, "event": "received"})
    worker()
    recipients = sorted(smtp_server.recipients())
    assert recipients == ["bia@acme.test", "boss@acme.test"]
    assert count(SentEmail, SentEmail.run_id == f"{rid}:received") == 1
    assert count(SentEmail, SentEmail.run_id == f"{rid}:new_order") == 1
    shipped = client.patch(
        f"/admin/redemptions/{rid}/status", json={"status": "shipped"}, headers=tenant.headers()
    )
    assert shipped.status_code == 200, shipped.json
    worker()
    subjects = [m.message["Subject"] for m in smtp_server.messages]
    assert sum("despachado" in s for s in subjects) == 1
