"""Schemas documenting the CSV import routes (contract §7.2)."""

from __future__ import annotations

from marshmallow import fields, validate

from app.api import BaseSchema
from app.features.company.schemas import WholeNumber


class PreviewJsonBody(BaseSchema):
    fileContent = fields.String(
        required=True, metadata={"description": "The CSV file, base64 (UTF-8 or Latin-1 text)"}
    )


class PreviewRowSchema(BaseSchema):
    rowNumber = fields.Integer(metadata={"description": "Data rows counted from 1 (header excluded)"})
    name = fields.String()
    email = fields.String(metadata={"description": "Lowercased"})
    department = fields.String(metadata={"description": "Absent when the cell is blank"})
    position = fields.String(metadata={"description": "The job title; absent when blank"})
    managerEmail = fields.String(metadata={"description": "email_gestor / manager_email, when given"})
    status = fields.String(validate=validate.OneOf(["valid", "error"]))
    errors = fields.List(fields.String())
    action = fields.String(metadata={"description": '"create" on valid rows, absent on error rows'})


class PreviewSummarySchema(BaseSchema):
    toCreate = fields.Integer()
    toUpdate = fields.Integer()
    errors = fields.Integer()


class PreviewResponseSchema(BaseSchema):
    previewId = fields.String()
    totalRows = fields.Integer()
    validRows = fields.Integer()
    rowsWithErrors = fields.Integer()
    preview = fields.List(fields.Nested(PreviewRowSchema))
    summary = fields.Nested(PreviewSummarySchema)
    expiresAt = fields.DateTime(metadata={"description": "The preview can be imported for 30 minutes"})


class ImportBody(BaseSchema):
    previewId = fields.String(required=True, validate=validate.Length(min=1, max=64))
    confirmedRows = fields.List(
        WholeNumber(),  # 1.5 is refused, not truncated to row 1
        load_default=None,
        allow_none=True,
        metadata={"description": "rowNumbers to import; empty or absent = every valid row"},
    )
    sendEmails = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Invite the imported users; absent or null = the company's"
            " sendInvitesOnImport, else the IMPORT_SEND_INVITES default"
        },
    )


class ImportErrorSchema(BaseSchema):
    rowNumber = fields.Integer()
    email = fields.String()
    reason = fields.String()


class ImportReportSchema(BaseSchema):
    created = fields.Integer()
    updated = fields.Integer()
    skipped = fields.Integer(metadata={"description": "Rows of the file not imported (invalid/unconfirmed)"})
    errors = fields.List(fields.Nested(ImportErrorSchema))


class ImportResponseSchema(BaseSchema):
    status = fields.String(validate=validate.OneOf(["completed", "failed"]))
    report = fields.Nested(ImportReportSchema)
    inviteJobIds = fields.List(fields.String(), metadata={"description": "Jobs sending the invites"})
    message = fields.String(metadata={"description": "On failure: which row failed and why"})
