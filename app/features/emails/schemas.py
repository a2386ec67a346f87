"""Schemas documenting the welcome email routes (contract §7.3), and the bodies they answer."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from app.api import BaseSchema, UtcDateTime
from app.features.emails.service import WelcomeResult


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


def welcome_result_body(result: WelcomeResult) -> dict[str, Any]:
    """One user's entry in the welcome routes' answers (contract §7.3)."""
    body: dict[str, Any] = {"userId": result.user_id, "success": result.success}
    if result.error:
        body["error"] = result.error
    if result.code:
        body["code"] = result.code
    return body


def bulk_welcome_body(results: list[WelcomeResult]) -> dict[str, Any]:
    """The body of POST /admin/users/send-welcome-emails-bulk (contract §7.3)."""
    sent = sum(1 for r in results if r.success)
    return {
        "message": f"Sent {sent} of {len(results)} emails",
        "results": [welcome_result_body(r) for r in results],
        "summary": {"total": len(results), "sent": sent, "failed": len(results) - sent},
    }
