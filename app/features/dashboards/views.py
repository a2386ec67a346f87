"""/admin/dashboard/{stats,departments,job-titles}, /admin/compliments-dashboard and its
network (contract §10, §7.1): perm `admin:view_analytics`, bare bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.views import MethodView

from app.api import BEARER, Blueprint, format_utc, request_session
from app.auth import current_user, require_permission
from app.features.dashboards import service
from app.features.dashboards.schemas import (
    ComplimentsDashboardSchema,
    DashboardStatsSchema,
    NetworkQuery,
    NetworkSchema,
    PeriodQuery,
)
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


def _scope(query: dict[str, Any], *, plan_gated_filters: bool) -> service.Scope:
    return service.resolve_scope(
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
        return _iso(service.dashboard_stats(request_session(), _scope(query, plan_gated_filters=True)))


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
        return _iso(service.compliments_dashboard(request_session(), scope))


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
        company = service.company_of(session, current_user().company_id)
        if company.plan != service.PROFESSIONAL:
            raise service.plan_restriction("Compliments network", company.plan)
        scope = _scope(query, plan_gated_filters=False)  # the whole route is gated above
        if query.get("userIds"):
            query["userIds"] = [u.strip() for u in query["userIds"].split(",") if u.strip()][:100]
        return service.network(session, scope, query)
