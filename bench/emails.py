"""Welcome emails to a local SMTP sink: the bulk invite job as the worker runs it, against raw smtplib.

    bench/run emails                                   # 2,000 emails
    python scripts/with_services.py --mode test -- .venv/bin/python bench/emails.py --emails 10000

Both sides send the same messages (the `welcome` template rendered for each user with a fresh
one-time link, built by `emails.service.build_message` with the stable Message-ID) to the same
aiosmtpd sink, which runs in a process of its own and counts what it accepts.

Timed regions (interleaved pairs, alternating which side goes first; medians):
- baseline: read the users (one SELECT), then per 50 users one `smtplib.SMTP` connection: render,
  build and `send_message` each, `QUIT`. No bookkeeping.
- ours: enqueue the invite jobs the CSV import fans out (`users.send_welcome_emails_bulk`, 500 users
  each) and commit, then one in-process burst of the worker class we ship (`KernelWorker`) on
  `emails` until every job succeeded: kernel lifecycle (lock, started/succeeded rows, fairness
  turns), per batch the claim transaction (locks, read, rate-limit slots, `sending` records and
  tokens), rendering and building, SMTP (one connection per EMAIL_BATCH_SIZE=50), the settlements
  (written by the settler thread; the batch waits for them), progress. The rate limit is set out of
  reach. Task modules are imported before the first pair, as a worker process does at start.
Untimed between runs: the sink's counter is checked (both sides delivered every message) and the
run's `sent_emails`, tokens and job rows are deleted (the 3-welcome-emails-per-user rule would
otherwise stop the fourth round).

Then one counted run (500 emails, one job) prints round trips per email: Postgres (statements,
BEGIN/COMMIT, pool pings), Redis commands (a pipeline counts once) and SMTP replies.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import smtplib
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from aiosmtpd.controller import Controller
from common import Row, bench_environment, compare, print_rows
from redis.connection import Connection as RedisConnection
from sqlalchemy import event, text

from app import db, runtime
from app.features.auth.service import password_page_url
from app.features.emails.service import build_message, stable_message_id
from app.features.emails.tasks import BULK_WELCOME_KIND
from app.features.emails.templates import WELCOME, render
from app.jobs import enqueue
from app.jobs.reconciler import publish_due
from app.jobs.registry import known_kinds
from app.jobs.rq_plumbing import worker_redis
from app.jobs.worker import build_worker

COMPANY = "cbenchmail"
JOB_SIZE = 500  # users per invite job, as the CSV import fans out (INVITE_JOB_SIZE)
BATCH = 50  # messages per SMTP connection, both sides
PAIRS = 5


# --- the sink ------------------------------------------------------------------------------------


class _CountingHandler:
    def __init__(self, counter: Synchronized[int]) -> None:
        self.counter = counter

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 Message accepted"


def _serve_sink(port: int, counter: Synchronized[int], ready: Any) -> None:
    controller = Controller(_CountingHandler(counter), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    asyncio.run(asyncio.Event().wait())


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Synchronized[int]]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    context = multiprocessing.get_context("fork")
    counter: Synchronized[int] = context.Value("q", 0)
    ready = context.Event()
    process = context.Process(target=_serve_sink, args=(port, counter, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise SystemExit("bench: the SMTP sink did not start")
        yield port, counter
    finally:
        process.terminate()
        process.join(10)


# --- data ----------------------------------------------------------------------------------------


def seed(count: int) -> None:
    with db.engine().begin() as conn:
        conn.execute(text("INSERT INTO companies (id, name) VALUES (:c, 'Bench Mail')"), {"c": COMPANY})
        conn.execute(
            text(
                "INSERT INTO users (id, company_id, email, name) "
                "SELECT 'm' || lpad(g::text, 24, '0'), :c, 'person' || g || '@bench.test', 'Person ' || g "
                "FROM generate_series(1, :n) g"
            ),
            {"c": COMPANY, "n": count},
        )


def user_ids() -> list[str]:
    with db.engine().connect() as conn:
        return list(
            conn.execute(
                text("SELECT id FROM users WHERE company_id = :c ORDER BY id"), {"c": COMPANY}
            ).scalars()
        )


class Checker:
    """Between measurements (untimed): did the last run deliver every message (and, for ours,
    settle every send and finish every job)? Then clear what the next run must not find."""

    def __init__(self, received: Synchronized[int]) -> None:
        self.received = received
        self.expected = 0
        self.pending: tuple[str, int] | None = None

    def expect(self, side: str, count: int) -> None:
        self.pending = (side, count)

    def __call__(self) -> None:
        if self.pending is not None:
            side, count = self.pending
            self.expected += count
            if self.received.value != self.expected:
                raise SystemExit(
                    f"bench: the sink has {self.received.value} messages, expected {self.expected}"
                )
            if side == "ours":
                with db.engine().connect() as conn:
                    left = conn.execute(
                        text("SELECT count(*) FROM jobs WHERE status <> 'succeeded'")
                    ).scalar()
                    sent = conn.execute(
                        text("SELECT count(*) FROM sent_emails WHERE status = 'sent'")
                    ).scalar()
                if left or sent != count:
                    raise SystemExit(
                        f"bench: ours left {left} job(s) unfinished and settled {sent} of {count}"
                    )
            self.pending = None
        reset()


def reset() -> None:
    with db.engine().begin() as conn:
        conn.execute(text("DELETE FROM sent_emails"))
        conn.execute(text("DELETE FROM password_setup_tokens"))
        conn.execute(text("DELETE FROM jobs"))


# --- the two sides -------------------------------------------------------------------------------


def baseline(port: int, count: int) -> None:
    with db.engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT u.email, u.name, c.name FROM users u JOIN companies c ON c.id = u.company_id "
                "WHERE u.company_id = :c ORDER BY u.id LIMIT :n"
            ),
            {"c": COMPANY, "n": count},
        ).all()
    run_id = secrets.token_hex(8)
    hours = runtime.settings().password_setup_token_ttl_hours
    for start in range(0, len(rows), BATCH):
        smtp = smtplib.SMTP("127.0.0.1", port)
        for email, name, company in rows[start : start + BATCH]:
            link = password_page_url(secrets.token_urlsafe(32))
            context = {
                "name": name,
                "email": email,
                "company_name": company,
                "link": link,
                "link_valid_hours": hours,
            }
            rendered = render(WELCOME, context)
            message_id = stable_message_id(run_id, WELCOME, email)
            smtp.send_message(
                build_message(email, rendered.subject, rendered.text, rendered.html, message_id)
            )
        smtp.quit()


def ours(ids: list[str]) -> None:
    with db.session_scope() as session:
        for start in range(0, len(ids), JOB_SIZE):
            enqueue(
                session, BULK_WELCOME_KIND, {"user_ids": ids[start : start + JOB_SIZE]}, company_id=COMPANY
            )
    settings = runtime.settings()
    while True:
        worker = build_worker(["emails"], worker_redis(settings.redis_url), f"bench-{time.time_ns()}")
        worker.work(burst=True, with_scheduler=False, logging_level="ERROR")
        if not publish_due():
            break


# --- round trips ---------------------------------------------------------------------------------


@contextmanager
def round_trips() -> Iterator[Counter[str]]:
    """Counts what goes over the wire while the block runs (SQLAlchemy events, redis-py sends,
    smtplib replies)."""
    counts: Counter[str] = Counter()
    engine = db.engine()

    def on_statement(*_: Any) -> None:
        counts["postgres"] += 1

    listeners = [
        (engine, "before_cursor_execute", on_statement),
        (engine, "begin", on_statement),  # psycopg2 sends BEGIN before the transaction's first statement
        (engine, "commit", on_statement),
        (engine.pool, "checkout", on_statement),  # pool_pre_ping
    ]
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    real_send = RedisConnection.send_packed_command
    real_reply = smtplib.SMTP.getreply

    def send(self: RedisConnection, *args: Any, **kwargs: Any) -> None:
        counts["redis"] += 1
        real_send(self, *args, **kwargs)

    def reply(self: smtplib.SMTP) -> tuple[int, bytes]:
        counts["smtp"] += 1
        return real_reply(self)

    RedisConnection.send_packed_command = send  # type: ignore[method-assign,assignment]
    smtplib.SMTP.getreply = reply  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        RedisConnection.send_packed_command = real_send  # type: ignore[method-assign]
        smtplib.SMTP.getreply = real_reply  # type: ignore[method-assign]
        for target, name, listener in listeners:
            event.remove(target, name, listener)


def counted(ids: list[str], port: int) -> str:
    sample = ids[:JOB_SIZE]
    reset()
    with round_trips() as mine:
        ours(sample)
    with round_trips() as base:
        baseline(port, len(sample))

    def per(counts: Counter[str]) -> str:
        return ", ".join(f"{kind} {counts[kind] / len(sample):.2f}" for kind in ("postgres", "redis", "smtp"))

    return f"round trips per email ({len(sample)} emails, one job): ours {per(mine)}; baseline {per(base)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=2_000)
    parser.add_argument("--pairs", type=int, default=PAIRS)
    args = parser.parse_args()
    with smtp_sink() as (port, received):
        overrides = {
            "SMTP_URL": f"smtp://127.0.0.1:{port}",
            "EMAIL_RATE_PER_MINUTE": "1000000000",
            "EMAIL_BATCH_SIZE": str(BATCH),
        }
        with bench_environment(**overrides):
            seed(args.emails)
            ids = user_ids()
            known_kinds()  # the task modules, imported once as a worker process does at start
            checker = Checker(received)

            def run_baseline() -> None:
                checker.expect("baseline", len(ids))
                baseline(port, len(ids))

            def run_ours() -> None:
                checker.expect("ours", len(ids))
                ours(ids)

            base_rates, our_rates = compare(args.pairs, len(ids), run_baseline, run_ours, checker)
            checker()
            line = counted(ids, port)
    print_rows(
        "Welcome emails to a local SMTP sink",
        [
            Row(
                f"{args.emails:,} welcome emails",
                "emails/s",
                "raw `smtplib`, one connection per 50",
                base_rates,
                "`users.send_welcome_emails_bulk` jobs (500 each), `KernelWorker`",
                our_rates,
                "≥ 0.8x",
            )
        ],
    )
    print(f"\nper pair (emails/s): baseline {_rounded(base_rates)}, ours {_rounded(our_rates)}")
    print(line)


def _rounded(rates: list[float]) -> list[int]:
    return [round(rate) for rate in rates]


if __name__ == "__main__":
    main()
