"""Request and response shapes of /auth (contract §3)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema


class _TrimsEmail(BaseSchema):
    @ma.pre_load
    def _trim_email(self, data: Any, **_: Any) -> Any:
        # Pasted addresses often carry spaces; the lookup is case-insensitive anyway.
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            return {**data, "email": data["email"].strip()}
        return data


class AdminLoginBody(_TrimsEmail):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class LoginBody(_TrimsEmail):
    """Either `{email, password}` or a Supabase session `{access_token, refresh_token?}`."""

    email = fields.Email(metadata={"description": "Password login"})
    password = fields.String(validate=validate.Length(min=1, max=1024))
    access_token = fields.String(
        validate=validate.Length(min=1), metadata={"description": "Supabase access token (Google)"}
    )
    refresh_token = fields.String(metadata={"description": "Supabase refresh token (ignored)"})

    @ma.validates_schema
    def _one_form(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("access_token"):
            return
        if not data.get("email") or not data.get("password"):
            raise ma.ValidationError("Provide email and password, or access_token")


class RefreshBody(BaseSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class VerifyQuery(BaseSchema):
    minimal = fields.Boolean(load_default=False)


class SetPasswordBody(BaseSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=512))
    password = fields.String(required=True, validate=validate.Length(min=8, max=256))


class UserInfoSchema(ma.Schema):
    sub = fields.String(metadata={"description": "Our user id (the client uses it as the user id)"})
    id = fields.String()
    companyId = fields.String()
    email = fields.String()
    email_verified = fields.Boolean()
    name = fields.String()
    avatar = fields.String(allow_none=True)
    isActive = fields.Boolean()
    jobTitle = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    roles = fields.List(fields.String())


class TokensSchema(ma.Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    refresh_token = fields.String()
    scope = fields.String()


class LoginDataSchema(TokensSchema):
    user_info = fields.Nested(UserInfoSchema)


class LoginResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(LoginDataSchema)


class RefreshResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(TokensSchema)


class VerifyDataSchema(ma.Schema):
    isValid = fields.Boolean()
    timeRemaining = fields.Integer()
    message = fields.String()
    expiresAt = fields.String(metadata={"description": "Full mode only"})
    timeRemainingFormatted = fields.String(metadata={"description": "Full mode only"})
    needsRefresh = fields.Boolean(metadata={"description": "Full mode only: at most 300 s left"})
    user = fields.Nested(UserInfoSchema, metadata={"description": "Full mode only"})


class VerifyResponse(ma.Schema):
    success = fields.Boolean()
    data = fields.Nested(VerifyDataSchema)


class MessageResponse(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
