"""Shapes of /admin/users (contract §7) and the §7.1 helper lists: bare bodies, camelCase."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime

_ID = validate.Length(min=1, max=64)


class AdminUsersQuery(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    search = fields.String(validate=validate.Length(max=100))
    status = fields.String(validate=validate.OneOf(["active", "inactive"]))
    departmentId = fields.String(validate=_ID)
    jobTitleId = fields.String(validate=_ID)
    sortBy = fields.String(validate=validate.OneOf(["name", "email", "createdAt", "lastLogin"]))
    sortOrder = fields.String(validate=validate.OneOf(["asc", "desc"]))


class NamedRefSchema(ma.Schema):
    id = fields.String()
    name = fields.String()


class AdminUserListItemSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    # Left out (not null) when the user has none, as the UI's optional types expect.
    department = fields.Nested(NamedRefSchema)
    position = fields.Nested(NamedRefSchema, metadata={"description": "The user's job title"})
    avatar = fields.String(allow_none=True)
    isActive = fields.Boolean()
    createdAt = UtcDateTime()
    lastLogin = UtcDateTime(allow_none=True)
    welcomeEmailSendCount = fields.Integer()
    # Left out until a welcome email has been sent.
    lastWelcomeEmailSentAt = UtcDateTime()


class AdminUsersPageSchema(ma.Schema):
    data = fields.List(fields.Nested(AdminUserListItemSchema))
    totalCount = fields.Integer()
    pageCount = fields.Integer()
    currentPage = fields.Integer()


class AdminUserStatisticsSchema(ma.Schema):
    complimentsSent = fields.Integer()
    complimentsReceived = fields.Integer()
    totalCoins = fields.Integer(metadata={"description": "Current redeemable balance"})
    redeemptions = fields.Integer(metadata={"description": "Spelled as the frontend reads it"})


class AdminUserDetailSchema(AdminUserListItemSchema):
    updatedAt = UtcDateTime()
    statistics = fields.Nested(AdminUserStatisticsSchema)


class AdminUserCreateBody(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=2, max=100))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    departmentId = fields.String(allow_none=True, validate=_ID)
    jobTitleId = fields.String(allow_none=True, validate=_ID)
    isActive = fields.Boolean(load_default=True)
    sendEmail = fields.Boolean(load_default=False, metadata={"description": "Queue the welcome email"})

    @ma.validates("name")
    def _name_not_blank(self, value: str, **_: object) -> None:
        if len(value.strip()) < 2:
            raise ma.ValidationError("Name must have at least 2 non-blank characters.")


class AdminUserCreatedSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    isActive = fields.Boolean()
    createdAt = UtcDateTime()
    temporaryPasswordUrl = fields.String(
        metadata={"description": "Password setup link, when no welcome email was requested"}
    )
    welcomeEmailJobId = fields.String(metadata={"description": "The queued welcome email job"})


class AdminUserUpdateBody(BaseSchema):
    name = fields.String(validate=validate.Length(min=2, max=100))
    email = fields.Email(validate=validate.Length(max=254))
    # null clears, an omitted field is left unchanged.
    departmentId = fields.String(allow_none=True, validate=_ID)
    jobTitleId = fields.String(allow_none=True, validate=_ID)
    isActive = fields.Boolean()

    @ma.validates("name")
    def _name_not_blank(self, value: str, **_: object) -> None:
        if len(value.strip()) < 2:
            raise ma.ValidationError("Name must have at least 2 non-blank characters.")


class AdminUserUpdatedSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    isActive = fields.Boolean()
    updatedAt = UtcDateTime()


class BulkActionBody(BaseSchema):
    userIds = fields.List(
        fields.String(validate=_ID), required=True, validate=validate.Length(min=1, max=100)
    )
    action = fields.String(required=True, validate=validate.OneOf(["activate", "deactivate", "export"]))


class BulkUpdatedSchema(ma.Schema):
    updated = fields.Integer()


class ResetPasswordSchema(ma.Schema):
    message = fields.String()
    ticketUrl = fields.String()
    expiresIn = fields.String()


class CountedRefSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    userCount = fields.Integer()


class ByDepartmentQuery(BaseSchema):
    departmentId = fields.String(required=True, validate=_ID)
