"""The weekly reset of one 100,000-user company, against a bare SQL UPDATE on the same data.

    python scripts/with_services.py --mode test -- .venv/bin/python bench/weekly_reset.py [--users 100000]

Baseline: `UPDATE wallets SET compliment_balance = :amount WHERE company_id = :c` (no lock order,
no ledger, no marker). Ours: `periodic.reset_company_week` (marker insert, missing-wallet check,
wallets locked in id order, UPDATE … FROM + INSERT … SELECT of one RESET row per changed wallet,
marker update), committed. Both start from the same balances (every wallet spent something), so
both change every wallet. Prints seconds, wallets/s and the ratio (ours / bare; > 1 means slower).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alembic import command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("APP_ENV", "test")

from app import db, runtime  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.features.wallets import periodic  # noqa: E402

SPEND = text(
    "UPDATE wallets SET compliment_balance = 100 - (abs(hashtext(id)) % 50) - 1 WHERE company_id = :c"
)


def seed(users: int) -> str:
    """One company, `users` users with wallets (bulk SQL; the benchmark needs no ledger history)."""
    with db.engine().begin() as conn:
        conn.execute(text("INSERT INTO companies (id, name) VALUES ('cbench', 'Bench')"))
        conn.execute(
            text(
                "INSERT INTO company_settings (company_id, weekly_renewal_amount, renewal_day) "
                "VALUES ('cbench', 100, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (id, company_id, email, name) "
                "SELECT 'u' || lpad(g::text, 24, '0'), 'cbench', 'u' || g || '@bench.test', 'User ' || g "
                "FROM generate_series(1, :n) g"
            ),
            {"n": users},
        )
        conn.execute(
            text(
                "INSERT INTO wallets (id, user_id, company_id, compliment_balance) "
                "SELECT 'w' || substr(md5(id), 1, 24), id, company_id, 100 FROM users "
                "WHERE company_id = 'cbench'"
            )
        )
        conn.execute(text("ANALYZE"))
    return "cbench"


def timed(label: str, count: int, action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    print(f"  {label:<52} {elapsed:6.2f}s = {count / elapsed:9.0f} wallets/s")
    return elapsed


def run(users: int, rounds: int) -> None:
    company_id = seed(users)
    print(f"weekly reset of one company with {users} users ({rounds} rounds, best of each)")
    bare_times, ours_times = [], []
    for week in range(rounds):
        with db.engine().begin() as conn:
            conn.execute(SPEND, {"c": company_id})

        def bare() -> None:
            with db.engine().begin() as conn:
                conn.execute(
                    text("UPDATE wallets SET compliment_balance = 100 WHERE company_id = :c"),
                    {"c": company_id},
                )

        bare_times.append(timed("bare UPDATE (no ledger, no marker)", users, bare))
        with db.engine().begin() as conn:
            conn.execute(SPEND, {"c": company_id})
        now = datetime(2027, 1, 4 + 7 * week, 6, tzinfo=UTC)

        def ours(now: datetime = now) -> None:
            with db.session_scope() as session:
                [week_row] = periodic.company_weeks(session, now, company_id)
                outcome = periodic.reset_company_week(session, week_row, now, trigger="bench")
                assert outcome.applied and outcome.wallets_changed == users, outcome

        ours_times.append(timed("reset_company_week (lock, UPDATE, RESET rows)", users, ours))
    bare_best, ours_best = min(bare_times), min(ours_times)
    print(
        f"  best: bare {bare_best:.2f}s, ours {ours_best:.2f}s; ratio ours/bare: {ours_best / bare_best:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    admin_url = make_url(os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    admin_url = admin_url.set(drivername="postgresql+psycopg2")
    name = f"valorize_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes.update(database_url=database_url, configure_logger=False)
        command.upgrade(config, "head")
        redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
        settings = load_settings(
            {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": f"{redis_base}/14",
                "LOG_LEVEL": "ERROR",
            }
        )
        runtime.init(settings)
        run(args.users, args.rounds)
    finally:
        db.engine().dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
