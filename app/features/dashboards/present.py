"""The dashboards' JSON bodies (contract §10, §7.1), from the numbers the service computed: the
contract's field names, ISO days, the Portuguese labels the admin panel shows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from app.features.compliments.timeago import time_ago
from app.features.dashboards.insights import Insight
from app.features.dashboards.numbers import UserActivity, pct
from app.features.dashboards.service import ComplimentsDashboard, DashboardStats, Network

DAY_NAMES = ["Domingo", "Segunda", "Terça", "Quarta", "Quinta", "Sexta", "Sábado"]  # dow 0 = Sunday


def _label(change: float) -> str:
    sign = "+" if change > 0 else ""
    return f"{sign}{change:.1f}% vs período anterior"


def _iso_day(day: date) -> str:
    return day.isoformat()


def _person(user: UserActivity) -> dict[str, Any]:
    return {
        "userId": user.user_id,
        "name": user.name,
        "email": user.email,
        "avatar": user.avatar,
        "department": user.department,
    }


def _insight(insight: Insight) -> dict[str, Any]:
    return {
        "type": insight.kind,
        "category": insight.category,
        "title": insight.title,
        "description": insight.description,
        "metric": insight.metric,
        "actionable": insight.actionable,
        "priority": insight.priority,
    }


def compliments_dashboard(d: ComplimentsDashboard) -> dict[str, Any]:
    scope, o, t = d.scope, d.overview, d.temporal
    comparison: dict[str, Any] = {
        "complimentsChange": o.compliments_change,
        "coinsChange": o.coins_change,
        "usersChange": o.users_change,
    }
    for key in ("compliments", "coins", "users"):
        comparison[f"{key}ChangeLabel"] = _label(comparison[f"{key}Change"])
    return {
        "period": {
            "startDate": _iso_day(scope.start_date),
            "endDate": _iso_day(scope.end_date),
            "previousPeriod": {
                "startDate": _iso_day(scope.prev_start_date),
                "endDate": _iso_day(scope.prev_end_date),
            },
        },
        "overview": {
            "totalCompliments": o.total,
            "totalCoinsDistributed": o.coins,
            "activeUsers": {"count": o.active, "percentage": o.participation, "total": o.users},
            "avgCoinsPerCompliment": o.avg_coins_per_compliment,
            "engagementRate": o.engagement_rate,
            "comparison": comparison,
        },
        "valuesDistribution": [
            {
                "valueId": v.value_id,
                "valueName": v.name,
                "description": v.description,
                "iconName": v.icon_name,
                "iconColor": v.icon_color,
                "count": v.count,
                "percentage": v.percentage,
                "totalCoins": v.coins,
                "trend": v.trend,
                "trendPercentage": v.trend_percentage,
            }
            for v in d.values
        ],
        "topUsers": {
            "senders": [
                {
                    **_person(u),
                    "jobTitle": u.job_title,
                    "sentCount": u.sent,
                    "totalCoinsSent": u.coins_sent,
                    "avgCoinsPerCompliment": u.avg_coins_sent,
                }
                for u in d.senders
            ],
            "receivers": [
                {
                    **_person(u),
                    "jobTitle": u.job_title,
                    "receivedCount": u.received,
                    "totalCoinsReceived": u.coins_received,
                    "avgCoinsPerCompliment": u.avg_coins_received,
                }
                for u in d.receivers
            ],
            "balanced": [
                {
                    **_person(u),
                    "sentCount": u.sent,
                    "receivedCount": u.received,
                    "balanceScore": u.balance_score,
                }
                for u in d.balanced
            ],
        },
        "departmentAnalytics": {
            "departments": [
                {
                    "departmentId": dep.department_id,
                    "departmentName": dep.name,
                    "totalUsers": dep.total_users,
                    "activeUsers": dep.active_users,
                    "totalCompliments": dep.compliments,
                    "avgPerUser": dep.avg_per_user,
                    "engagementRate": dep.engagement_rate,
                    "topValue": (
                        {"valueName": dep.top_value, "count": dep.top_value_count} if dep.top_value else None
                    ),
                }
                for dep in d.departments
            ],
            "crossDepartmentFlow": [
                {
                    "fromDepartmentId": r[0],
                    "fromDepartmentName": r[1],
                    "toDepartmentId": r[2],
                    "toDepartmentName": r[3],
                    "complimentCount": int(r[4]),
                    "coinAmount": int(r[5]),
                }
                for r in d.flow
            ],
        },
        "temporalPatterns": {
            "weeklyTrend": [
                {
                    "weekStart": _iso_day(w.start),
                    "weekEnd": _iso_day(w.start + timedelta(days=6)),
                    "count": w.count,
                    "coins": w.coins,
                }
                for w in t.weeks
            ],
            "dayOfWeekDistribution": [
                {
                    "dayOfWeek": day,
                    "dayName": DAY_NAMES[day],
                    "count": t.day_of_week.get(day, 0),
                    "percentage": pct(t.day_of_week.get(day, 0), o.total),
                }
                for day in range(7)
            ],
            "hourlyDistribution": [
                {
                    "hour": hour,
                    "count": t.hours.get(hour, 0),
                    "percentage": pct(t.hours.get(hour, 0), o.total),
                }
                for hour in range(24)
            ],
            "monthlyGrowth": {
                "currentMonth": {"month": d.month.month, "count": d.month.count, "coins": d.month.coins},
                "previousMonth": {
                    "month": d.month.prev_month,
                    "count": d.month.prev_count,
                    "coins": d.month.prev_coins,
                },
                "growthRate": d.month.growth_rate,
            },
        },
        "recentActivity": [
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
                "timeAgo": time_ago(r.created_at, d.generated_at),
            }
            for r in d.recent
        ],
        "engagementMetrics": {
            "participationRate": o.participation,
            "averageComplimentsPerUser": o.compliments_per_user,
            "medianCoinsPerCompliment": o.median_coins if o.median_coins is not None else 0.0,
            "inactiveUsers": {
                "count": d.inactive_count,
                "percentage": pct(d.inactive_count, o.users),
                "list": [
                    {"userId": r.id, "name": r.name, "department": r.dept, "lastActivity": r.last_activity}
                    for r in d.inactive
                ],
            },
        },
        "insights": [_insight(i) for i in d.insights],
        "metadata": {
            "generatedAt": d.generated_at,
            "executionTime": d.execution_ms,
            "filters": {"departmentId": scope.department_id, "jobTitleId": scope.job_title_id},
            "companyInfo": {
                "totalEmployees": o.employees,
                "activeEmployees": o.active_employees,
                "totalValues": o.total_values,
                "activeValues": o.active_values,
            },
        },
    }


def dashboard_stats(s: DashboardStats) -> dict[str, Any]:
    o = s.overview
    return {
        "period": {"startDate": s.scope.start, "endDate": s.scope.end - timedelta(microseconds=1000)},
        "metrics": {
            "totalCompliments": o.total,
            "coinsDistributed": o.coins,
            "activeUsers": {"count": o.active, "percentage": o.participation},
            "prizesRedeemed": s.prizes_redeemed,
            "engagementRate": o.engagement_rate,
        },
        "weeklyCompliments": [{"weekStart": _iso_day(w.start), "count": w.count} for w in s.weeks],
        "topValues": [
            {"valueId": v.value_id, "valueName": v.name, "count": v.count, "percentage": v.percentage}
            for v in s.top_values
        ],
        "generatedAt": s.generated_at,
    }


def network(n: Network) -> dict[str, Any]:
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
            for r in n.nodes
        ],
        "links": [
            {
                "source": r.sender_id,
                "target": r.receiver_id,
                "value": int(r.n),
                "compliments": list(r.messages),
            }
            for r in n.links
        ],
    }
