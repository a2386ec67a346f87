"""The dashboards' SQL: aggregate statements over the compliments, users, departments and values
in a `Scope`, computed by Postgres (GROUP BY, window functions, percentile_cont). A fixed, small
number of statements per request whatever the number of compliments; no compliment row is loaded
into Python except the 10 of the recent activity. Each function returns the statement's rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.features.dashboards.scope import Scope

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

_REDEMPTIONS = """
SELECT count(*) FROM wallet_transactions t
JOIN wallets w ON w.id = t.wallet_id
JOIN users u ON u.id = w.user_id
WHERE t.company_id = :cid AND t.transaction_type = 'DEBIT' AND t.balance_type = 'REDEEMABLE'
  AND t.created_at >= :start AND t.created_at < :end
  AND (CAST(:dept AS text) IS NULL OR u.department_id = :dept)
  AND (CAST(:jt AS text) IS NULL OR u.job_title_id = :jt)
"""

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


def overview(session: Session, scope: Scope) -> Any:
    return _rows(session, _OVERVIEW, scope.params())[0]


def values(session: Session, scope: Scope) -> list[Any]:
    """Each company value (active, or used in the period): counts now and in the previous period."""
    return _rows(session, _VALUES, scope.params())


def top_users(session: Session, scope: Scope, top: int) -> list[Any]:
    """Users ranked by sent, received and balance (s_rank, r_rank, b_rank), any rank within `top`."""
    return _rows(session, _TOP_USERS, {**scope.params(), "top": top})


def departments(session: Session, scope: Scope) -> list[Any]:
    return _rows(session, _DEPARTMENTS, scope.params())


def cross_department_flow(session: Session, scope: Scope) -> list[Any]:
    return _rows(session, _FLOW, scope.params())


def temporal(session: Session, scope: Scope) -> list[Any]:
    """Rows tagged `kind`: 'week' (day = the week's Monday), 'dow' and 'hour' (num)."""
    return _rows(session, _TEMPORAL, scope.params())


def months(session: Session, scope: Scope, bounds: dict[str, Any]) -> Any:
    """Compliments and coins of the month of the period's end and of the month before it."""
    return session.execute(text(_MONTHS), {**scope.params(), **bounds}).one()


def inactive_users(session: Session, scope: Scope, limit: int) -> list[Any]:
    """Users in scope with no compliment in the period (first `limit` by name; `total` on each row)."""
    return _rows(session, _INACTIVE, {**scope.params(), "list_limit": limit})


def recent(session: Session, scope: Scope) -> list[Any]:
    return _rows(session, _RECENT, scope.params())


def redemptions(session: Session, scope: Scope) -> int:
    """Redeemable coins spent (prize redemptions) in the period by users in scope."""
    return int(session.execute(text(_REDEMPTIONS), scope.params()).scalar_one())


def network_links(session: Session, scope: Scope, filters: dict[str, Any]) -> list[Any]:
    return _rows(session, _NETWORK_LINKS, {**scope.params(), **filters})


def network_nodes(session: Session, scope: Scope, ids: list[str]) -> list[Any]:
    return _rows(session, _NETWORK_NODES, {**scope.params(), "ids": ids})
