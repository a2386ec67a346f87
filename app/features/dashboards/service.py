"""Dashboard numbers, computed by Postgres with aggregate SQL (GROUP BY, window functions,
percentile_cont): a fixed, small number of statements per request whatever the number of
compliments, and no compliment row is loaded into Python except the 10 of `recentActivity`.

Scope: a period [start 00:00, end+1 day 00:00) in the company's timezone; with a department or
job-title filter, the users in scope are that group's active members and the compliments in scope
are those they sent or received."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.api import ApiError
from app.db import utcnow
from app.features.compliments.timeago import time_ago
from app.features.identity.models import Company, Department, JobTitle

PROFESSIONAL = "PROFESSIONAL"
MAX_RANGE_DAYS = 366  # "at most one year", inclusive of both ends (a leap year has 366 days)
DEFAULT_DAYS = 30
TOP_N = 10
DAY_NAMES = ["Domingo", "Segunda", "Terça", "Quarta", "Quinta", "Sexta", "Sábado"]  # dow 0 = Sunday


@dataclass(frozen=True)
class Scope:
    company_id: str
    timezone: str
    start_date: date
    end_date: date
    department_id: str | None
    job_title_id: str | None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def at(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz)

    @property
    def start(self) -> datetime:
        return self.at(self.start_date)

    @property
    def end(self) -> datetime:  # exclusive
        return self.at(self.end_date + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def prev_start_date(self) -> date:
        return self.start_date - timedelta(days=self.days)

    @property
    def prev_end_date(self) -> date:
        return self.start_date - timedelta(days=1)

    def params(self) -> dict[str, Any]:
        return {
            "cid": self.company_id,
            "tz": self.timezone,
            "start": self.start,
            "end": self.end,
            "prev_start": self.at(self.prev_start_date),
            "dept": self.department_id,
            "jt": self.job_title_id,
        }


def plan_restriction(feature: str, current: str) -> ApiError:
    return ApiError(
        403,
        f"{feature} requires the {PROFESSIONAL} plan",
        "PLAN_RESTRICTION",
        {
            "featureName": feature,
            "requiredPlan": PROFESSIONAL,
            "currentPlan": current,
            "upgradeRequired": True,
        },
    )


def company_of(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise ApiError(404, "Company not found")
    return company


def resolve_scope(
    session: Session,
    company_id: str,
    start_date: date | None,
    end_date: date | None,
    department_id: str | None = None,
    job_title_id: str | None = None,
    *,
    plan_gated_filters: bool = True,
) -> Scope:
    """Validate the query (plan, dates, filter ids) into a Scope; 403 / 400 otherwise."""
    company = company_of(session, company_id)
    if plan_gated_filters and (department_id or job_title_id) and company.plan != PROFESSIONAL:
        raise plan_restriction("Department and job title filters", company.plan)
    today = utcnow().astimezone(ZoneInfo(company.timezone)).date()
    end = end_date or today
    start = start_date or (end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise ApiError(400, "startDate must be on or before endDate")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ApiError(400, "The date range may not exceed one year")
    if department_id and (
        session.scalar(
            select(Department.id).where(Department.id == department_id, Department.company_id == company_id)
        )
        is None
    ):
        raise ApiError(400, "Department not found in this company", "INVALID_DEPARTMENT")
    if job_title_id and (
        session.scalar(
            select(JobTitle.id).where(JobTitle.id == job_title_id, JobTitle.company_id == company_id)
        )
        is None
    ):
        raise ApiError(400, "Job title not found in this company", "INVALID_JOB_TITLE")
    return Scope(company_id, company.timezone, start, end, department_id or None, job_title_id or None)


# Users and compliments in scope, the latter over [prev_start, end) so that one pass serves
# both the period and the previous period of the same length.
_SCOPE = """
scope_users AS (
    SELECT u.id, u.name, u.email, u.avatar, u.department_id, u.job_title_id
    FROM users u
    WHERE u.company_id = :cid AND u.is_active
      AND (CAST(:dept AS text) IS NULL OR u.department_id = :dept)
      AND (CAST(:jt AS text) IS NULL OR u.job_title_id = :jt)
),
scoped AS (
    SELECT c.id, c.sender_id, c.receiver_id, c.value_id, c.coins, c.created_at, c.message, c.is_public,
           s.department_id AS s_dept, r.department_id AS r_dept
    FROM compliments c
    JOIN users s ON s.id = c.sender_id
    JOIN users r ON r.id = c.receiver_id
    WHERE c.company_id = :cid AND c.created_at >= :prev_start AND c.created_at < :end
      AND (CAST(:dept AS text) IS NULL OR s.department_id = :dept OR r.department_id = :dept)
      AND (CAST(:jt AS text) IS NULL OR s.job_title_id = :jt OR r.job_title_id = :jt)
),
cur AS (SELECT * FROM scoped WHERE created_at >= :start),
prev AS (SELECT * FROM scoped WHERE created_at < :start),
cur_active AS (
    SELECT uid FROM (SELECT sender_id AS uid FROM cur UNION SELECT receiver_id FROM cur) a
    WHERE uid IN (SELECT id FROM scope_users)
),
prev_active AS (
    SELECT uid FROM (SELECT sender_id AS uid FROM prev UNION SELECT receiver_id FROM prev) a
    WHERE uid IN (SELECT id FROM scope_users)
)
"""


def _rows(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    return list(session.execute(text("WITH " + _SCOPE + ", " + sql), params).all())


_OVERVIEW = """
x AS (SELECT 1)
SELECT
    (SELECT count(*) FROM cur) AS cur_count,
    (SELECT coalesce(sum(coins), 0) FROM cur) AS cur_coins,
    (SELECT count(*) FROM prev) AS prev_count,
    (SELECT coalesce(sum(coins), 0) FROM prev) AS prev_coins,
    (SELECT count(*) FROM cur_active) AS cur_active,
    (SELECT count(*) FROM prev_active) AS prev_active,
    (SELECT count(*) FROM scope_users) AS total_users,
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coins) FROM cur) AS median_coins,
    (SELECT count(*) FROM users WHERE company_id = :cid) AS employees,
    (SELECT count(*) FROM users WHERE company_id = :cid AND is_active) AS active_employees,
    (SELECT count(*) FROM company_values WHERE company_id = :cid) AS total_values,
    (SELECT count(*) FROM company_values WHERE company_id = :cid AND is_active) AS active_values
"""

_VALUES = """
per_value AS (
    SELECT value_id,
           count(*) FILTER (WHERE created_at >= :start) AS cur_n,
           coalesce(sum(coins) FILTER (WHERE created_at >= :start), 0) AS cur_coins,
           count(*) FILTER (WHERE created_at < :start) AS prev_n
    FROM scoped GROUP BY value_id
)
SELECT v.id, v.title, v.description, v.icon_name, v.icon_color,
       coalesce(p.cur_n, 0) AS cur_n, coalesce(p.cur_coins, 0) AS cur_coins, coalesce(p.prev_n, 0) AS prev_n
FROM company_values v LEFT JOIN per_value p ON p.value_id = v.id
WHERE v.company_id = :cid AND (v.is_active OR coalesce(p.cur_n, 0) > 0)
ORDER BY cur_n DESC, v.sort_order, v.id
"""

_TOP_USERS = """
sent AS (SELECT sender_id AS uid, count(*) AS n, sum(coins) AS coins FROM cur GROUP BY sender_id),
recv AS (SELECT receiver_id AS uid, count(*) AS n, sum(coins) AS coins FROM cur GROUP BY receiver_id),
stats AS (
    SELECT u.id, u.name, u.email, u.avatar, d.name AS dept, j.name AS job_title,
           coalesce(sent.n, 0) AS sn, coalesce(sent.coins, 0) AS sc,
           coalesce(recv.n, 0) AS rn, coalesce(recv.coins, 0) AS rc
    FROM scope_users u
    LEFT JOIN sent ON sent.uid = u.id
    LEFT JOIN recv ON recv.uid = u.id
    LEFT JOIN departments d ON d.id = u.department_id
    LEFT JOIN job_titles j ON j.id = u.job_title_id
    WHERE sent.n IS NOT NULL OR recv.n IS NOT NULL
),
ranked AS (
    SELECT *,
        row_number() OVER (ORDER BY sn DESC, sc DESC, id) AS s_rank,
        row_number() OVER (ORDER BY rn DESC, rc DESC, id) AS r_rank,
        row_number() OVER (
            ORDER BY CASE WHEN sn > 0 AND rn > 0
                          THEN least(sn, rn)::numeric / greatest(sn, rn) ELSE -1 END DESC,
                     sn + rn DESC, id
        ) AS b_rank
    FROM stats
)
SELECT * FROM ranked WHERE s_rank <= :top OR r_rank <= :top OR b_rank <= :top
"""

_DEPARTMENTS = """
dept_users AS (SELECT department_id, count(*) AS n FROM scope_users GROUP BY department_id),
dept_active AS (
    SELECT u.department_id, count(*) AS n FROM scope_users u JOIN cur_active a ON a.uid = u.id
    GROUP BY u.department_id
),
dept_sent AS (SELECT s_dept, count(*) AS n FROM cur GROUP BY s_dept),
dept_values AS (
    SELECT s_dept, value_id, count(*) AS n,
           row_number() OVER (PARTITION BY s_dept ORDER BY count(*) DESC, value_id) AS rk
    FROM cur GROUP BY s_dept, value_id
)
SELECT d.id, d.name, coalesce(du.n, 0) AS total_users, coalesce(da.n, 0) AS active_users,
       coalesce(ds.n, 0) AS compliments, v.title AS top_value, dv.n AS top_value_n
FROM departments d
LEFT JOIN dept_users du ON du.department_id = d.id
LEFT JOIN dept_active da ON da.department_id = d.id
LEFT JOIN dept_sent ds ON ds.s_dept = d.id
LEFT JOIN dept_values dv ON dv.s_dept = d.id AND dv.rk = 1
LEFT JOIN company_values v ON v.id = dv.value_id
WHERE d.company_id = :cid AND (CAST(:dept AS text) IS NULL OR d.id = :dept)
ORDER BY d.name, d.id
"""

_FLOW = """
x AS (SELECT 1)
SELECT c.s_dept, sd.name, c.r_dept, rd.name, count(*) AS n, sum(c.coins) AS coins
FROM cur c
JOIN departments sd ON sd.id = c.s_dept
JOIN departments rd ON rd.id = c.r_dept
WHERE c.s_dept <> c.r_dept
GROUP BY c.s_dept, sd.name, c.r_dept, rd.name
ORDER BY n DESC, sd.name, rd.name
LIMIT 50
"""

# One statement for the three time breakdowns, tagged by kind.
_TEMPORAL = """
local AS (SELECT coins, created_at AT TIME ZONE :tz AS at FROM cur)
SELECT 'week' AS kind, date_trunc('week', at)::date AS day, NULL::int AS num,
       count(*) AS n, sum(coins) AS coins
FROM local GROUP BY 2
UNION ALL
SELECT 'dow', NULL, extract(dow FROM at)::int, count(*), sum(coins) FROM local GROUP BY 3
UNION ALL
SELECT 'hour', NULL, extract(hour FROM at)::int, count(*), sum(coins) FROM local GROUP BY 3
"""

_MONTHS = """
SELECT count(*) FILTER (WHERE c.created_at >= :month_start) AS cur_n,
       coalesce(sum(c.coins) FILTER (WHERE c.created_at >= :month_start), 0) AS cur_coins,
       count(*) FILTER (WHERE c.created_at < :month_start) AS prev_n,
       coalesce(sum(c.coins) FILTER (WHERE c.created_at < :month_start), 0) AS prev_coins
FROM compliments c
JOIN users s ON s.id = c.sender_id
JOIN users r ON r.id = c.receiver_id
WHERE c.company_id = :cid AND c.created_at >= :prev_month_start AND c.created_at < :month_end
  AND (CAST(:dept AS text) IS NULL OR s.department_id = :dept OR r.department_id = :dept)
  AND (CAST(:jt AS text) IS NULL OR s.job_title_id = :jt OR r.job_title_id = :jt)
"""

_INACTIVE = """
inactive AS (SELECT u.* FROM scope_users u WHERE NOT EXISTS (SELECT 1 FROM cur_active a WHERE a.uid = u.id))
SELECT count(*) OVER () AS total, i.id, i.name, d.name AS dept,
       greatest(
           (SELECT max(c.created_at) FROM compliments c WHERE c.sender_id = i.id),
           (SELECT max(c.created_at) FROM compliments c WHERE c.receiver_id = i.id)
       ) AS last_activity
FROM inactive i LEFT JOIN departments d ON d.id = i.department_id
ORDER BY i.name, i.id
LIMIT :list_limit
"""

_RECENT = """
x AS (SELECT 1)
SELECT c.id, c.coins, c.message, c.created_at,
       s.id AS s_id, s.name AS s_name, s.avatar AS s_avatar, sd.name AS s_dept,
       r.id AS r_id, r.name AS r_name, r.avatar AS r_avatar, rd.name AS r_dept,
       v.id AS v_id, v.title AS v_title, v.icon_name, v.icon_color
FROM cur c
JOIN users s ON s.id = c.sender_id
JOIN users r ON r.id = c.receiver_id
LEFT JOIN departments sd ON sd.id = s.department_id
LEFT JOIN departments rd ON rd.id = r.department_id
JOIN company_values v ON v.id = c.value_id
WHERE c.is_public
ORDER BY c.created_at DESC, c.id DESC
LIMIT 10
"""


def _pct(part: float, whole: float) -> float:
    return round(part * 100.0 / whole, 2) if whole else 0.0


def _change(cur: float, prev: float) -> float:
    if prev:
        return round((cur - prev) * 100.0 / prev, 2)
    return 100.0 if cur else 0.0


def _label(change: float) -> str:
    sign = "+" if change > 0 else ""
    return f"{sign}{change:.1f}% vs período anterior"


def _iso_day(day: date) -> str:
    return day.isoformat()


def _month_bounds(scope: Scope) -> dict[str, Any]:
    first = scope.end_date.replace(day=1)
    prev_first = (first - timedelta(days=1)).replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return {
        "month_start": scope.at(first),
        "prev_month_start": scope.at(prev_first),
        "month_end": scope.at(next_first),
        "month_label": first.strftime("%Y-%m"),
        "prev_month_label": prev_first.strftime("%Y-%m"),
    }


def overview_numbers(session: Session, scope: Scope) -> Any:
    return _rows(session, _OVERVIEW, scope.params())[0]


def values_distribution(session: Session, scope: Scope, total: int) -> list[dict[str, Any]]:
    out = []
    for r in _rows(session, _VALUES, scope.params()):
        change = _change(r.cur_n, r.prev_n)
        out.append(
            {
                "valueId": r.id,
                "valueName": r.title,
                "description": r.description,
                "iconName": r.icon_name,
                "iconColor": r.icon_color,
                "count": int(r.cur_n),
                "percentage": _pct(r.cur_n, total),
                "totalCoins": int(r.cur_coins),
                "trend": "up" if r.cur_n > r.prev_n else "down" if r.cur_n < r.prev_n else "stable",
                "trendPercentage": change,
            }
        )
    return out


def temporal(session: Session, scope: Scope) -> tuple[list[Any], dict[int, Any], dict[int, Any]]:
    weeks, dows, hours = [], {}, {}
    for r in _rows(session, _TEMPORAL, scope.params()):
        if r.kind == "week":
            weeks.append(r)
        elif r.kind == "dow":
            dows[r.num] = r
        else:
            hours[r.num] = r
    weeks.sort(key=lambda r: r.day)
    return weeks, dows, hours


def compliments_dashboard(session: Session, scope: Scope) -> dict[str, Any]:
    started = utcnow()
    params = scope.params()
    o = overview_numbers(session, scope)
    total, coins = int(o.cur_count), int(o.cur_coins)
    active, users = int(o.cur_active), int(o.total_users)

    top_rows = _rows(session, _TOP_USERS, {**params, "top": TOP_N})
    senders = sorted((r for r in top_rows if r.s_rank <= TOP_N and r.sn > 0), key=lambda r: r.s_rank)
    receivers = sorted((r for r in top_rows if r.r_rank <= TOP_N and r.rn > 0), key=lambda r: r.r_rank)
    balanced = sorted(
        (r for r in top_rows if r.b_rank <= TOP_N and r.sn > 0 and r.rn > 0), key=lambda r: r.b_rank
    )

    departments = []
    for r in _rows(session, _DEPARTMENTS, params):
        departments.append(
            {
                "departmentId": r.id,
                "departmentName": r.name,
                "totalUsers": int(r.total_users),
                "activeUsers": int(r.active_users),
                "totalCompliments": int(r.compliments),
                "avgPerUser": round(r.compliments / r.total_users, 2) if r.total_users else 0.0,
                "engagementRate": _pct(r.active_users, r.total_users),
                "topValue": {"valueName": r.top_value, "count": int(r.top_value_n)} if r.top_value else None,
            }
        )
    flow = [
        {
            "fromDepartmentId": r[0],
            "fromDepartmentName": r[1],
            "toDepartmentId": r[2],
            "toDepartmentName": r[3],
            "complimentCount": int(r[4]),
            "coinAmount": int(r[5]),
        }
        for r in _rows(session, _FLOW, params)
    ]

    weeks, dows, hours = temporal(session, scope)
    months = _month_bounds(scope)
    m = session.execute(text(_MONTHS), {**params, **months}).one()

    inactive_rows = _rows(session, _INACTIVE, {**params, "list_limit": 20})
    inactive_count = int(inactive_rows[0].total) if inactive_rows else 0

    now = utcnow()
    recent = [
        {
            "id": r.id,
            "coins": r.coins,
            "message": r.message,
            "sender": {"id": r.s_id, "name": r.s_name, "avatar": r.s_avatar, "department": r.s_dept},
            "receiver": {"id": r.r_id, "name": r.r_name, "avatar": r.r_avatar, "department": r.r_dept},
            "companyValue": {
                "id": r.v_id,
                "title": r.v_title,
                "iconName": r.icon_name,
                "iconColor": r.icon_color,
            },
            "createdAt": r.created_at,
            "timeAgo": time_ago(r.created_at, now),
        }
        for r in _rows(session, _RECENT, params)
    ]

    values = values_distribution(session, scope, total)
    comparison = {
        "complimentsChange": _change(total, o.prev_count),
        "coinsChange": _change(coins, o.prev_coins),
        "usersChange": _change(active, o.prev_active),
    }
    for key in ("compliments", "coins", "users"):
        comparison[f"{key}ChangeLabel"] = _label(comparison[f"{key}Change"])
    engagement_rate = round(total / active, 2) if active else 0.0
    body = {
        "period": {
            "startDate": _iso_day(scope.start_date),
            "endDate": _iso_day(scope.end_date),
            "previousPeriod": {
                "startDate": _iso_day(scope.prev_start_date),
                "endDate": _iso_day(scope.prev_end_date),
            },
        },
        "overview": {
            "totalCompliments": total,
            "totalCoinsDistributed": coins,
            "activeUsers": {"count": active, "percentage": _pct(active, users), "total": users},
            "avgCoinsPerCompliment": round(coins / total, 2) if total else 0.0,
            "engagementRate": engagement_rate,
            "comparison": comparison,
        },
        "valuesDistribution": values,
        "topUsers": {
            "senders": [
                {
                    **_person(r),
                    "jobTitle": r.job_title,
                    "sentCount": int(r.sn),
                    "totalCoinsSent": int(r.sc),
                    "avgCoinsPerCompliment": round(r.sc / r.sn, 2),
                }
                for r in senders
            ],
            "receivers": [
                {
                    **_person(r),
                    "jobTitle": r.job_title,
                    "receivedCount": int(r.rn),
                    "totalCoinsReceived": int(r.rc),
                    "avgCoinsPerCompliment": round(r.rc / r.rn, 2),
                }
                for r in receivers
            ],
            "balanced": [
                {
                    **_person(r),
                    "sentCount": int(r.sn),
                    "receivedCount": int(r.rn),
                    "balanceScore": round(min(r.sn, r.rn) * 100.0 / max(r.sn, r.rn), 2),
                }
                for r in balanced
            ],
        },
        "departmentAnalytics": {"departments": departments, "crossDepartmentFlow": flow},
        "temporalPatterns": {
            "weeklyTrend": [
                {
                    "weekStart": _iso_day(r.day),
                    "weekEnd": _iso_day(r.day + timedelta(days=6)),
                    "count": int(r.n),
                    "coins": int(r.coins),
                }
                for r in weeks
            ],
            "dayOfWeekDistribution": [
                {
                    "dayOfWeek": d,
                    "dayName": DAY_NAMES[d],
                    "count": int(dows[d].n) if d in dows else 0,
                    "percentage": _pct(dows[d].n if d in dows else 0, total),
                }
                for d in range(7)
            ],
            "hourlyDistribution": [
                {
                    "hour": h,
                    "count": int(hours[h].n) if h in hours else 0,
                    "percentage": _pct(hours[h].n if h in hours else 0, total),
                }
                for h in range(24)
            ],
            "monthlyGrowth": {
                "currentMonth": {
                    "month": months["month_label"],
                    "count": int(m.cur_n),
                    "coins": int(m.cur_coins),
                },
                "previousMonth": {
                    "month": months["prev_month_label"],
                    "count": int(m.prev_n),
                    "coins": int(m.prev_coins),
                },
                "growthRate": _change(m.cur_n, m.prev_n),
            },
        },
        "recentActivity": recent,
        "engagementMetrics": {
            "participationRate": _pct(active, users),
            "averageComplimentsPerUser": round(total / users, 2) if users else 0.0,
            "medianCoinsPerCompliment": float(o.median_coins) if o.median_coins is not None else 0.0,
            "inactiveUsers": {
                "count": inactive_count,
                "percentage": _pct(inactive_count, users),
                "list": [
                    {"userId": r.id, "name": r.name, "department": r.dept, "lastActivity": r.last_activity}
                    for r in inactive_rows
                ],
            },
        },
    }
    body["insights"] = _insights(body)
    body["metadata"] = {
        "generatedAt": utcnow(),
        "executionTime": int((utcnow() - started).total_seconds() * 1000),
        "filters": {"departmentId": scope.department_id, "jobTitleId": scope.job_title_id},
        "companyInfo": {
            "totalEmployees": int(o.employees),
            "activeEmployees": int(o.active_employees),
            "totalValues": int(o.total_values),
            "activeValues": int(o.active_values),
        },
    }
    return body


def _person(r: Any) -> dict[str, Any]:
    return {"userId": r.id, "name": r.name, "email": r.email, "avatar": r.avatar, "department": r.dept}


def _insights(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A few rule-based hints from the numbers already computed (no extra query)."""
    out: list[dict[str, Any]] = []
    participation = body["engagementMetrics"]["participationRate"]
    change = body["overview"]["comparison"]["complimentsChange"]
    if participation < 50:
        out.append(
            _insight(
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
            _insight(
                "success",
                "engagement",
                "Boa participação",
                f"{participation}% das pessoas participaram no período.",
                participation,
                False,
                "low",
            )
        )
    if change <= -20:
        out.append(
            _insight(
                "warning",
                "engagement",
                "Queda nos elogios",
                f"Os elogios caíram {abs(change)}% em relação ao período anterior.",
                change,
                True,
                "high",
            )
        )
    elif change >= 20:
        out.append(
            _insight(
                "success",
                "engagement",
                "Crescimento nos elogios",
                f"Os elogios cresceram {change}% em relação ao período anterior.",
                change,
                False,
                "medium",
            )
        )
    unused = [v["valueName"] for v in body["valuesDistribution"] if v["count"] == 0]
    if unused:
        out.append(
            _insight(
                "info",
                "values",
                "Valores pouco reconhecidos",
                "Sem elogios no período: " + ", ".join(unused),
                float(len(unused)),
                True,
                "medium",
            )
        )
    quiet = [
        d["departmentName"]
        for d in body["departmentAnalytics"]["departments"]
        if d["totalUsers"] and not d["totalCompliments"]
    ]
    if quiet:
        out.append(
            _insight(
                "warning",
                "departments",
                "Departamentos sem elogios",
                "Nenhum elogio enviado por: " + ", ".join(quiet),
                float(len(quiet)),
                True,
                "medium",
            )
        )
    inactive = body["engagementMetrics"]["inactiveUsers"]["count"]
    if inactive:
        out.append(
            _insight(
                "info",
                "users",
                "Pessoas inativas",
                f"{inactive} pessoa(s) não enviaram nem receberam elogios no período.",
                float(inactive),
                True,
                "low",
            )
        )
    return out


def _insight(
    kind: str,
    category: str,
    title: str,
    description: str,
    metric: float | None,
    actionable: bool,
    priority: str,
) -> dict[str, Any]:
    return {
        "type": kind,
        "category": category,
        "title": title,
        "description": description,
        "metric": metric,
        "actionable": actionable,
        "priority": priority,
    }


# --- GET /admin/dashboard/stats -------------------------------------------------------------------

_REDEMPTIONS = """
SELECT count(*) FROM wallet_transactions t
JOIN wallets w ON w.id = t.wallet_id
JOIN users u ON u.id = w.user_id
WHERE t.company_id = :cid AND t.transaction_type = 'DEBIT' AND t.balance_type = 'REDEEMABLE'
  AND t.created_at >= :start AND t.created_at < :end
  AND (CAST(:dept AS text) IS NULL OR u.department_id = :dept)
  AND (CAST(:jt AS text) IS NULL OR u.job_title_id = :jt)
"""


def dashboard_stats(session: Session, scope: Scope) -> dict[str, Any]:
    o = overview_numbers(session, scope)
    total, active, users = int(o.cur_count), int(o.cur_active), int(o.total_users)
    weeks, _, _ = temporal(session, scope)
    values = [v for v in values_distribution(session, scope, total) if v["count"] > 0][:5]
    redeemed = int(session.execute(text(_REDEMPTIONS), scope.params()).scalar_one())
    return {
        "period": {"startDate": scope.start, "endDate": scope.end - timedelta(microseconds=1000)},
        "metrics": {
            "totalCompliments": total,
            "coinsDistributed": int(o.cur_coins),
            "activeUsers": {"count": active, "percentage": _pct(active, users)},
            "prizesRedeemed": redeemed,
            "engagementRate": round(total / active, 2) if active else 0.0,
        },
        "weeklyCompliments": [{"weekStart": _iso_day(r.day), "count": int(r.n)} for r in weeks],
        "topValues": [
            {
                "valueId": v["valueId"],
                "valueName": v["valueName"],
                "count": v["count"],
                "percentage": v["percentage"],
            }
            for v in values
        ],
        "generatedAt": utcnow(),
    }


# --- GET /admin/compliments-dashboard/network ------------------------------------------------------

_NETWORK_LINKS = """
pairs AS (
    SELECT c.sender_id, c.receiver_id, count(*) AS n,
           (array_agg(c.message ORDER BY c.created_at DESC))[1:5] AS messages
    FROM cur c
    JOIN users s ON s.id = c.sender_id
    JOIN users r ON r.id = c.receiver_id
    LEFT JOIN departments sd ON sd.id = s.department_id
    LEFT JOIN departments rd ON rd.id = r.department_id
    WHERE (CAST(:dept_name AS text) IS NULL OR sd.name = :dept_name OR rd.name = :dept_name)
      AND (CAST(:user_ids AS text[]) IS NULL
           OR c.sender_id = ANY(CAST(:user_ids AS text[])) OR c.receiver_id = ANY(CAST(:user_ids AS text[])))
    GROUP BY c.sender_id, c.receiver_id
    HAVING count(*) >= :min_connections
)
SELECT * FROM pairs ORDER BY n DESC, sender_id, receiver_id LIMIT :limit
"""

_NETWORK_NODES = """
given AS (SELECT sender_id AS uid, count(*) AS n FROM cur WHERE sender_id = ANY(:ids) GROUP BY sender_id),
got AS (SELECT receiver_id AS uid, count(*) AS n FROM cur WHERE receiver_id = ANY(:ids) GROUP BY receiver_id)
SELECT u.id, u.name, u.avatar, j.name AS job_title, d.name AS dept,
       coalesce(given.n, 0) AS given, coalesce(got.n, 0) AS got
FROM users u
LEFT JOIN departments d ON d.id = u.department_id
LEFT JOIN job_titles j ON j.id = u.job_title_id
LEFT JOIN given ON given.uid = u.id
LEFT JOIN got ON got.uid = u.id
WHERE u.company_id = :cid AND u.id = ANY(:ids)
ORDER BY u.name, u.id
"""


def network(session: Session, scope: Scope, query: dict[str, Any]) -> dict[str, Any]:
    params = {
        **scope.params(),
        "dept_name": query.get("department") or None,
        "user_ids": query.get("userIds") or None,
        "min_connections": query.get("minConnections") or 1,
        "limit": query.get("limit") or 50,
    }
    links = _rows(session, _NETWORK_LINKS, params)
    ids = sorted({r.sender_id for r in links} | {r.receiver_id for r in links})
    nodes = _rows(session, _NETWORK_NODES, {**params, "ids": ids}) if ids else []
    return {
        "nodes": [
            {
                "id": r.id,
                "name": r.name,
                "avatar": r.avatar,
                "role": r.job_title or "",
                "department": r.dept,
                "complimentsGiven": int(r.given),
                "complimentsReceived": int(r.got),
            }
            for r in nodes
        ],
        "links": [
            {
                "source": r.sender_id,
                "target": r.receiver_id,
                "value": int(r.n),
                "compliments": list(r.messages),
            }
            for r in links
        ],
    }
