"""The weekly reset in chunks (issue 11): each chunk is its own short transaction that holds at
most WEEKLY_RESET_CHUNK_SIZE wallets; compliments running meanwhile are neither lost nor
deadlocked; a run that dies between chunks (or inside one) is resumed by the next run, and every
wallet ends reset exactly once (real Postgres, real row locks, a real SIGKILL)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app import db, runtime
from app.features.compliments import service as compliments
from app.features.wallets import service as wallets
from app.features.wallets import weekly_reset as reset
from app.features.wallets.models import Wallet, WalletTransaction
from tests.conftest import ROOT, kill_tree, subprocess_env, wait_for
from tests.recognition_helpers import add_value, assert_ledger_consistent
from tests.test_weekly_reset_helpers import make_company, reset_rows, resets, spend_allowance

CHUNK = 10
FIRST_WEEK = datetime(2027, 1, 4, 6, tzinfo=UTC)  # Monday 03:00 in São Paulo
NEXT_WEEK = datetime(2027, 1, 11, 6, tzinfo=UTC)


@pytest.fixture
def small_chunks(settings: Any) -> Iterator[None]:
    runtime.init(replace(settings, weekly_reset_chunk_size=CHUNK))
    yield
    runtime.init(settings)


def _company_after_first_week(first: datetime = FIRST_WEEK) -> tuple[str, list[list[str]], dict[str, str]]:
    """A company whose 50 wallets were reset in the week of `first` and then all spent 7 coins;
    returns (company_id, its wallet ids in id order cut in chunks, wallet id -> user id)."""
    company_id, _ = make_company("Chunky", users=49)
    reset.run_weekly_reset(first)
    spend_allowance(company_id, every=1)
    with db.session_scope() as session:
        owners = dict(
            session.execute(
                select(Wallet.id, Wallet.user_id).where(Wallet.company_id == company_id).order_by(Wallet.id)
            )
            .tuples()
            .all()
        )
    ids = sorted(owners)
    return company_id, [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)], owners


def _balances(company_id: str) -> dict[str, int]:
    with db.session_scope() as session:
        return dict(
            session.execute(
                select(Wallet.id, Wallet.compliment_balance).where(Wallet.company_id == company_id)
            )
            .tuples()
            .all()
        )


def _resets_per_wallet(company_id: str, period_start: str) -> dict[str, int]:
    WT = WalletTransaction
    with db.session_scope() as session:
        return dict(
            session.execute(
                select(WT.wallet_id, func.count())
                .where(
                    WT.company_id == company_id,
                    WT.transaction_type == "RESET",
                    WT.metadata_["periodStart"].as_string() == period_start,
                )
                .group_by(WT.wallet_id)
            )
            .tuples()
            .all()
        )


def _locked_by_others(company_id: str) -> set[str]:
    """The company's wallets some other transaction holds locked (what SKIP LOCKED skips)."""
    with db.engine().connect() as conn:
        every = set(conn.scalars(text("SELECT id FROM wallets WHERE company_id = :c"), {"c": company_id}))
        free = set(
            conn.scalars(
                text("SELECT id FROM wallets WHERE company_id = :c FOR UPDATE SKIP LOCKED"), {"c": company_id}
            )
        )
        conn.rollback()
    return every - free


def _lock_waits(statement: str = "%") -> int:
    """Backends of this database waiting for a lock, running a statement LIKE `statement`."""
    with db.engine().connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE :statement"
                ),
                {"statement": statement},
            )
            or 0
        )


RESET_CHUNK_SQL = "%WITH targets AS%"


def _compliment(session: Session, company_id: str, value_id: int, sender: str, receiver: str) -> None:
    """Compliment from the owner of wallet `sender` to the owner of wallet `receiver` (5 coins)."""
    with db.session_scope() as lookup:
        owners = dict(
            lookup.execute(select(Wallet.id, Wallet.user_id).where(Wallet.id.in_([sender, receiver])))
            .tuples()
            .all()
        )
    compliments.send_compliment(
        session,
        company_id=company_id,
        sender_id=owners[sender],
        receiver_id=owners[receiver],
        value_id=value_id,
        coins=5,
        message="Thanks for the help this week",
    )


def _in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `target` in a thread; the list receives its result or the exception it raised."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:  # reported by the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_each_chunk_holds_at_most_chunk_size_wallets_and_compliments_meanwhile_are_kept(small_chunks):
    company_id, chunk, _ = _company_after_first_week()  # 50 wallets at 93: 5 chunks of 10
    ids = [w for c in chunk for w in c]
    value = add_value(company_id)

    # A compliment transaction holds two wallets of the third chunk when the reset starts.
    held = db.new_session()
    _compliment(held, company_id, value, chunk[2][5], chunk[2][6])
    reset_run, reset_out = _in_thread(lambda: reset.run_weekly_reset(NEXT_WEEK))
    waiting: threading.Thread | None = None
    try:
        wait_for(lambda: _lock_waits(RESET_CHUNK_SQL) == 1)
        # The reset is inside its third chunk, blocked on the held wallet: only that chunk's
        # wallets before it are locked; the first two chunks are committed and free.
        by_reset = _locked_by_others(company_id) - {chunk[2][5], chunk[2][6]}
        assert by_reset and by_reset <= set(chunk[2][:5]) and len(by_reset) <= CHUNK
        balances = _balances(company_id)
        assert {balances[w] for c in chunk[:2] for w in c} == {100}
        assert {balances[w] for c in chunk[2:] for w in c} == {93}
        assert reset_rows(company_id, "2027-01-11") == 2 * CHUNK
        [_, week] = resets(company_id)
        assert (week.cursor, week.completed_at, week.wallets_changed) == (chunk[1][-1], None, 2 * CHUNK)

        # Meanwhile: a compliment between wallets already reset goes through at once, and so does
        # one between wallets not reached yet (their reset then starts from what is left).
        with db.session_scope() as session:
            _compliment(session, company_id, value, chunk[0][3], chunk[0][4])
        with db.session_scope() as session:
            _compliment(session, company_id, value, chunk[4][5], chunk[4][6])

        # A compliment on wallets the reset holds waits for that chunk's commit.
        def blocked() -> None:
            with db.session_scope() as session:
                _compliment(session, company_id, value, chunk[2][2], chunk[2][3])

        waiting, waiting_out = _in_thread(blocked)
        wait_for(lambda: _lock_waits() == 2)
        held.commit()  # the held compliment debits first; the reset then resets from 88
    finally:
        held.close()
        reset_run.join(timeout=60)
        if waiting is not None:
            waiting.join(timeout=60)

    [summary] = reset_out
    assert summary.as_dict()["companies_reset"] == 1 and summary.wallets_changed == len(ids)
    assert waiting_out == [None]
    [outcome] = summary.outcomes
    assert outcome.chunks == len(chunk) + 1  # the last, empty chunk completes the week
    [_, week] = resets(company_id)
    assert week.completed_at is not None and week.wallets_changed == len(ids)
    assert _resets_per_wallet(company_id, "2027-01-11") == {w: 1 for w in ids}
    balances = _balances(company_id)
    spent_after_reset = {chunk[0][3], chunk[2][2]}
    assert {w: b for w, b in balances.items() if b != 100} == {w: 95 for w in spent_after_reset}
    with db.session_scope() as session:
        previous = dict(
            session.execute(
                select(WalletTransaction.wallet_id, WalletTransaction.previous_balance).where(
                    WalletTransaction.company_id == company_id,
                    WalletTransaction.transaction_type == "RESET",
                    WalletTransaction.metadata_["periodStart"].as_string() == "2027-01-11",
                )
            )
            .tuples()
            .all()
        )
    # Spent before their chunk: reset from what the compliment left.
    assert previous[chunk[2][5]] == previous[chunk[4][5]] == 88
    assert previous[chunk[0][3]] == 93
    assert_ledger_consistent()


class _Killed(Exception):
    pass


def test_a_run_that_dies_between_chunks_is_resumed_and_resets_every_wallet_once(small_chunks, monkeypatch):
    company_id, chunk, _ = _company_after_first_week()
    ids = [w for c in chunk for w in c]
    real_chunk = reset._reset_chunk
    calls = 0

    def dies_after_the_second(*args: Any) -> tuple[int, bool]:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise _Killed("killed between chunks")
        return real_chunk(*args)

    monkeypatch.setattr(reset, "_reset_chunk", dies_after_the_second)
    crashed = reset.run_weekly_reset(NEXT_WEEK)
    assert list(crashed.failed) == [company_id] and crashed.companies_reset == 0
    [_, week] = resets(company_id)
    assert (week.cursor, week.completed_at, week.wallets_changed) == (chunk[1][-1], None, 2 * CHUNK)
    assert reset_rows(company_id, "2027-01-11") == 2 * CHUNK

    # Between the crash and the next run: a wallet already reset and one not reached are spent.
    with db.session_scope() as session:
        for wallet_id in (chunk[0][0], chunk[3][0]):
            wallets.debit_compliment(session, session.get_one(Wallet, wallet_id), 5, "Spent meanwhile")
    monkeypatch.setattr(reset, "_reset_chunk", real_chunk)
    resumed = reset.run_weekly_reset(NEXT_WEEK)
    again = reset.run_weekly_reset(NEXT_WEEK)

    [outcome] = resumed.outcomes
    assert outcome.applied and outcome.wallets_changed == len(ids) - 2 * CHUNK
    assert again.companies_reset == 0 and again.wallets_changed == 0
    [_, week] = resets(company_id)
    assert week.completed_at is not None and week.wallets_changed == len(ids)
    assert _resets_per_wallet(company_id, "2027-01-11") == {w: 1 for w in ids}
    assert reset_rows(company_id, "2027-01-11") == len(ids)
    balances = _balances(company_id)
    assert {w: b for w, b in balances.items() if b != 100} == {chunk[0][0]: 95}  # spent after its reset
    assert_ledger_consistent()


@pytest.mark.slow
def test_a_cron_process_killed_inside_a_chunk_is_resumed_by_the_next_run(settings):
    # The process runs on the real clock: week one is the one before the current week.
    this_week = reset.current_period(db.utcnow(), "America/Sao_Paulo", 1)[0]
    company_id, chunk, _ = _company_after_first_week(db.utcnow() - timedelta(days=7))
    ids = [w for c in chunk for w in c]
    with db.engine().connect() as holder:
        # Hold a wallet of the third chunk, so the process stops inside that chunk's transaction.
        holder.execute(text("SELECT 1 FROM wallets WHERE id = :w FOR UPDATE"), {"w": chunk[2][4]})
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "cron.py"), "run", "weekly-reset"],
            cwd=ROOT,
            env=subprocess_env(WEEKLY_RESET_CHUNK_SIZE=str(CHUNK)),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _lock_waits(RESET_CHUNK_SQL) == 1, timeout=60)
        finally:
            kill_tree(process)
        holder.rollback()
    # Postgres ends the dead process's transaction (and its advisory lock) once it notices.
    wait_for(lambda: not _locked_by_others(company_id))

    [_, week] = resets(company_id)
    assert (week.period_start, week.cursor, week.completed_at) == (this_week, chunk[1][-1], None)
    assert reset_rows(company_id, this_week.isoformat()) == 2 * CHUNK  # the killed chunk wrote nothing

    resumed = reset.run_weekly_reset(trigger="cli")
    assert resumed.wallets_changed == len(ids) - 2 * CHUNK
    assert _resets_per_wallet(company_id, this_week.isoformat()) == {w: 1 for w in ids}
    assert set(_balances(company_id).values()) == {100}
    assert_ledger_consistent()
