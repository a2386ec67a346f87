"""Shapes of the profile routes (contract §4)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import HTTP_URL, BaseSchema, UtcDateTime


class ProfileSchema(ma.Schema):
    id = fields.String()
    authUserId = fields.String(attribute="auth_user_id", allow_none=True)
    email = fields.String()
    name = fields.String()
    avatar = fields.String(allow_none=True)
    isActive = fields.Boolean(attribute="is_active")
    createdAt = UtcDateTime(attribute="created_at")
    updatedAt = UtcDateTime(attribute="updated_at")


class ProfileResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(ProfileSchema)


class ProfileUpdateBody(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=2, max=100))
    # Left out when the form field is empty; null or "" clear it.
    avatar = fields.String(allow_none=True, validate=validate.Length(max=2048))

    @ma.validates("name")
    def _name_not_blank(self, value: str, **_: object) -> None:
        if len(value.strip()) < 2:
            raise ma.ValidationError("Name must have at least 2 non-blank characters.")

    @ma.validates("avatar")
    def _avatar_url(self, value: str | None, **_: object) -> None:
        if value:
            HTTP_URL(value)


class MyBalanceSchema(ma.Schema):
    complimentBalance = fields.Integer()
    redeemableBalance = fields.Integer()


class PermissionsResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.List(fields.String())
