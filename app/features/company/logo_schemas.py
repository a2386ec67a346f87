"""Shapes of POST/DELETE /admin/company/info/logo (contract §9)."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields

from app.api import BaseSchema
from app.features.company.logos import LOGO_FIELD, MAX_LOGO_BYTES


class LogoUploadSchema(BaseSchema):
    # Documents the multipart body; the view checks the count, size and magic bytes itself.
    logo = Upload(
        required=True,
        data_key=LOGO_FIELD,
        error_messages={"required": f"Send the logo as a multipart/form-data file field '{LOGO_FIELD}'."},
        metadata={
            "description": f"Exactly one PNG, JPEG or WebP image of at most {MAX_LOGO_BYTES // 2**20} MB,"
            " recognised by its content (SVG is refused)"
        },
    )


class LogoUrlSchema(ma.Schema):
    logo_url = fields.String(
        required=True, metadata={"description": "Absolute public URL of the image (no auth needed)"}
    )


class LogoDeletedSchema(ma.Schema):
    success = fields.Boolean()
    message = fields.String()
