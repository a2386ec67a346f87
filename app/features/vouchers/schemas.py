"""Response shapes of the provider webhook."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate


class WebhookAckSchema(ma.Schema):
    status = fields.String(
        validate=validate.OneOf(["received", "already_processed"]),
        metadata={"description": "`already_processed`: this delivery's uuid was stored before"},
    )
