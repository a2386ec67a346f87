"""Shapes of GET /admin/audit-log."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime


class AuditLogQuery(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    entityType = fields.String(validate=validate.Length(max=32))
    entityId = fields.String(validate=validate.Length(max=64))
    action = fields.String(validate=validate.Length(max=64))


class AuditLogEntrySchema(ma.Schema):
    id = fields.String()
    companyId = fields.String(attribute="company_id")
    actorId = fields.String(attribute="actor_id", allow_none=True)
    action = fields.String()
    entityType = fields.String(attribute="entity_type")
    entityId = fields.String(attribute="entity_id", allow_none=True)
    changes = fields.Raw(allow_none=True)
    createdAt = UtcDateTime(attribute="created_at")


class AuditLogPageSchema(ma.Schema):
    data = fields.List(fields.Nested(AuditLogEntrySchema))
    totalCount = fields.Integer()
    pageCount = fields.Integer()
    currentPage = fields.Integer()
