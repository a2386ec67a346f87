"""Coin expiry and expiry notices: an 18-month-old credit expires once and cannot be spent; the
90- and 30-day notices each reach a real SMTP server (aiosmtpd, in the test) once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from app import db, runtime
from app.cron import runner
from app.features.users import onboarding
from app.features.wallets import service as wallets
from app.features.wallets.models import ExpiryNotice, Wallet, WalletTransaction
from tests.recognition_helpers import assert_ledger_consistent
from tests.test_weekly_reset_helpers import make_company


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def inbox(settings) -> Iterator[_Inbox]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    handler = _Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    runtime.init(replace(runtime.settings(), smtp_url=f"smtp://127.0.0.1:{port}"))
    yield handler
    controller.stop()
    runtime.init(settings)


CREDITED = datetime(2025, 5, 1, 10, tzinfo=UTC)
EXPIRES = datetime(2026, 11, 1, 10, tzinfo=UTC)  # 18 months later


def _user_with_lots() -> tuple[str, str, str]:
    """A user with an old 50-coin lot (expires EXPIRES) and a fresh 20-coin lot."""
    company_id, _ = make_company("Acme")
    with db.session_scope() as session:
        user = onboarding.create_user(session, company_id, "ana@example.com", "Ana")
        wallet = wallets.get_wallet(session, user.id, company_id)
        old = wallets.credit_redeemable(session, wallet, 50, "Compliment", now=CREDITED)
        wallets.credit_redeemable(session, wallet, 20, "Compliment", now=EXPIRES - timedelta(days=30))
        return user.id, wallet.id, old.id


def _run(task: str) -> dict[str, Any]:
    return runner.run_task(task, trigger="cli").summary or {}


def test_an_18_month_old_credit_expires_once_and_cannot_be_spent(settings):
    _, wallet_id, lot_id = _user_with_lots()
    with time_machine.travel(EXPIRES + timedelta(hours=1)):
        with db.session_scope() as session:  # expired but not yet processed: already unspendable
            wallet = session.get_one(Wallet, wallet_id)
            with pytest.raises(wallets.InsufficientBalance):
                wallets.spend_redeemable(session, wallet, 21, "Prize")
        first = _run("expire-coins")
        second = _run("expire-coins")
    assert first == {"users_affected": 1, "coins_expired": 50, "lots_expired": 1, "dry_run": False}
    assert second == {"users_affected": 0, "coins_expired": 0, "lots_expired": 0, "dry_run": False}
    with db.session_scope() as session:
        wallet = session.get_one(Wallet, wallet_id)
        assert wallet.redeemable_balance == 20
        assert session.get_one(WalletTransaction, lot_id).remaining_amount == 0
        expired = session.scalars(
            select(WalletTransaction).where(WalletTransaction.transaction_type == "EXPIRED")
        ).all()
        assert [(e.amount, e.previous_balance, e.new_balance) for e in expired] == [(50, 70, 20)]
        assert expired[0].metadata_["expiredCredits"] == [lot_id]
        with pytest.raises(wallets.InsufficientBalance):
            wallets.spend_redeemable(session, wallet, 21, "Prize", now=EXPIRES + timedelta(hours=2))
        wallets.spend_redeemable(session, wallet, 20, "Prize", now=EXPIRES + timedelta(hours=2))
    assert_ledger_consistent()


def test_notices_at_90_and_30_days_are_each_sent_once(inbox):
    _, _, lot_id = _user_with_lots()
    moments = {
        "91 days": EXPIRES - timedelta(days=91),
        "89 days": EXPIRES - timedelta(days=89),
        "89 days again": EXPIRES - timedelta(days=89, hours=-2),
        "60 days": EXPIRES - timedelta(days=60),
        "29 days": EXPIRES - timedelta(days=29),
        "29 days again": EXPIRES - timedelta(days=29, hours=-2),
        "1 day": EXPIRES - timedelta(days=1),
    }
    sent = {}
    for label, moment in moments.items():
        with time_machine.travel(moment):
            before = len(inbox.messages)
            _run("expiry-notices")
            sent[label] = len(inbox.messages) - before
    # 90-day window: the old lot only (the fresh one expires 18 months after its credit).
    assert sent == {
        "91 days": 0,
        "89 days": 1,
        "89 days again": 0,
        "60 days": 0,
        "29 days": 1,
        "29 days again": 0,
        "1 day": 0,
    }
    assert [rcpt for rcpt, _ in inbox.messages] == [["ana@example.com"], ["ana@example.com"]]
    body = inbox.messages[1][1].decode()
    assert "50 moedas" in body and "30 dias" in body
    with db.session_scope() as session:
        notices = session.execute(
            select(
                ExpiryNotice.credit_transaction_id, ExpiryNotice.threshold_days, ExpiryNotice.coins
            ).order_by(ExpiryNotice.threshold_days)
        ).all()
        assert [tuple(n) for n in notices] == [(lot_id, 30, 50), (lot_id, 90, 50)]
        assert (
            session.scalar(
                select(func.count()).select_from(ExpiryNotice).where(ExpiryNotice.email_record_id.is_(None))
            )
            == 0
        )


def test_a_failed_notice_is_released_and_retried_next_run(inbox, settings):
    _user_with_lots()
    with socket.socket() as sock:  # nothing listens there: the send fails
        sock.bind(("127.0.0.1", 0))
        dead = int(sock.getsockname()[1])
    smtp_url = runtime.settings().smtp_url
    runtime.init(replace(runtime.settings(), smtp_url=f"smtp://127.0.0.1:{dead}"))
    with time_machine.travel(EXPIRES - timedelta(days=80)):
        failed = _run("expiry-notices")
        runtime.init(replace(runtime.settings(), smtp_url=smtp_url))
        retried = _run("expiry-notices")
    assert failed["notices_90d"] == {"emails_sent": 0, "emails_failed": 1, "lots": 0}
    assert retried["notices_90d"] == {"emails_sent": 1, "emails_failed": 0, "lots": 1}
    assert len(inbox.messages) == 1


def test_a_notice_over_the_rate_limit_waits_for_the_next_run_and_nothing_sleeps(inbox, monkeypatch):
    """The company's email window holds one message: the run sends one notice, releases the other
    for the next run, and never waits (a cron run must not hold its worker)."""
    company_id, _ = make_company("Acme")
    with db.session_scope() as session:
        for email in ("ana@example.com", "bia@example.com"):
            user = onboarding.create_user(session, company_id, email, email[:3])
            wallets.credit_redeemable(
                session, wallets.get_wallet(session, user.id, company_id), 50, "Compliment", now=CREDITED
            )
    runtime.init(replace(runtime.settings(), email_rate_per_minute=1))
    monkeypatch.setattr(time, "sleep", _no_sleep)
    with time_machine.travel(EXPIRES - timedelta(days=80)):
        first = _run("expiry-notices")
        redis = runtime.redis()
        redis.delete(*redis.scan_iter("valorize:email-rate:*"))  # the window turns
        second = _run("expiry-notices")
    assert first["notices_90d"] == {"emails_sent": 1, "emails_failed": 1, "lots": 1}
    assert second["notices_90d"] == {"emails_sent": 1, "emails_failed": 0, "lots": 1}
    assert sorted(rcpt for [rcpt], _ in inbox.messages) == ["ana@example.com", "bia@example.com"]


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}s")
