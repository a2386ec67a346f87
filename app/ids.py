"""Opaque string ids (the frontend treats every id but company values as an opaque string)."""

from __future__ import annotations

import secrets
import time
from datetime import datetime

from sqlalchemy import ColumnElement, String, literal, literal_column

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

# What set-based SQL appends to a time prefix: 15 random characters (hex, 60 bits), new per row.
SQL_RANDOM_PART = "substr(replace(gen_random_uuid()::text, '-', ''), 1, 15)"


def _base36(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 36)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def id_time_prefix(epoch_seconds: float) -> str:
    """The first 10 characters of an id made at that moment (set-based SQL appends 15 random ones)."""
    return "c" + _base36(int(epoch_seconds * 1000), 9)


def new_id() -> str:
    """A 25-character, cuid-shaped id: 'c' + time prefix (index-friendly ordering) + randomness."""
    return id_time_prefix(time.time()) + _base36(secrets.randbits(80), 15)


def sql_new_id(moment: datetime) -> ColumnElement[str]:
    """A new id for each row of a set-based INSERT … SELECT, shaped like `new_id()`'s."""
    return literal(id_time_prefix(moment.timestamp())) + literal_column(SQL_RANDOM_PART, String)
