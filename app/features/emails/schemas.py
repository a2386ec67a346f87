"""Schemas documenting the welcome email routes (contract §7.3)."""

from __future__ import annotations

from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime


class BulkWelcomeBody(BaseSchema):
    userIds = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=100))


class WelcomeResultSchema(BaseSchema):
    userId = fields.String()
    success = fields.Boolean()
    error = fields.String()
    code = fields.String(
        metadata={"description": "NOT_FOUND, INACTIVE, WELCOME_EMAIL_LIMIT, DELIVERY_FAILED…"}
    )


class BulkSummarySchema(BaseSchema):
    total = fields.Integer()
    sent = fields.Integer()
    failed = fields.Integer()


class BulkWelcomeResponse(BaseSchema):
    message = fields.String(metadata={"description": '"Sent X of N emails"'})
    results = fields.List(fields.Nested(WelcomeResultSchema))
    summary = fields.Nested(BulkSummarySchema)


class OnboardingSchema(BaseSchema):
    userId = fields.String()
    emailSendCount = fields.Integer()
    lastEmailSentAt = UtcDateTime(allow_none=True)
    isConfirmed = fields.Boolean(metadata={"description": "The user has set a password"})


class WelcomeResponse(BaseSchema):
    message = fields.String()
    onboarding = fields.Nested(OnboardingSchema)
