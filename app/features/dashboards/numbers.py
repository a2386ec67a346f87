"""The dashboards' numbers: typed results of the aggregate queries and the ratios derived from them
(percentages, changes against the previous period, averages). No SQL, no wording, no JSON shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


def pct(part: float, whole: float) -> float:
    """`part` as a percentage of `whole`, 2 decimals; 0 when there is no whole."""
    return round(part * 100.0 / whole, 2) if whole else 0.0


def change(cur: float, prev: float) -> float:
    """Change from `prev` to `cur` in percent; from nothing to something is +100%."""
    if prev:
        return round((cur - prev) * 100.0 / prev, 2)
    return 100.0 if cur else 0.0


def per(amount: float, count: float) -> float:
    """`amount / count`, 2 decimals; 0 when there is nothing to divide by."""
    return round(amount / count, 2) if count else 0.0


@dataclass(frozen=True)
class Overview:
    """The period's totals (and the previous period's), over the users and compliments in scope."""

    total: int  # compliments
    coins: int
    active: int  # users in scope who sent or received one
    users: int  # users in scope
    prev_total: int
    prev_coins: int
    prev_active: int
    median_coins: float | None
    employees: int  # the whole company, whatever the filters
    active_employees: int
    total_values: int
    active_values: int

    @classmethod
    def from_row(cls, row: Any) -> Overview:
        return cls(
            total=int(row.cur_count),
            coins=int(row.cur_coins),
            active=int(row.cur_active),
            users=int(row.total_users),
            prev_total=int(row.prev_count),
            prev_coins=int(row.prev_coins),
            prev_active=int(row.prev_active),
            median_coins=float(row.median_coins) if row.median_coins is not None else None,
            employees=int(row.employees),
            active_employees=int(row.active_employees),
            total_values=int(row.total_values),
            active_values=int(row.active_values),
        )

    @property
    def participation(self) -> float:
        return pct(self.active, self.users)

    @property
    def engagement_rate(self) -> float:
        """Compliments per active user."""
        return per(self.total, self.active)

    @property
    def avg_coins_per_compliment(self) -> float:
        return per(self.coins, self.total)

    @property
    def compliments_per_user(self) -> float:
        return per(self.total, self.users)

    @property
    def compliments_change(self) -> float:
        return change(self.total, self.prev_total)

    @property
    def coins_change(self) -> float:
        return change(self.coins, self.prev_coins)

    @property
    def users_change(self) -> float:
        return change(self.active, self.prev_active)


@dataclass(frozen=True)
class ValueShare:
    """One company value's compliments in the period, and its trend against the previous period."""

    value_id: int
    name: str
    description: str | None
    icon_name: str | None
    icon_color: str | None
    count: int
    percentage: float
    coins: int
    trend: str  # up | down | stable
    trend_percentage: float

    @classmethod
    def from_row(cls, row: Any, total: int) -> ValueShare:
        return cls(
            value_id=row.id,
            name=row.title,
            description=row.description,
            icon_name=row.icon_name,
            icon_color=row.icon_color,
            count=int(row.cur_n),
            percentage=pct(row.cur_n, total),
            coins=int(row.cur_coins),
            trend="up" if row.cur_n > row.prev_n else "down" if row.cur_n < row.prev_n else "stable",
            trend_percentage=change(row.cur_n, row.prev_n),
        )


@dataclass(frozen=True)
class UserActivity:
    """What one user sent and received in the period."""

    user_id: str
    name: str
    email: str
    avatar: str | None
    department: str | None
    job_title: str | None
    sent: int
    coins_sent: int
    received: int
    coins_received: int

    @classmethod
    def from_row(cls, row: Any) -> UserActivity:
        return cls(
            user_id=row.id,
            name=row.name,
            email=row.email,
            avatar=row.avatar,
            department=row.dept,
            job_title=row.job_title,
            sent=int(row.sn),
            coins_sent=int(row.sc),
            received=int(row.rn),
            coins_received=int(row.rc),
        )

    @property
    def avg_coins_sent(self) -> float:
        return round(self.coins_sent / self.sent, 2)

    @property
    def avg_coins_received(self) -> float:
        return round(self.coins_received / self.received, 2)

    @property
    def balance_score(self) -> float:
        """100 when a user gives as many compliments as they get."""
        return round(min(self.sent, self.received) * 100.0 / max(self.sent, self.received), 2)


@dataclass(frozen=True)
class DepartmentStats:
    department_id: str
    name: str
    total_users: int
    active_users: int
    compliments: int  # sent by its members
    top_value: str | None
    top_value_count: int

    @classmethod
    def from_row(cls, row: Any) -> DepartmentStats:
        return cls(
            department_id=row.id,
            name=row.name,
            total_users=int(row.total_users),
            active_users=int(row.active_users),
            compliments=int(row.compliments),
            top_value=row.top_value,
            top_value_count=int(row.top_value_n) if row.top_value else 0,
        )

    @property
    def avg_per_user(self) -> float:
        return per(self.compliments, self.total_users)

    @property
    def engagement_rate(self) -> float:
        return pct(self.active_users, self.total_users)


@dataclass(frozen=True)
class Week:
    start: date  # the Monday
    count: int
    coins: int


@dataclass(frozen=True)
class MonthGrowth:
    """The month of the period's end against the month before it."""

    month: str  # YYYY-MM
    count: int
    coins: int
    prev_month: str
    prev_count: int
    prev_coins: int

    @property
    def growth_rate(self) -> float:
        return change(self.count, self.prev_count)
