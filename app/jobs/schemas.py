from __future__ import annotations

import marshmallow as ma

from app.api import BaseSchema, UtcDateTime
from app.jobs.models import JobStatus


class JobSchema(BaseSchema):
    id = ma.fields.String()
    kind = ma.fields.String()
    queue = ma.fields.String()
    status = ma.fields.String()
    progress = ma.fields.Integer()
    attempts = ma.fields.Integer()
    max_attempts = ma.fields.Integer()
    args = ma.fields.Dict()
    result = ma.fields.Raw(allow_none=True)
    error = ma.fields.String(allow_none=True)
    company_id = ma.fields.String(allow_none=True)
    requested_by = ma.fields.String(allow_none=True)
    worker_name = ma.fields.String(allow_none=True)
    created_at = UtcDateTime()
    enqueued_at = UtcDateTime(allow_none=True)
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


class JobListQuery(BaseSchema):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in JobStatus]))
    kind = ma.fields.String(validate=ma.validate.Length(max=64))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class JobPageSchema(BaseSchema):
    data = ma.fields.List(ma.fields.Nested(JobSchema))
    totalCount = ma.fields.Integer()
    pageCount = ma.fields.Integer()
    currentPage = ma.fields.Integer()


class AcceptedSchema(BaseSchema):
    job_id = ma.fields.String()
    status = ma.fields.String()
