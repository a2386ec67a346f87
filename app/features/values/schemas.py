"""Company value schemas. Two spellings exist and the UI depends on both (contract §6, §9)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.api import BaseSchema, UtcDateTime


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


_TEXT = ma.validate.Length(max=500)


class ValueAdminSchema(BaseSchema):
    """The admin panel's value object: snake_case and camelCase mixed, exactly as written."""

    id = ma.fields.Integer(required=True)
    company_id = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True, required=True)
    example = ma.fields.String(allow_none=True, required=True)
    iconName = ma.fields.String(attribute="icon_name", allow_none=True, required=True)
    iconColor = ma.fields.String(attribute="icon_color", allow_none=True, required=True)
    order = ma.fields.Integer(required=True)
    is_active = ma.fields.Boolean(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class ValuePublicSchema(BaseSchema):
    """`GET /companies/{id}/values`: the raw row in camelCase."""

    id = ma.fields.Integer(required=True)
    companyId = ma.fields.String(attribute="company_id", required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True, required=True)
    example = ma.fields.String(allow_none=True, required=True)
    iconName = ma.fields.String(attribute="icon_name", allow_none=True, required=True)
    iconColor = ma.fields.String(attribute="icon_color", allow_none=True, required=True)
    order = ma.fields.Integer(required=True)
    isActive = ma.fields.Boolean(attribute="is_active", required=True)
    createdAt = UtcDateTime(attribute="created_at", required=True)
    updatedAt = UtcDateTime(attribute="updated_at", required=True)


class ValueCreateSchema(BaseSchema):
    title = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=100), _not_blank])
    description = ma.fields.String(allow_none=True, validate=_TEXT)
    example = ma.fields.String(allow_none=True, validate=_TEXT)
    iconName = ma.fields.String(data_key="iconName", attribute="icon_name", allow_none=True, validate=_TEXT)
    iconColor = ma.fields.String(
        data_key="iconColor", attribute="icon_color", allow_none=True, validate=_TEXT
    )


class ValueUpdateSchema(ValueCreateSchema):
    title = ma.fields.String(validate=[ma.validate.Length(min=1, max=100), _not_blank])
    is_active = ma.fields.Boolean()

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ma.ValidationError(
                "Send at least one of title, description, example, iconName, iconColor, is_active"
            )


class ValueReorderSchema(BaseSchema):
    ordered_ids = ma.fields.List(
        ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=2**31 - 1)),
        required=True,
        validate=ma.validate.Length(min=1, max=100),
    )


class ValueReorderResultSchema(BaseSchema):
    message = ma.fields.String(required=True)
    values = ma.fields.List(ma.fields.Nested(ValueAdminSchema), required=True)
