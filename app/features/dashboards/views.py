"""/admin/dashboard/{stats,departments,job-titles}, /admin/compliments-dashboard and its
network (contract §10, §7.1): perm `admin:view_analytics`, bare bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, format_utc, request_session
from app.auth import current_user, require_permission
from app.features.dashboards import present, service
from app.features.dashboards.schemas import (
    ComplimentsDashboardSchema,
    DashboardStatsSchema,
    NetworkQuery,
    NetworkSchema,
    PeriodQuery,
)
from app.features.dashboards.scope import Scope, require_professional, resolve_scope
from app.features.users import admin_service as users
from app.features.users.admin_schemas import CountedRefSchema

dashboard = Blueprint(
    "admin_dashboard", __name__, url_prefix="/admin/dashboard", description="Admin dashboards"
)
compliments = Blueprint(
    "compliments_dashboard",
    __name__,
    url_prefix="/admin/compliments-dashboard",
    description="Compliments analytics",
)

PERMISSION = "admin:view_analytics"


def _iso(value: Any) -> Any:
    """Datetimes as `…Z` ISO strings, the format the frontend's types expect (§1.5)."""
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    if isinstance(value, datetime):
        return format_utc(value)
    return value


def _scope(query: dict[str, Any], *, plan_gated_filters: bool) -> Scope:
    return resolve_scope(
        request_session(),
        current_user().company_id,
        query.get("startDate"),
        query.get("endDate"),
        query.get("departmentId"),
        query.get("jobTitleId"),
        plan_gated_filters=plan_gated_filters,
    )


@dashboard.route("/stats")
class Stats(MethodView):
    @require_permission(PERMISSION)
    @dashboard.arguments(PeriodQuery, location="query")
    @dashboard.response(200, DashboardStatsSchema)
    @dashboard.alt_response(403, description="PLAN_RESTRICTION for filters on the ESSENTIAL plan")
    @dashboard.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Admin home: totals, active users, weekly counts and top values for the period."""
        # Contract §10: the admin home's department/job-title filters are PROFESSIONAL-only.
        stats = service.dashboard_stats(request_session(), _scope(query, plan_gated_filters=True))
        return _iso(present.dashboard_stats(stats))


@dashboard.route("/departments")
class Departments(MethodView):
    @require_permission(PERMISSION)
    @dashboard.response(200, CountedRefSchema(many=True))
    @dashboard.doc(security=BEARER)
    def get(self) -> list[dict[str, Any]]:
        """Departments by name with their active user counts."""
        return users.departments_with_counts(request_session(), current_user().company_id)


@dashboard.route("/job-titles")
class JobTitles(MethodView):
    @require_permission(PERMISSION)
    @dashboard.response(200, CountedRefSchema(many=True))
    @dashboard.doc(security=BEARER)
    def get(self) -> list[dict[str, Any]]:
        """Job titles by name with their active user counts."""
        return users.job_titles_with_counts(request_session(), current_user().company_id)


@compliments.route("")
class ComplimentsDashboard(MethodView):
    @require_permission(PERMISSION)
    @compliments.arguments(PeriodQuery, location="query")
    @compliments.response(200, ComplimentsDashboardSchema)
    @compliments.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Overview, values, top users, departments, time patterns, insights, recent activity.
        The department/job-title filters work on every plan (contract §10)."""
        scope = _scope(query, plan_gated_filters=False)
        return _iso(present.compliments_dashboard(service.compliments_dashboard(request_session(), scope)))


@compliments.route("/network")
class Network(MethodView):
    @require_permission(PERMISSION)
    @compliments.arguments(NetworkQuery, location="query")
    @compliments.response(200, NetworkSchema)
    @compliments.alt_response(403, description="PLAN_RESTRICTION on the ESSENTIAL plan")
    @compliments.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Who recognises whom: nodes (users) and links (sender -> receiver, count, messages)."""
        session = request_session()
        require_professional(session, current_user().company_id, "Compliments network")
        scope = _scope(query, plan_gated_filters=False)  # the whole route is gated above
        user_ids = [u.strip() for u in (query.get("userIds") or "").split(",") if u.strip()][:100]
        result = service.network(
            session,
            scope,
            department=query.get("department") or None,
            user_ids=user_ids or None,
            min_connections=query.get("minConnections") or 1,
            limit=query.get("limit") or 50,
        )
        return present.network(result)
