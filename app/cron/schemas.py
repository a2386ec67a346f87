"""Schemas of the operator routes for scheduled tasks (GET /admin/cron-runs)."""

from __future__ import annotations

import marshmallow as ma

from app.api import BaseSchema, UtcDateTime

OUTCOMES = ("running", "succeeded", "failed")


class CronRunQuerySchema(BaseSchema):
    task = ma.fields.String(validate=ma.validate.Length(min=1, max=64))
    outcome = ma.fields.String(validate=ma.validate.OneOf(OUTCOMES))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class CronRunSchema(BaseSchema):
    id = ma.fields.Integer(required=True)
    task = ma.fields.String(required=True)
    trigger = ma.fields.String(required=True, metadata={"description": "cli | scheduler | api"})
    outcome = ma.fields.String(required=True, metadata={"description": "running | succeeded | failed"})
    summary = ma.fields.Dict(allow_none=True, required=True)
    error = ma.fields.String(allow_none=True, required=True)
    host = ma.fields.String(allow_none=True)
    startedAt = UtcDateTime(attribute="started_at", required=True)
    finishedAt = UtcDateTime(attribute="finished_at", allow_none=True, required=True)
    durationMs = ma.fields.Method("_duration", allow_none=True)

    def _duration(self, run: object) -> int | None:
        started, finished = getattr(run, "started_at", None), getattr(run, "finished_at", None)
        if started is None or finished is None:
            return None
        return int((finished - started).total_seconds() * 1000)


class CronRunPageSchema(BaseSchema):
    data = ma.fields.List(ma.fields.Nested(CronRunSchema), required=True)
    totalCount = ma.fields.Integer(required=True)
    pageCount = ma.fields.Integer(required=True)
    currentPage = ma.fields.Integer(required=True)
