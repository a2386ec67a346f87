"""The weekly reset of one big company against one hand-written statement with the same effect.

    bench/run weekly_reset                                   # 100,000 wallets
    .venv/bin/python scripts/with_services.py --mode test -- \\
        .venv/bin/python bench/weekly_reset.py --wallets 1000000   # the issue's size

Baseline: one `UPDATE wallets … RETURNING` + `INSERT … SELECT` (a single statement, one
transaction) writing the same RESET rows as ours: same columns and values, one per changed wallet.
Ours: `weekly_reset.run_weekly_reset` for the company (advisory lock, marker, missing-wallet check,
then keyset chunks of WEEKLY_RESET_CHUNK_SIZE wallets, each its own transaction). Before every
measurement the state is reset: every wallet back to a spent balance (so both sides change every
wallet), ledger and markers emptied, wallets vacuumed. Interleaved pairs; medians; ours ÷
baseline in throughput (the issue's aim "time ≤ 1.3x" is a ratio ≥ 0.77 here).

Also the longest time a wallet row stays locked: the baseline's is its whole transaction; ours is
the longest chunk transaction (begin to commit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, date, datetime

from common import Row, bench_environment, compare, print_rows
from sqlalchemy import text

from app import db, runtime
from app.features.wallets import weekly_reset

COMPANY = "cbench"
AMOUNT = 100
NOW = datetime(2027, 1, 4, 6, tzinfo=UTC)  # a Monday: the company's renewal day
PERIOD = date(2027, 1, 4)
MARKER_ID = 1  # the baseline's rows carry the metadata ours would (first marker of a fresh table)

SEED = [
    "INSERT INTO companies (id, name) VALUES ('cbench', 'Bench')",
    "INSERT INTO company_settings (company_id, weekly_renewal_amount, renewal_day) VALUES ('cbench', 100, 1)",
    "INSERT INTO users (id, company_id, email, name) "
    "SELECT 'u' || lpad(g::text, 24, '0'), 'cbench', 'u' || g || '@bench.test', 'User ' || g "
    "FROM generate_series(1, :n) g",
    "INSERT INTO wallets (id, user_id, company_id, compliment_balance) "
    "SELECT 'c' || substr(md5(id), 1, 24), id, company_id, 100 FROM users WHERE company_id = 'cbench'",
]
# Every wallet spent something (1..50 coins), the same way before every measurement.
SPEND = "UPDATE wallets SET compliment_balance = 100 - (abs(hashtext(id)) % 50) - 1 WHERE company_id = :c"
CLEAN = "TRUNCATE wallet_transactions, expiry_notices, weekly_resets RESTART IDENTITY"

BASELINE = text(
    """
    WITH changed AS (
        UPDATE wallets w SET compliment_balance = :amount, updated_at = :now
        FROM wallets p JOIN users u ON u.id = p.user_id
        WHERE p.id = w.id AND p.company_id = :c AND u.is_active AND p.compliment_balance <> :amount
        RETURNING w.id, w.company_id, p.compliment_balance AS previous
    )
    INSERT INTO wallet_transactions (id, wallet_id, company_id, transaction_type, balance_type, amount,
                                     previous_balance, new_balance, reason, metadata, created_at)
    SELECT :prefix || substr(replace(gen_random_uuid()::text, '-', ''), 1, 15),
           c.id, c.company_id, 'RESET', 'COMPLIMENT', :amount, c.previous, :amount, :reason,
           CAST(:metadata AS jsonb), :now
    FROM changed c
    """
)


def seed(wallets: int) -> None:
    with db.engine().begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), {"n": wallets})
    with db.engine().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def restore() -> None:
    """Back to the same starting state: spent balances, no ledger, no marker, no dead tuples."""
    with db.engine().begin() as conn:
        conn.execute(text(SPEND), {"c": COMPANY})
        conn.execute(text(CLEAN))
    with db.engine().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE wallets"))


def ledger_fingerprint() -> tuple[int, int]:
    """(rows, an order-free hash of their content) of what a reset wrote; the random id and the
    write time aside, both sides must write the same rows."""
    with db.engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), coalesce(sum(hashtext(concat_ws('|', wallet_id, company_id,"
                " transaction_type, balance_type, amount, previous_balance, new_balance, reason,"
                " metadata::text))::bigint), 0) FROM wallet_transactions"
            )
        ).one()
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wallets", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    count = args.wallets
    with bench_environment():
        chunk = runtime.settings().weekly_reset_chunk_size
        seed(count)
        metadata = json.dumps(
            {"weeklyResetId": MARKER_ID, "periodStart": PERIOD.isoformat(), "trigger": "bench"}
        )
        params = {
            "c": COMPANY,
            "amount": AMOUNT,
            "now": NOW,
            "prefix": "cbench0000",
            "reason": weekly_reset.WEEKLY_RESET_REASON,
            "metadata": metadata,
        }
        baseline_seconds: list[float] = []
        longest_chunks: list[float] = []

        def baseline() -> None:
            started = time.perf_counter()
            with db.engine().begin() as conn:
                assert db.affected(conn.execute(BASELINE, params)) == count
            baseline_seconds.append(time.perf_counter() - started)

        def ours() -> None:
            summary = weekly_reset.run_weekly_reset(NOW, trigger="bench", company_id=COMPANY)
            [outcome] = summary.outcomes
            assert outcome.applied and outcome.wallets_changed == count, outcome
            longest_chunks.append(outcome.longest_chunk_seconds)

        # Same effect: the same ledger rows (ids aside) from the same starting state.
        restore()
        baseline()
        expected = ledger_fingerprint()
        restore()
        ours()
        assert ledger_fingerprint() == expected, "the baseline and ours wrote different ledger rows"
        assert expected[0] == count
        baseline_seconds.clear()
        longest_chunks.clear()

        base_rates, our_rates = compare(args.pairs, count, baseline, ours, reset=restore)
    row = Row(
        f"weekly reset, {count:,} wallets",
        "wallets/s",
        "one `UPDATE … RETURNING` + `INSERT … SELECT`",
        base_rates,
        f"`run_weekly_reset` (chunks of {chunk:,})",
        our_rates,
        "≥ 0.77x (time ≤ 1.3x)",
    )
    print_rows("Weekly reset", [row])
    print(
        f"\nlongest time a wallet row stays locked ({args.pairs} runs each): baseline "
        f"{statistics.median(baseline_seconds):.2f} s median, {max(baseline_seconds):.2f} s max "
        f"(its one transaction); ours {statistics.median(longest_chunks):.3f} s median, "
        f"{max(longest_chunks):.3f} s max (the longest chunk transaction; aim ≤ ~1 s); "
        f"time ratio ours/baseline {1 / row.ratio:.2f}"
    )


if __name__ == "__main__":
    main()
