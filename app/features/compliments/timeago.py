"""Portuguese relative time for the compliments feed ("há 5 minutos")."""

from __future__ import annotations

from datetime import datetime

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


def _plural(count: int, singular: str, plural: str) -> str:
    return f"há {count} {singular if count == 1 else plural}"


def time_ago(moment: datetime, now: datetime) -> str:
    """`moment` relative to `now`, in Portuguese; moments in the future read as "agora mesmo"."""
    seconds = int((now - moment).total_seconds())
    if seconds < _MINUTE:
        return "agora mesmo"
    if seconds < _HOUR:
        return _plural(seconds // _MINUTE, "minuto", "minutos")
    if seconds < _DAY:
        return _plural(seconds // _HOUR, "hora", "horas")
    days = seconds // _DAY
    if days < 7:
        return _plural(days, "dia", "dias")
    if days < 30:
        return _plural(days // 7, "semana", "semanas")
    if days < 365:
        return _plural(days // 30, "mês", "meses")
    return _plural(days // 365, "ano", "anos")
