"""The feed's Portuguese relative time (a pure function)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.features.compliments.timeago import time_ago

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=0), "agora mesmo"),
        (timedelta(seconds=59), "agora mesmo"),
        (timedelta(seconds=-30), "agora mesmo"),  # a clock a little ahead
        (timedelta(minutes=1), "há 1 minuto"),
        (timedelta(minutes=1, seconds=59), "há 1 minuto"),
        (timedelta(minutes=5), "há 5 minutos"),
        (timedelta(minutes=59), "há 59 minutos"),
        (timedelta(hours=1), "há 1 hora"),
        (timedelta(hours=2), "há 2 horas"),
        (timedelta(hours=23, minutes=59), "há 23 horas"),
        (timedelta(days=1), "há 1 dia"),
        (timedelta(days=3), "há 3 dias"),
        (timedelta(days=6), "há 6 dias"),
        (timedelta(days=7), "há 1 semana"),
        (timedelta(days=20), "há 2 semanas"),
        (timedelta(days=30), "há 1 mês"),
        (timedelta(days=95), "há 3 meses"),
        (timedelta(days=365), "há 1 ano"),
        (timedelta(days=800), "há 2 anos"),
    ],
)
def test_time_ago(delta: timedelta, expected: str) -> None:
    assert time_ago(NOW - delta, NOW) == expected
