"""/admin/users/csv/* (contract §7.2; perm `users:import_csv`): template, preview, import."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue
from flask.views import MethodView

from app import runtime
from app.api import (
    BEARER,
    ApiError,
    Blueprint,
    cap_request_body,
    error_response,
    idempotency_key,
    request_session,
)
from app.auth import current_user, require_permission
from app.features.company import import_settings
from app.features.users import csv_import
from app.features.users.csv_parsing import template_csv
from app.features.users.import_schemas import ImportBody, ImportResponseSchema, PreviewResponseSchema
from app.features.users.models import CsvImportPreview, PreviewStatus
from app.jobs import enqueue
from app.jobs.http import respond_when_done
from app.jobs.models import ACTIVE_STATUSES, Job
from app.jobs.schemas import AcceptedSchema
from app.ratelimit import creates_job

blp = Blueprint(
    "users_csv_import", __name__, url_prefix="/admin/users", description="CSV import of users (contract §7.2)"
)

PERMISSION = "users:import_csv"
_MB = 1024 * 1024

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["fileContent"],
                    "properties": {"fileContent": {"type": "string", "description": "base64 of the CSV"}},
                }
            },
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


@blp.route("/csv/template")
class CsvTemplate(MethodView):
    @require_permission(PERMISSION)
    @blp.doc(security=BEARER, responses={"200": {"description": "users_template.csv (text/csv)"}})
    def get(self) -> Response:
        """The CSV template: `nome,email,departamento,cargo,email_gestor` and two example rows."""
        return Response(
            template_csv(),
            mimetype="text/csv",
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="users_template.csv"',
            },
        )


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The file is too large: the limit is {limit / _MB:g} MB", "PAYLOAD_TOO_LARGE")


def read_upload() -> bytes:
    """The file's bytes from a JSON `fileContent` (base64), a multipart `file`, or a raw text/csv
    body. Oversized bodies are refused from Content-Length, or while streaming, never read whole."""
    limit = runtime.settings().csv_max_bytes
    wire_limit = limit * 4 // 3 + 64 * 1024  # base64 and multipart overhead
    cap_request_body(wire_limit, _too_large(limit))  # a chunked body is cut off at the limit (413)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is None:
            raise ApiError(400, "Send the CSV as a multipart file field named 'file'", "VALIDATION_ERROR")
        data = upload.read(limit + 1)
    elif request.mimetype in ("text/csv", "text/plain", "application/octet-stream"):
        data = request.get_data(cache=False)
    else:
        payload = request.get_json(silent=True)
        content = payload.get("fileContent") if isinstance(payload, dict) else None
        if not isinstance(content, str):
            raise ApiError(400, "fileContent is required (the CSV file, base64)", "VALIDATION_ERROR")
        content = re.sub(r"^data:[^,]*,", "", content.strip())
        try:
            data = base64.b64decode(re.sub(r"\s+", "", content), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "fileContent is not valid base64", "VALIDATION_ERROR") from None
    if len(data) > limit:
        raise _too_large(limit)
    return data


@blp.route("/csv/preview")
class CsvPreview(MethodView):
    @require_permission(PERMISSION)
    @creates_job
    @blp.doc(security=BEARER, **_UPLOAD_DOC)
    @blp.response(202, AcceptedSchema, description="A large file is being checked by a job")
    @blp.alt_response(200, schema=PreviewResponseSchema, description="The checked rows")
    @blp.alt_response(400, description="Empty file, missing column, too many rows, not a text file")
    @blp.alt_response(413, description="The file is larger than CSV_MAX_BYTES")
    def post(self) -> ResponseReturnValue:
        """Check a CSV file and keep it for 30 minutes (JSON `fileContent` base64, or multipart).

        Files with more than CSV_SYNC_CHECK_ROWS rows are checked by a job: without
        `Prefer: respond-async` the request waits for it (SYNC_WAIT_SECONDS) and answers as usual;
        otherwise 202 + job id, and the preview is at GET /admin/users/csv/preview/<previewId>."""
        settings = runtime.settings()
        data = read_upload()
        user = current_user()
        session = request_session()
        preview = csv_import.create_preview(
            session,
            user.company_id,
            user.id,
            data,
            max_rows=settings.csv_max_rows,
            check_up_to=settings.csv_sync_check_rows,
        )
        if preview.status != PreviewStatus.CHECKING:
            session.commit()
            return _preview_response(preview)
        job, _ = enqueue(
            session,
            csv_import.CHECK_KIND,
            {"preview_id": preview.id},
            company_id=user.company_id,
            requested_by=user.id,
        )
        preview.check_job_id = job.id
        session.commit()
        return respond_when_done(session, job, lambda done: _render_check(preview.id))


def _preview_response(preview: CsvImportPreview) -> Response:
    """The preview body, streamed from Postgres as it is read (large files have large previews)."""
    return Response(csv_import.preview_json(preview), mimetype="application/json")


def _render_check(preview_id: str) -> ResponseReturnValue:
    session = request_session()
    preview = session.get(CsvImportPreview, preview_id)
    if preview is None:
        return error_response(404, csv_import.PREVIEW_NOT_FOUND, "PREVIEW_NOT_FOUND")
    session.refresh(preview)
    return _preview_response(preview)


@blp.route("/csv/preview/<string:preview_id>")
class CsvPreviewDetail(MethodView):
    @require_permission(PERMISSION)
    @blp.doc(security=BEARER)
    @blp.response(200, PreviewResponseSchema)
    @blp.alt_response(404, description="Unknown or expired preview")
    @blp.alt_response(409, description="Still being checked")
    def get(self, preview_id: str) -> Any:
        """A stored preview (e.g. after a 202 from POST /admin/users/csv/preview)."""
        preview = csv_import.get_preview(
            request_session(), current_user().company_id, preview_id, for_import=False
        )
        if preview.status == PreviewStatus.CHECKING:
            raise ApiError(
                409, "The file is still being checked", "PREVIEW_CHECKING", {"jobId": preview.check_job_id}
            )
        return _preview_response(preview)


@blp.route("/csv/import")
class CsvImport(MethodView):
    @require_permission(PERMISSION)
    @creates_job
    @blp.arguments(ImportBody)
    @blp.doc(security=BEARER)
    @blp.response(202, AcceptedSchema, description="The import job is running (or respond-async)")
    @blp.alt_response(200, schema=ImportResponseSchema, description="Imported: every row")
    @blp.alt_response(422, schema=ImportResponseSchema, description="Nothing imported: a row is bad")
    @blp.alt_response(400, description="Preview expired or not found; unknown confirmedRows")
    def post(self, body: dict[str, Any]) -> ResponseReturnValue:
        """Import a preview as one all-or-nothing job (departments, job titles, users, wallets,
        Employee role, managers), then queue the invites.

        Without `Prefer: respond-async` it waits for the job (SYNC_WAIT_SECONDS) and answers the
        contract's body; otherwise 202 + job id (the same body is the job's result). Importing the
        same preview again answers the first import's result and creates nothing."""
        user = current_user()
        session = request_session()
        preview = csv_import.get_preview(session, user.company_id, body["previewId"], for_import=True)
        if preview.status == PreviewStatus.CHECKING:
            raise ApiError(
                409, "The file is still being checked", "PREVIEW_CHECKING", {"jobId": preview.check_job_id}
            )
        previous = session.get(Job, preview.import_job_id) if preview.import_job_id else None
        if preview.status == PreviewStatus.CONSUMED:
            if previous is None:
                return jsonify(preview.report)
            return respond_when_done(session, previous, _render_import)
        if previous is not None and previous.status in ACTIVE_STATUSES:
            return respond_when_done(session, previous, _render_import)  # a double click
        csv_import.check_confirmed_rows(preview, body.get("confirmedRows"))  # 400 now, not in the job
        job, _ = enqueue(
            session,
            csv_import.IMPORT_KIND,
            {
                "preview_id": preview.id,
                "confirmed_rows": body.get("confirmedRows") or None,
                # Imported users cannot log in until invited (contract §11.7): who decides is in
                # import_settings (the request's sendEmails, else the company's default).
                "send_invites": import_settings.resolve_send_invites(
                    session, user.company_id, body.get("sendEmails")
                ),
            },
            company_id=user.company_id,
            requested_by=user.id,
            idempotency_key=idempotency_key(),
        )
        preview.import_job_id = job.id
        session.commit()
        return respond_when_done(session, job, _render_import)


def _render_import(job: Job) -> ResponseReturnValue:
    """The contract's body of a finished import: 200 imported, 422 nothing imported (a bad row)."""
    result = dict(job.result or {})
    if result.get("status") == "failed":
        response = error_response(422, result["message"], "IMPORT_FAILED", result["report"]["errors"])
        response.set_data(jsonify({**response.get_json(), **result}).get_data())
        return response
    return jsonify(result)
