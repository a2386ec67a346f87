"""What every benchmark shares: a throwaway database migrated to head and a Redis db of its own,
interleaved pairs (baseline, ours) so a noisy machine hurts both sides alike, and one table format.

A benchmark module defines `main()` that calls `bench_environment()` and `compare()` and prints
`Row`s with `print_rows()`. `bench/run` runs them all and `docs/benchmarks.md` records the output.
Ratios are ours ÷ baseline in throughput terms (higher is better; 1.0 = as fast as the baseline).
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alembic import command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("APP_ENV", "test")

from app import db, runtime  # noqa: E402
from app.config import Settings, load_settings  # noqa: E402

BENCH_REDIS_DB = 14


@contextmanager
def bench_environment(**overrides: str) -> Iterator[Settings]:
    """A fresh database (migrated) and an empty Redis db, made the runtime's; dropped afterwards."""
    admin_url = make_url(os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    admin_url = admin_url.set(drivername="postgresql+psycopg2")
    redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    name = f"valorize_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes.update(database_url=database_url, configure_logger=False)
        command.upgrade(config, "head")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"{redis_base}/{BENCH_REDIS_DB}",
            "LOG_LEVEL": "ERROR",
            "RATE_LIMITS_ENABLED": "false",
            **overrides,
        }
        os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL")})
        settings = runtime.init(load_settings(env))
        redis = runtime.redis()
        if redis.dbsize():
            sys.exit(f"bench: Redis db {BENCH_REDIS_DB} is not empty; refusing to flush someone else's data")
        try:
            yield settings
        finally:
            redis.flushdb()
    finally:
        db.engine().dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Row:
    scenario: str
    unit: str  # what the rates count: jobs/s, rows/s…
    baseline: str
    baseline_rates: list[float]
    ours: str
    ours_rates: list[float]
    aim: str = ""

    @property
    def ratio(self) -> float:
        return statistics.median(self.ours_rates) / statistics.median(self.baseline_rates)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compare(
    pairs: int,
    count: int,
    baseline: Callable[[], Any],
    ours: Callable[[], Any],
    reset: Callable[[], Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Run (baseline, ours) `pairs` times, alternating which goes first; `count` units each.
    Returns the rates (units/s) of each side. `reset` runs before every measurement."""
    base_rates: list[float] = []
    our_rates: list[float] = []
    for index in range(pairs):
        order = [(baseline, base_rates), (ours, our_rates)]
        if index % 2:
            order.reverse()
        for action, rates in order:
            if reset is not None:
                reset()
            rates.append(count / timed(action))
    return base_rates, our_rates


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n### {title}\n")
    print("| scenario | baseline | median | ours | median | ours / baseline | aim |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        base = statistics.median(row.baseline_rates)
        mine = statistics.median(row.ours_rates)
        cells = [row.scenario, row.baseline, f"{base:,.0f} {row.unit}", row.ours, f"{mine:,.0f} {row.unit}"]
        print("| " + " | ".join([*cells, f"**{row.ratio:.2f}x**", row.aim]) + " |")
    sys.stdout.flush()
