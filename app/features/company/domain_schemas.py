"""Shapes of /admin/company/domains (contract §11.1): bare arrays and objects, snake_case."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime


class DomainSchema(ma.Schema):
    id = fields.String()
    domain = fields.String()
    created_at = UtcDateTime()


class DomainCreateBody(BaseSchema):
    domain = fields.String(required=True, validate=validate.Length(min=1, max=255))


class DomainsReplaceBody(BaseSchema):
    domains = fields.List(
        fields.String(validate=validate.Length(min=1, max=255)),
        required=True,
        validate=validate.Length(min=1, max=100),
    )
