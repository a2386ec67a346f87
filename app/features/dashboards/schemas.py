"""Shapes of /admin/dashboard/* and /admin/compliments-dashboard* (contract §10): bare bodies."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, Day

_ID = validate.Length(min=1, max=64)


class PeriodQuery(BaseSchema):
    startDate = Day(metadata={"description": "YYYY-MM-DD; default 29 days before endDate"})
    endDate = Day(metadata={"description": "YYYY-MM-DD; default today"})
    departmentId = fields.String(validate=_ID, metadata={"description": "PROFESSIONAL plan"})
    jobTitleId = fields.String(validate=_ID, metadata={"description": "PROFESSIONAL plan"})


class NetworkQuery(BaseSchema):
    startDate = Day()
    endDate = Day()
    department = fields.String(validate=validate.Length(min=1, max=100), metadata={"description": "A name"})
    minConnections = fields.Integer(load_default=1, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    userIds = fields.String(
        validate=validate.Length(max=5000), metadata={"description": "Comma-separated ids"}
    )


class _ActiveUsers(ma.Schema):
    count = fields.Integer()
    percentage = fields.Float()


class _StatsMetrics(ma.Schema):
    totalCompliments = fields.Integer()
    coinsDistributed = fields.Integer()
    activeUsers = fields.Nested(_ActiveUsers)
    prizesRedeemed = fields.Integer()
    engagementRate = fields.Float(metadata={"description": "Compliments per active user"})


class _Week(ma.Schema):
    weekStart = fields.String()
    count = fields.Integer()


class _TopValue(ma.Schema):
    valueId = fields.Integer()
    valueName = fields.String()
    count = fields.Integer()
    percentage = fields.Float()


class _Period(ma.Schema):
    startDate = fields.String()
    endDate = fields.String()


class DashboardStatsSchema(ma.Schema):
    period = fields.Nested(_Period)
    metrics = fields.Nested(_StatsMetrics)
    weeklyCompliments = fields.List(fields.Nested(_Week))
    topValues = fields.List(fields.Nested(_TopValue))
    generatedAt = fields.String()


class ComplimentsDashboardSchema(ma.Schema):
    """Every key is documented in the contract §10; nested parts are passed through as built."""

    period = fields.Dict()
    overview = fields.Dict()
    valuesDistribution = fields.List(fields.Dict())
    topUsers = fields.Dict()
    departmentAnalytics = fields.Dict()
    temporalPatterns = fields.Dict()
    insights = fields.List(fields.Dict())
    recentActivity = fields.List(fields.Dict())
    engagementMetrics = fields.Dict()
    metadata = fields.Dict()


class _Node(ma.Schema):
    id = fields.String()
    name = fields.String()
    avatar = fields.String(allow_none=True)
    role = fields.String()
    department = fields.String(allow_none=True)
    complimentsGiven = fields.Integer()
    complimentsReceived = fields.Integer()


class _Link(ma.Schema):
    source = fields.String()
    target = fields.String()
    value = fields.Integer()
    compliments = fields.List(fields.String())


class NetworkSchema(ma.Schema):
    nodes = fields.List(fields.Nested(_Node))
    links = fields.List(fields.Nested(_Link))
