"""Rule-based hints for the compliments dashboard, worded in Portuguese (the product's language),
from numbers already computed (no query)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Insight:
    kind: str  # success | warning | info
    category: str  # engagement | values | departments | users
    title: str
    description: str
    metric: float | None
    actionable: bool
    priority: str  # low | medium | high


def insights(
    *,
    participation: float,
    compliments_change: float,
    unused_values: list[str],
    quiet_departments: list[str],
    inactive_users: int,
) -> list[Insight]:
    """`participation`: % of the users in scope who took part; `compliments_change`: % against the
    previous period; `unused_values`: values with no compliment; `quiet_departments`: departments
    with members and no compliment sent; `inactive_users`: users with none sent or received."""
    out: list[Insight] = []
    if participation < 50:
        out.append(
            Insight(
                "warning",
                "engagement",
                "Baixa participação",
                f"Apenas {participation}% das pessoas participaram no período.",
                participation,
                True,
                "high",
            )
        )
    else:
        out.append(
            Insight(
                "success",
                "engagement",
                "Boa participação",
                f"{participation}% das pessoas participaram no período.",
                participation,
                False,
                "low",
            )
        )
    if compliments_change <= -20:
        out.append(
            Insight(
                "warning",
                "engagement",
                "Queda nos elogios",
                f"Os elogios caíram {abs(compliments_change)}% em relação ao período anterior.",
                compliments_change,
                True,
                "high",
            )
        )
    elif compliments_change >= 20:
        out.append(
            Insight(
                "success",
                "engagement",
                "Crescimento nos elogios",
                f"Os elogios cresceram {compliments_change}% em relação ao período anterior.",
                compliments_change,
                False,
                "medium",
            )
        )
    if unused_values:
        out.append(
            Insight(
                "info",
                "values",
                "Valores pouco reconhecidos",
                "Sem elogios no período: " + ", ".join(unused_values),
                float(len(unused_values)),
                True,
                "medium",
            )
        )
    if quiet_departments:
        out.append(
            Insight(
                "warning",
                "departments",
                "Departamentos sem elogios",
                "Nenhum elogio enviado por: " + ", ".join(quiet_departments),
                float(len(quiet_departments)),
                True,
                "medium",
            )
        )
    if inactive_users:
        out.append(
            Insight(
                "info",
                "users",
                "Pessoas inativas",
                f"{inactive_users} pessoa(s) não enviaram nem receberam elogios no período.",
                float(inactive_users),
                True,
                "low",
            )
        )
    return out
