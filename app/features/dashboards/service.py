"""Dashboard numbers for a `Scope` (scope.py): runs the aggregate queries (queries.py), turns their
rows into typed numbers (numbers.py) and derives the hints (insights.py). The contract's JSON
bodies are built from the result by present.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.features.dashboards import queries
from app.features.dashboards.insights import Insight, insights
from app.features.dashboards.numbers import (
    DepartmentStats,
    MonthGrowth,
    Overview,
    UserActivity,
    ValueShare,
    Week,
)
from app.features.dashboards.scope import Scope

TOP_N = 10
INACTIVE_LIST_SIZE = 20
TOP_VALUES_ON_HOME = 5


@dataclass(frozen=True)
class Temporal:
    weeks: list[Week]  # oldest first
    day_of_week: dict[int, int]  # 0 = Sunday -> compliments
    hours: dict[int, int]  # 0..23 -> compliments


@dataclass(frozen=True)
class ComplimentsDashboard:
    scope: Scope
    overview: Overview
    values: list[ValueShare]
    senders: list[UserActivity]
    receivers: list[UserActivity]
    balanced: list[UserActivity]
    departments: list[DepartmentStats]
    flow: list[Any]  # rows: sender dept (id, name), receiver dept (id, name), count, coins
    temporal: Temporal
    month: MonthGrowth
    inactive_count: int
    inactive: list[Any]  # rows: id, name, dept, last_activity
    recent: list[Any]  # rows: the 10 latest public compliments with sender, receiver and value
    insights: list[Insight]
    generated_at: datetime
    execution_ms: int


@dataclass(frozen=True)
class DashboardStats:
    scope: Scope
    overview: Overview
    weeks: list[Week]
    top_values: list[ValueShare]
    prizes_redeemed: int
    generated_at: datetime


@dataclass(frozen=True)
class Network:
    nodes: list[Any]  # rows: id, name, avatar, job_title, dept, given, got
    links: list[Any]  # rows: sender_id, receiver_id, n, messages


def values_distribution(session: Session, scope: Scope, total: int) -> list[ValueShare]:
    return [ValueShare.from_row(r, total) for r in queries.values(session, scope)]


def temporal(session: Session, scope: Scope) -> Temporal:
    weeks, dows, hours = [], {}, {}
    for r in queries.temporal(session, scope):
        if r.kind == "week":
            weeks.append(Week(r.day, int(r.n), int(r.coins)))
        elif r.kind == "dow":
            dows[r.num] = int(r.n)
        else:
            hours[r.num] = int(r.n)
    weeks.sort(key=lambda w: w.start)
    return Temporal(weeks, dows, hours)


def month_growth(session: Session, scope: Scope) -> MonthGrowth:
    first = scope.end_date.replace(day=1)
    prev_first = (first - timedelta(days=1)).replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    bounds = {
        "month_start": scope.at(first),
        "prev_month_start": scope.at(prev_first),
        "month_end": scope.at(next_first),
    }
    m = queries.months(session, scope, bounds)
    return MonthGrowth(
        month=first.strftime("%Y-%m"),
        count=int(m.cur_n),
        coins=int(m.cur_coins),
        prev_month=prev_first.strftime("%Y-%m"),
        prev_count=int(m.prev_n),
        prev_coins=int(m.prev_coins),
    )


def compliments_dashboard(session: Session, scope: Scope) -> ComplimentsDashboard:
    started = utcnow()
    overview = Overview.from_row(queries.overview(session, scope))

    top_rows = queries.top_users(session, scope, TOP_N)
    senders = sorted((r for r in top_rows if r.s_rank <= TOP_N and r.sn > 0), key=lambda r: r.s_rank)
    receivers = sorted((r for r in top_rows if r.r_rank <= TOP_N and r.rn > 0), key=lambda r: r.r_rank)
    balanced = sorted(
        (r for r in top_rows if r.b_rank <= TOP_N and r.sn > 0 and r.rn > 0), key=lambda r: r.b_rank
    )
    departments = [DepartmentStats.from_row(r) for r in queries.departments(session, scope)]
    flow = queries.cross_department_flow(session, scope)
    time_patterns = temporal(session, scope)
    month = month_growth(session, scope)
    inactive = queries.inactive_users(session, scope, INACTIVE_LIST_SIZE)
    inactive_count = int(inactive[0].total) if inactive else 0
    recent = queries.recent(session, scope)
    values = values_distribution(session, scope, overview.total)

    hints = insights(
        participation=overview.participation,
        compliments_change=overview.compliments_change,
        unused_values=[v.name for v in values if v.count == 0],
        quiet_departments=[d.name for d in departments if d.total_users and not d.compliments],
        inactive_users=inactive_count,
    )
    generated_at = utcnow()
    return ComplimentsDashboard(
        scope=scope,
        overview=overview,
        values=values,
        senders=[UserActivity.from_row(r) for r in senders],
        receivers=[UserActivity.from_row(r) for r in receivers],
        balanced=[UserActivity.from_row(r) for r in balanced],
        departments=departments,
        flow=flow,
        temporal=time_patterns,
        month=month,
        inactive_count=inactive_count,
        inactive=inactive,
        recent=recent,
        insights=hints,
        generated_at=generated_at,
        execution_ms=int((generated_at - started).total_seconds() * 1000),
    )


def dashboard_stats(session: Session, scope: Scope) -> DashboardStats:
    overview = Overview.from_row(queries.overview(session, scope))
    weeks = temporal(session, scope).weeks
    values = [v for v in values_distribution(session, scope, overview.total) if v.count > 0]
    return DashboardStats(
        scope=scope,
        overview=overview,
        weeks=weeks,
        top_values=values[:TOP_VALUES_ON_HOME],
        prizes_redeemed=queries.redemptions(session, scope),
        generated_at=utcnow(),
    )


def network(
    session: Session,
    scope: Scope,
    *,
    department: str | None,
    user_ids: list[str] | None,
    min_connections: int,
    limit: int,
) -> Network:
    """Who recognises whom: sender -> receiver pairs with at least `min_connections` compliments in
    the period (optionally touching a department, by name, or some users), and the users in them."""
    filters = {
        "dept_name": department,
        "user_ids": user_ids,
        "min_connections": min_connections,
        "limit": limit,
    }
    links = queries.network_links(session, scope, filters)
    ids = sorted({r.sender_id for r in links} | {r.receiver_id for r in links})
    nodes = queries.network_nodes(session, scope, ids) if ids else []
    return Network(nodes, links)
