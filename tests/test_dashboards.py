"""Admin dashboards (contract §10): the compliments dashboard on 50,000 compliments answers from
a small, fixed number of aggregate statements and equals a reference computed here from raw rows;
plan gating, date rules, tenancy and permissions."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text

from app import db
from app.features.identity.models import Company, Department, JobTitle, User
from tests.recognition_helpers import add_value

N = 50_000
DASH = "/admin/compliments-dashboard"
TOP_KEYS = {
    "period", "overview", "valuesDistribution", "topUsers", "departmentAnalytics", "temporalPatterns",
    "insights", "recentActivity", "engagementMetrics", "metadata",
}  # fmt: skip


def _professional(company_id: str) -> None:
    with db.session_scope() as session:
        session.get(Company, company_id).plan = "PROFESSIONAL"


def _org(company_id: str, users: list[str]) -> tuple[list[str], str]:
    """Two departments (users alternate), one job title; returns (department ids, job title id)."""
    with db.session_scope() as session:
        depts = [Department(company_id=company_id, name=n) for n in ("Engineering", "Sales")]
        session.add_all(depts)
        session.flush()
        title = JobTitle(company_id=company_id, name="Analyst", department_id=depts[0].id)
        session.add(title)
        session.flush()
        for i, user_id in enumerate(users):
            user = session.get(User, user_id)
            user.department_id = depts[i % 2].id
            if i % 3 == 0:
                user.job_title_id = title.id
        return [d.id for d in depts], title.id


def _seed_compliments(company_id: str, users: list[str], values: list[int], end: datetime) -> None:
    """N compliments in one INSERT … SELECT generate_series, spread over the last ~40 days."""
    with db.engine().begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO compliments (id, company_id, sender_id, receiver_id, value_id, message, coins,
                                         is_public, created_at)
                SELECT 'x' || g, :cid,
                       (:users)[1 + (g * 7) % :n],
                       (:users)[1 + ((g * 7) % :n + 1 + g % (:n - 1)) % :n],
                       (:vals)[1 + (g * 3) % :nv],
                       'Great work, number ' || g,
                       5 * (1 + (g * 13) % 20),
                       g % 5 <> 0,
                       :end - ((g * 37) % (40 * 24 * 60)) * interval '1 minute' - interval '1 second'
                FROM generate_series(1, :total) AS g
                """
            ),
            {
                "cid": company_id,
                "users": users,
                "n": len(users),
                "vals": values,
                "nv": len(values),
                "end": end,
                "total": N,
            },
        )


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> StatementCounter:
        event.listen(db.engine(), "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(db.engine(), "before_cursor_execute", self._on)

    def _on(self, *args: object, **kwargs: object) -> None:
        self.count += 1


@pytest.mark.slow
def test_compliments_dashboard_on_50k_matches_reference(client, make_tenant, make_user):
    tenant = make_tenant()
    users = [tenant.admin_id] + [make_user(tenant.company_id)[0] for _ in range(11)]
    depts, _title = _org(tenant.company_id, users)
    values = [add_value(tenant.company_id, t) for t in ("Ownership", "Teamwork", "Courage")]
    tz = ZoneInfo("America/Sao_Paulo")
    end_day = date(2026, 3, 31)
    start_day = end_day - timedelta(days=29)
    period_end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    period_start = datetime.combine(start_day, datetime.min.time(), tzinfo=tz)
    prev_start = period_start - timedelta(days=30)
    query = f"{DASH}?startDate={start_day}&endDate={end_day}&companyValueId=3"
    with StatementCounter() as small:  # almost no data: the baseline statement count
        assert client.get(query, headers=tenant.headers()).status_code == 200
    _seed_compliments(tenant.company_id, users, values, period_end)
    with StatementCounter() as big:
        response = client.get(query, headers=tenant.headers())
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == TOP_KEYS

    # --- reference from raw rows fetched by the test itself -----------------------------------
    with db.engine().connect() as conn:
        rows = conn.execute(
            text("SELECT sender_id, receiver_id, value_id, coins, created_at FROM compliments")
        ).all()
        dept_of = dict(conn.execute(text("SELECT id, department_id FROM users")).tuples().all())
    cur = [r for r in rows if period_start <= r.created_at < period_end]
    prev = [r for r in rows if prev_start <= r.created_at < period_start]
    assert 0 < len(cur) < N and prev
    active = {r.sender_id for r in cur} | {r.receiver_id for r in cur}
    overview = body["overview"]
    assert overview["totalCompliments"] == len(cur)
    assert overview["totalCoinsDistributed"] == sum(r.coins for r in cur)
    assert overview["activeUsers"] == {"count": len(active), "percentage": 100.0, "total": len(users)}
    assert overview["avgCoinsPerCompliment"] == round(sum(r.coins for r in cur) / len(cur), 2)
    assert overview["comparison"]["complimentsChange"] == round((len(cur) - len(prev)) * 100 / len(prev), 2)
    assert set(overview["comparison"]) == {
        "complimentsChange", "complimentsChangeLabel", "coinsChange", "coinsChangeLabel", "usersChange",
        "usersChangeLabel",
    }  # fmt: skip
    assert body["engagementMetrics"]["medianCoinsPerCompliment"] == statistics.median(r.coins for r in cur)

    by_value = Counter(r.value_id for r in cur)
    prev_by_value = Counter(r.value_id for r in prev)
    got_values = {v["valueId"]: v for v in body["valuesDistribution"]}
    assert set(got_values) == set(values)
    for value_id in values:
        item = got_values[value_id]
        assert item["count"] == by_value[value_id]
        assert item["totalCoins"] == sum(r.coins for r in cur if r.value_id == value_id)
        assert item["percentage"] == round(by_value[value_id] * 100 / len(cur), 2)
        expected = "up" if by_value[value_id] > prev_by_value[value_id] else "down"
        if by_value[value_id] == prev_by_value[value_id]:
            expected = "stable"
        assert item["trend"] == expected

    sent = Counter(r.sender_id for r in cur)
    senders = body["topUsers"]["senders"]
    assert [s["sentCount"] for s in senders] == sorted(sent.values(), reverse=True)[:10]
    assert all(s["sentCount"] == sent[s["userId"]] for s in senders)
    received = Counter(r.receiver_id for r in cur)
    assert all(r["receivedCount"] == received[r["userId"]] for r in body["topUsers"]["receivers"])

    local = [r.created_at.astimezone(tz) for r in cur]
    dow = Counter((t.weekday() + 1) % 7 for t in local)  # Postgres dow: 0 = Sunday
    assert [d["count"] for d in body["temporalPatterns"]["dayOfWeekDistribution"]] == [
        dow[i] for i in range(7)
    ]
    hours = Counter(t.hour for t in local)
    assert [h["count"] for h in body["temporalPatterns"]["hourlyDistribution"]] == [
        hours[i] for i in range(24)
    ]
    weeks = Counter((t.date() - timedelta(days=t.weekday())).isoformat() for t in local)
    assert {w["weekStart"]: w["count"] for w in body["temporalPatterns"]["weeklyTrend"]} == dict(weeks)

    dept_sent = Counter(dept_of[r.sender_id] for r in cur)
    got_depts = {d["departmentId"]: d for d in body["departmentAnalytics"]["departments"]}
    assert {k: v["totalCompliments"] for k, v in got_depts.items()} == {d: dept_sent[d] for d in depts}
    flow = Counter((dept_of[r.sender_id], dept_of[r.receiver_id]) for r in cur)
    for item in body["departmentAnalytics"]["crossDepartmentFlow"]:
        assert item["complimentCount"] == flow[(item["fromDepartmentId"], item["toDepartmentId"])]

    assert len(body["recentActivity"]) == 10
    assert set(body["recentActivity"][0]) == {
        "id", "coins", "message", "sender", "receiver", "companyValue", "createdAt", "timeAgo",
    }  # fmt: skip
    assert body["metadata"]["companyInfo"] == {
        "totalEmployees": 12, "activeEmployees": 12, "totalValues": 3, "activeValues": 3,
    }  # fmt: skip
    for insight in body["insights"]:
        assert set(insight) == {
            "type",
            "category",
            "title",
            "description",
            "metric",
            "actionable",
            "priority",
        }

    # --- the statement count is small and does not grow with the data -------------------------
    assert big.count == small.count <= 15, (small.count, big.count)

    # --- filters: the filtered numbers follow the same rule, on any plan (contract §10) ---------
    filtered = client.get(f"{query}&departmentId={depts[0]}", headers=tenant.headers())
    assert filtered.status_code == 200, filtered.json
    involved = [r for r in cur if depts[0] in (dept_of[r.sender_id], dept_of[r.receiver_id])]
    assert filtered.json["overview"]["totalCompliments"] == len(involved)
    # The admin home's stats gate the same filters to PROFESSIONAL.
    stats_path = f"/admin/dashboard/stats?startDate={start_day}&endDate={end_day}&departmentId={depts[0]}"
    gated = client.get(stats_path, headers=tenant.headers())
    assert gated.status_code == 403
    assert gated.json["error"]["code"] == "PLAN_RESTRICTION"
    assert gated.json["error"]["details"] == {
        "featureName": "Department and job title filters", "requiredPlan": "PROFESSIONAL",
        "currentPlan": "ESSENTIAL", "upgradeRequired": True,
    }  # fmt: skip
    _professional(tenant.company_id)
    stats = client.get(stats_path, headers=tenant.headers())
    assert stats.status_code == 200
    assert stats.json["metrics"]["totalCompliments"] == len(involved)


def test_date_rules_filters_tenancy_and_permissions(client, make_tenant, make_user):
    tenant, other = make_tenant(), make_tenant("Other")
    _professional(tenant.company_id)
    with db.session_scope() as session:
        foreign = Department(company_id=other.company_id, name="Theirs")
        session.add(foreign)
        session.flush()
        foreign_id = foreign.id
    bad = [
        "startDate=2026-02-01&endDate=2026-01-01",
        "startDate=2024-01-01&endDate=2026-01-01",
        "startDate=not-a-date",
        f"departmentId={foreign_id}",
        "jobTitleId=nope",
    ]
    for path in (DASH, "/admin/dashboard/stats"):
        for qs in bad:
            response = client.get(f"{path}?{qs}", headers=tenant.headers())
            assert response.status_code == 400, (path, qs, response.json)
            assert response.json["message"]
        ok = client.get(f"{path}?startDate=2025-01-01&endDate=2025-12-31", headers=tenant.headers())
        assert ok.status_code == 200
    _, employee = make_user(tenant.company_id)
    for path in (DASH, f"{DASH}/network", "/admin/dashboard/stats", "/admin/dashboard/departments",
                 "/admin/dashboard/job-titles"):  # fmt: skip
        assert client.get(path, headers=tenant.headers(employee)).status_code == 403, path
    # ESSENTIAL plan: the network is refused with 403 PLAN_RESTRICTION, never 500.
    net = client.get(f"{DASH}/network", headers=other.headers())
    assert net.status_code == 403 and net.json["error"]["code"] == "PLAN_RESTRICTION"
    assert net.json["error"]["details"]["upgradeRequired"] is True


def test_stats_helpers_and_network_replay(client, make_tenant, make_user):
    tenant = make_tenant()
    users = [tenant.admin_id] + [make_user(tenant.company_id)[0] for _ in range(3)]
    depts, title = _org(tenant.company_id, users)
    value = add_value(tenant.company_id, "Ownership")
    now = datetime.now(ZoneInfo("UTC"))
    with db.engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO compliments (id, company_id, sender_id, receiver_id, value_id, message, coins, "
                "created_at) VALUES ('a1', :c, :u0, :u1, :v, 'thanks for everything', 10, :t), "
                "('a2', :c, :u0, :u1, :v, 'thanks again, truly', 20, :t), "
                "('a3', :c, :u1, :u2, :v, 'well done on launch', 5, :t)"
            ),
            {
                "c": tenant.company_id,
                "u0": users[0],
                "u1": users[1],
                "u2": users[2],
                "v": value,
                "t": now - timedelta(hours=2),
            },
        )
    stats = client.get("/admin/dashboard/stats", headers=tenant.headers())
    assert stats.status_code == 200, stats.json
    assert set(stats.json) == {"period", "metrics", "weeklyCompliments", "topValues", "generatedAt"}
    metrics = stats.json["metrics"]
    assert (metrics["totalCompliments"], metrics["coinsDistributed"], metrics["prizesRedeemed"]) == (3, 35, 0)
    assert metrics["activeUsers"] == {"count": 3, "percentage": 75.0}
    assert metrics["engagementRate"] == 1.0
    assert stats.json["topValues"] == [
        {"valueId": value, "valueName": "Ownership", "count": 3, "percentage": 100.0}
    ]
    assert stats.json["period"]["startDate"].endswith("Z")

    departments = client.get("/admin/dashboard/departments", headers=tenant.headers()).json
    assert departments == [
        {"id": depts[0], "name": "Engineering", "userCount": 2},
        {"id": depts[1], "name": "Sales", "userCount": 2},
    ]
    titles = client.get("/admin/dashboard/job-titles", headers=tenant.headers()).json
    assert titles == [{"id": title, "name": "Analyst", "userCount": 2}]

    _professional(tenant.company_id)
    net = client.get(f"{DASH}/network?minConnections=1", headers=tenant.headers())
    assert net.status_code == 200, net.json
    links = {(link["source"], link["target"]): link for link in net.json["links"]}
    assert links[(users[0], users[1])]["value"] == 2
    assert sorted(links[(users[0], users[1])]["compliments"]) == [
        "thanks again, truly",
        "thanks for everything",
    ]
    nodes = {n["id"]: n for n in net.json["nodes"]}
    assert set(nodes[users[1]]) == {
        "id", "name", "avatar", "role", "department", "complimentsGiven", "complimentsReceived",
    }  # fmt: skip
    assert (nodes[users[1]]["complimentsGiven"], nodes[users[1]]["complimentsReceived"]) == (1, 2)
    two = client.get(f"{DASH}/network?minConnections=2", headers=tenant.headers()).json
    assert [(link["source"], link["target"]) for link in two["links"]] == [(users[0], users[1])]
    only = client.get(f"{DASH}/network?userIds={users[2]}", headers=tenant.headers()).json
    assert [(link["source"], link["target"]) for link in only["links"]] == [(users[1], users[2])]
    by_dept = client.get(f"{DASH}/network?department=Nowhere", headers=tenant.headers()).json
    assert by_dept == {"nodes": [], "links": []}
