"""The RelatorIA routes (contract §3.9): every old `/api/*` path verbatim, ids in the query string
as the old client sends them, plus the canonical aliases with ids in the path.

Auth is the app's bearer token; every row is scoped to its owner and company (another user's id
answers 404). Errors on `/api/*` keep the old client's `error` **string** with the app's fields
beside it (`message`, `code`, `request_id`, `details`), see `_legacy_error_shape`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from app import runtime
from app.api import BEARER, Blueprint, F, cap_request_body, flag_view, idempotency_key, request_session
from app.auth import current_user, login_required
from app.errors import Forbidden, Invalid, NotFound, TooLarge
from app.features.reports import schemas, service
from app.features.reports.models import Dataset

blp = Blueprint(
    "reports", __name__, url_prefix="/api", description="AI reports (RelatorIA, reports-contract.md)"
)

# /api/* answers errors in the old client's shape (`error` is a string, see _legacy_error_shape).
_LEGACY_ERROR = {
    "description": "Error: `error` is the message (the old client prints it); `code`, `message`, "
    "`request_id` and `details` beside it",
    "content": {"application/json": {"schema": schemas.LegacyErrorSchema}},
}
# Success bodies are the contract's (reports-contract.md §3), JSON objects on every route.
_OK = {
    "description": "The contract's body (reports-contract.md §3)",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_RESPONSES = {
    **{status: _OK for status in ("200", "201", "202")},
    **{status: _LEGACY_ERROR for status in ("default", "401", "403", "404", "429")},
}
_DOC = {"security": BEARER, "responses": _RESPONSES}


def _authenticated(view: F) -> F:
    """A bearer-authenticated route: an anonymous caller is refused (401) before anything else."""
    return login_required(blp.doc(**_DOC)(view))


def _token_or_bearer(view: F) -> F:
    """Authorised by the URL's signed token or the bearer token (the view checks which): protected
    for the request guards, documented with bearer security."""
    return flag_view(blp.doc(**_DOC)(view), auth=True)


def _public(view: F) -> F:
    return blp.doc(responses=_RESPONSES)(view)


def _caller() -> service.Caller:
    user = current_user()
    return service.Caller(user.id, user.company_id, user.email)


def _body() -> dict[str, Any]:
    """The JSON body as a dict ({} when empty); malformed JSON is a 400 in the JSON error shape."""
    if not request.get_data(cache=True):
        return {}
    payload = request.get_json(silent=True, force=True)
    if payload is None:
        raise Invalid("Invalid JSON body", "INVALID_JSON")
    if not isinstance(payload, dict):
        raise Invalid("The JSON body must be an object", "INVALID_JSON")
    return payload


def _query_id(*names: str) -> str | None:
    for name in names:
        value = request.args.get(name)
        if value:
            return value
    return None


def _accepted(body: dict[str, Any], job_id: str | None) -> tuple[Response, int, dict[str, str]]:
    headers = {"Location": f"/jobs/{job_id}"} if job_id else {}
    return jsonify(body), 202, headers


@blp.after_app_request
def _legacy_error_shape(response: Response) -> Response:
    """On /api/*, `error` is the message string (the old client prints `data.error`); the app's
    error object's fields move beside it. Covers every error: domain errors, 401s, routing 404/405,
    validation and body-size errors."""
    if response.status_code < 400 or not request.path.startswith("/api/") or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return response
    error = body.pop("error")
    body["error"] = str(error.get("message") or body.get("message") or "Error")
    body["code"] = error.get("code")
    if "details" in error:
        body["details"] = error["details"]
    response.set_data(jsonify(body).get_data())
    return response


# --- upload --------------------------------------------------------------------------------


def _upload_url(dataset: Dataset) -> str:
    # From the configured public URL, never the request's Host header.
    path = url_for("reports.upload_content", dataset_id=dataset.id, token=service.upload_token(dataset))
    return runtime.settings().public_api_url.rstrip("/") + path


def _create_dataset() -> ResponseReturnValue:
    body = _body()
    session = request_session()
    dataset = service.create_dataset(session, _caller(), body.get("filename") or body.get("fileName"))
    url = _upload_url(dataset)
    session.commit()
    return jsonify({"uploadUrl": url, "datasetId": dataset.id, "path": dataset.storage_path})


@blp.route("/upload/create", methods=["POST"], endpoint="upload_create")
@_authenticated
def upload_create() -> ResponseReturnValue:
    """Create a dataset and a signed, single-use `uploadUrl` (PUT the file's bytes there)."""
    return _create_dataset()


@blp.route("/datasets", methods=["POST"], endpoint="datasets_create")
@_authenticated
def datasets_create() -> ResponseReturnValue:
    """Alias of POST /api/upload/create."""
    return _create_dataset()


def _read_file() -> tuple[bytes, str | None, str | None]:
    """(bytes, content type, filename) from a multipart body (first file part, any field name) or
    a raw body. Oversized bodies are refused from Content-Length or cut off while streaming."""
    limit = runtime.settings().dataset_max_bytes
    too_large = TooLarge(
        f"O arquivo é grande demais: o limite é {limit / (1024 * 1024):g} MB.",
        "too_large",
        {"maxBytes": limit},
    )
    cap_request_body(limit + 64 * 1024, too_large)  # room for multipart headers
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is None:
            raise Invalid("Envie o arquivo no corpo (raw) ou como multipart (campo 'file').", "no_file")
        data = upload.read(limit + 1)
        return data, upload.mimetype or None, upload.filename or None
    return request.get_data(cache=False), request.mimetype or None, None


@blp.route("/upload/<string:dataset_id>/content", methods=["PUT"], endpoint="upload_content")
@_token_or_bearer
def upload_content(dataset_id: str) -> ResponseReturnValue:
    """The target of `uploadUrl`: the file's bytes (raw or multipart). Starts the parse job (202).
    Authorised by the URL's signed `token`, or by the owner's bearer token."""
    session = request_session()
    token = request.args.get("token")
    if token:
        dataset = service.dataset_for_upload_token(session, dataset_id, token)
    else:
        dataset = service.get_dataset(session, _caller(), dataset_id, lock=True)
    data, content_type, _ = _read_file()
    job = service.store_file(session, dataset, data, content_type)
    session.commit()
    return _accepted({"datasetId": dataset.id, "job_id": job.id, "status": "uploaded"}, job.id)


@blp.route("/upload", methods=["POST"], endpoint="upload_one_step")
@_authenticated
def upload_one_step() -> ResponseReturnValue:
    """Create and upload in one multipart call (field `file`); nothing is stored if the file is refused."""
    caller = _caller()
    data, content_type, filename = _read_file()
    name = request.form.get("filename") or filename
    service.clean_filename(name)
    service.check_upload(data)  # before any row exists
    session = request_session()
    dataset = service.create_dataset(session, caller, name)
    job = service.store_file(session, dataset, data, content_type)
    session.commit()
    return _accepted(
        {"datasetId": dataset.id, "job_id": job.id, "status": "uploaded", "path": dataset.storage_path},
        job.id,
    )


def _dataset_status(dataset_id: str | None) -> ResponseReturnValue:
    caller = _caller()
    if not dataset_id:
        raise Invalid("dataset id is required", "dataset_id_required")
    session = request_session()
    dataset = service.get_dataset(session, caller, dataset_id)
    outcome = service.dataset_status(dataset, service.job_of(session, dataset.parse_job_id))
    return jsonify(schemas.dataset_status_body(dataset, outcome))


@blp.route("/upload/status", methods=["GET"], endpoint="upload_status")
@_authenticated
def upload_status() -> ResponseReturnValue:
    """`?id=`: uploaded | processing | parsed | invalid, with `error_message` when invalid."""
    return _dataset_status(_query_id("id"))


@blp.route("/datasets/<string:dataset_id>/status", methods=["GET"], endpoint="dataset_status")
@_authenticated
def dataset_status(dataset_id: str) -> ResponseReturnValue:
    return _dataset_status(dataset_id)


def _reparse(dataset_id: str | None) -> ResponseReturnValue:
    session = request_session()
    job = service.reparse(session, _caller(), dataset_id)
    session.commit()
    return _accepted({"datasetId": dataset_id, "job_id": job.id, "status": "uploaded"}, job.id)


@blp.route("/dataset/reparse", methods=["POST"], endpoint="dataset_reparse")
@_authenticated
def dataset_reparse() -> ResponseReturnValue:
    """`?id=`: parse an invalid dataset's stored file again."""
    return _reparse(_query_id("id") or _body().get("id"))


@blp.route("/datasets/<string:dataset_id>/reparse", methods=["POST"], endpoint="datasets_reparse")
@_authenticated
def datasets_reparse(dataset_id: str) -> ResponseReturnValue:
    return _reparse(dataset_id)


# --- dataset -------------------------------------------------------------------------------


def _preview(dataset_id: str | None) -> ResponseReturnValue:
    session = request_session()
    dataset = service.get_dataset(session, _caller(), dataset_id)
    service.require_parsed(session, dataset)
    return jsonify(
        {
            "columns": dataset.columns,
            "sample_path": None,
            "sample": dataset.sample or [],
            "row_count": dataset.row_count,
            "stats": dataset.stats,
        }
    )


@blp.route("/dataset/preview", methods=["GET"], endpoint="dataset_preview")
@_authenticated
def dataset_preview() -> ResponseReturnValue:
    """`?id=`: the column profile, the 30-row sample and the full-file aggregates (409 until parsed)."""
    return _preview(_query_id("id"))


@blp.route("/datasets/<string:dataset_id>/preview", methods=["GET"], endpoint="datasets_preview")
@_authenticated
def datasets_preview(dataset_id: str) -> ResponseReturnValue:
    return _preview(dataset_id)


def _save_mapping(dataset_id: Any, mappings: Any) -> ResponseReturnValue:
    caller = _caller()
    if not dataset_id:
        raise Invalid("Invalid payload", "VALIDATION_ERROR", {"datasetId": "is required"})
    session = request_session()
    dataset = service.save_mapping(session, caller, dataset_id, schemas.load_mappings(mappings))
    session.commit()
    return jsonify({"ok": True, "columns": dataset.columns})


@blp.route("/dataset/save_mapping", methods=["POST"], endpoint="dataset_save_mapping")
@_authenticated
def dataset_save_mapping() -> ResponseReturnValue:
    """`{datasetId, mappings: [{name, type?, subtype?, is_time?, is_index?}]}`: the user's typing."""
    body = _body()
    return _save_mapping(body.get("datasetId") or body.get("dataset_id"), body.get("mappings"))


@blp.route("/datasets/<string:dataset_id>/mapping", methods=["PUT"], endpoint="datasets_mapping")
@_authenticated
def datasets_mapping(dataset_id: str) -> ResponseReturnValue:
    return _save_mapping(dataset_id, _body().get("mappings"))


def _sample(report_id: str | None) -> ResponseReturnValue:
    caller = _caller()
    if not report_id:
        raise Invalid("report_request_id is required", "report_id_required")
    session = request_session()
    report = service.get_report(session, caller, report_id)
    dataset = session.get(Dataset, report.dataset_id)
    if dataset is None:
        raise NotFound("Dataset not found", "dataset_not_found")
    text = json.dumps({"sample": dataset.sample or []}, ensure_ascii=False)
    return jsonify({"sample_json": {"sample_json": text}, "sample": dataset.sample or []})


@blp.route("/dataset/get_sample", methods=["GET"], endpoint="dataset_get_sample")
@_authenticated
def dataset_get_sample() -> ResponseReturnValue:
    """`?report_request_id=` (or `reportRequestId`, `id`): the old doubled `sample_json` string,
    plus `sample` (the parsed rows)."""
    return _sample(_query_id("report_request_id", "reportRequestId", "id"))


@blp.route("/reports/<string:report_id>/sample", methods=["GET"], endpoint="reports_sample")
@_authenticated
def reports_sample(report_id: str) -> ResponseReturnValue:
    return _sample(report_id)


# --- reports -------------------------------------------------------------------------------


def _create_report() -> ResponseReturnValue:
    caller = _caller()
    body = _body()
    dataset_id = body.get("dataset_id") or body.get("datasetId")
    if not dataset_id:
        raise Invalid("dataset_id is required", "dataset_id_required")
    session = request_session()
    report, warning = service.create_report(
        session, caller, dataset_id, schemas.load_parameters(body.get("parameters")), idempotency_key()
    )
    session.commit()
    answer: dict[str, Any] = {"request_id": report.id, "status": "pending", "job_id": report.job_id}
    if warning:
        answer["warning"] = warning
    return _accepted(answer, report.job_id)


@blp.route("/report", methods=["POST"], endpoint="report_create")
@_authenticated
def report_create() -> ResponseReturnValue:
    """`{dataset_id, parameters?}`: a pending report and its job (202; poll /api/report/status)."""
    return _create_report()


@blp.route("/reports", methods=["POST"], endpoint="reports_create")
@_authenticated
def reports_create() -> ResponseReturnValue:
    return _create_report()


def _report_status(report_id: str | None) -> ResponseReturnValue:
    session = request_session()
    report = service.get_report(session, _caller(), report_id)
    job = service.job_of(session, report.job_id)
    return jsonify(schemas.report_status_body(report, service.report_status(report, job), job))


@blp.route("/report/status", methods=["GET"], endpoint="report_status")
@_authenticated
def report_status() -> ResponseReturnValue:
    """`?id=`: pending | processing | done | failed, with `error_message`, `progress`, `attempts`."""
    return _report_status(_query_id("id"))


@blp.route("/reports/<string:report_id>/status", methods=["GET"], endpoint="reports_status")
@_authenticated
def reports_status(report_id: str) -> ResponseReturnValue:
    return _report_status(report_id)


def _ai_report(report_id: str) -> ResponseReturnValue:
    session = request_session()
    report = service.get_report(session, _caller(), report_id)
    outcome = service.report_status(report, service.job_of(session, report.job_id))
    return jsonify(
        {"ai_response": report.ai_response if outcome.status == "done" else None, "pdf_path": None}
    )


@blp.route("/report/ai_report", methods=["GET"], endpoint="report_ai")
@_authenticated
def report_ai() -> ResponseReturnValue:
    """`?id=`: `{ai_response, pdf_path}` (owner-scoped, unlike the old route)."""
    report_id = _query_id("id")
    if not report_id:
        raise Invalid("Missing report id", "report_id_required")  # checked before auth, as before
    return _ai_report(report_id)


@blp.route("/reports/<string:report_id>/ai", methods=["GET"], endpoint="reports_ai")
@_authenticated
def reports_ai(report_id: str) -> ResponseReturnValue:
    return _ai_report(report_id)


def _view(report_id: str | None) -> ResponseReturnValue:
    session = request_session()
    report = service.get_report(session, _caller(), report_id)
    outcome = service.report_status(report, service.job_of(session, report.job_id))
    return jsonify(schemas.report_view_body(report, outcome, session.get(Dataset, report.dataset_id)))


@blp.route("/report/view", methods=["GET"], endpoint="report_view")
@_authenticated
def report_view() -> ResponseReturnValue:
    """`?id=`: the report, its result and its dataset's columns."""
    return _view(_query_id("id"))


@blp.route("/reports/<string:report_id>", methods=["GET"], endpoint="reports_view")
@_authenticated
def reports_view(report_id: str) -> ResponseReturnValue:
    return _view(report_id)


def _regenerate(report_id: Any) -> ResponseReturnValue:
    caller = _caller()
    if not report_id:
        raise Invalid("id is required", "report_id_required")
    session = request_session()
    report, previous = service.regenerate(session, caller, report_id)
    session.commit()
    return _accepted(
        {
            "success": True,
            "message": "Report regeneration initiated",
            "request_id": report.id,
            "history_id": previous.id if previous else None,
            "job_id": report.job_id,
        },
        report.job_id,
    )


@blp.route("/report/regenerate_report", methods=["POST"], endpoint="report_regenerate")
@_authenticated
def report_regenerate() -> ResponseReturnValue:
    """`{id}`: generate again (the previous result stays as a version; 409 while a job runs)."""
    return _regenerate(_body().get("id") or _query_id("id"))


@blp.route("/reports/<string:report_id>/regenerate", methods=["POST"], endpoint="reports_regenerate")
@_authenticated
def reports_regenerate(report_id: str) -> ResponseReturnValue:
    return _regenerate(report_id)


@blp.route("/reports/<string:report_id>/versions", methods=["GET"], endpoint="reports_versions")
@_authenticated
def reports_versions(report_id: str) -> ResponseReturnValue:
    """Every finished generation of the report, oldest first."""
    rows = service.versions(request_session(), _caller(), report_id)
    return jsonify({"versions": [schemas.version_body(v) for v in rows]})


def _delete(report_id: Any) -> ResponseReturnValue:
    caller = _caller()
    if not report_id:
        raise Invalid("report id is required", "report_id_required")
    session = request_session()
    deleted = service.delete_report(session, caller, report_id)
    session.commit()
    return jsonify(
        {
            "success": True,
            "deleted_id": deleted.report_id,
            "deleted_dataset_id": deleted.dataset_id,
            "history_id": deleted.tombstone_id,
        }
    )


@blp.route("/report/delete", methods=["DELETE"], endpoint="report_delete")
@_authenticated
def report_delete() -> ResponseReturnValue:
    """`?id=` (or `?report_id=`, or body `{id}`): delete the report, and its dataset when unused."""
    return _delete(_query_id("id", "report_id") or _body().get("id"))


@blp.route("/reports/<string:report_id>", methods=["DELETE"], endpoint="reports_delete")
@_authenticated
def reports_delete(report_id: str) -> ResponseReturnValue:
    return _delete(report_id)


def _send_email(report_id: str | None) -> ResponseReturnValue:
    caller = _caller()
    body = _body()
    session = request_session()
    job = service.request_email(
        session, caller, report_id, body.get("to"), body.get("subject"), body.get("message")
    )
    session.commit()
    return _accepted({"ok": True, "job_id": job.id}, job.id)


@blp.route("/report/send_email", methods=["POST"], endpoint="report_send_email")
@_authenticated
def report_send_email() -> ResponseReturnValue:
    """`?id=` + `{to?, subject?, message?}`: email the report to its owner (a job; 202)."""
    return _send_email(_query_id("id"))


@blp.route("/reports/<string:report_id>/email", methods=["POST"], endpoint="reports_email")
@_authenticated
def reports_email(report_id: str) -> ResponseReturnValue:
    return _send_email(report_id)


# --- library and dashboard -----------------------------------------------------------------


def _int_arg(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer", "VALIDATION_ERROR") from None
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high}", "VALIDATION_ERROR")
    return value


def _library() -> ResponseReturnValue:
    caller = _caller()
    limit = _int_arg("limit", 1, 100)
    offset = _int_arg("offset", 0, 1_000_000) or 0
    rows, total = service.library(request_session(), caller, limit, offset)
    effective_limit = limit or service.LIBRARY_CAP
    return jsonify(
        {
            "reports": [schemas.library_item(row) for row in rows],
            "pagination": {
                "total": total,
                "limit": effective_limit,
                "offset": offset,
                "hasMore": offset + len(rows) < total,
            },
        }
    )


@blp.route("/library", methods=["GET"], endpoint="library")
@_authenticated
def library() -> ResponseReturnValue:
    """The caller's reports, newest first (`?limit` 1-100, `?offset`; up to 500 without them)."""
    return _library()


@blp.route("/reports", methods=["GET"], endpoint="reports_library")
@_authenticated
def reports_library() -> ResponseReturnValue:
    return _library()


def _dashboard() -> ResponseReturnValue:
    caller = _caller()
    asked = _query_id("user_id", "userId", "id")
    if asked and asked != caller.user_id:
        raise Forbidden("Forbidden: mismatched user", "FORBIDDEN")
    return jsonify(service.dashboard(request_session(), caller))


@blp.route("/dashboard", methods=["GET"], endpoint="dashboard")
@_authenticated
def dashboard() -> ResponseReturnValue:
    """Counts of the caller's reports (contract §3.5)."""
    return _dashboard()


@blp.route("/reports/dashboard", methods=["GET"], endpoint="reports_dashboard")
@_authenticated
def reports_dashboard() -> ResponseReturnValue:
    return _dashboard()


# --- business profile ----------------------------------------------------------------------


def _save_profile() -> ResponseReturnValue:
    caller = _caller()
    values = schemas.load_profile(_body())
    session = request_session()
    profile, created = service.save_profile(session, caller, values)
    session.commit()
    return jsonify({"bussiness_info": schemas.profile_body(profile)}), 201 if created else 200


def _get_profile() -> ResponseReturnValue:
    profile = service.get_profile(request_session(), _caller())
    if profile is None:
        raise NotFound("Business info not found", "business_info_not_found")
    return jsonify({"bussiness_info": schemas.profile_body(profile)})


def _profile_status() -> ResponseReturnValue:
    caller = _caller()
    asked = _query_id("owner_id", "ownerId")
    if asked and asked != caller.user_id:
        raise Forbidden("Forbidden", "FORBIDDEN")
    return jsonify({"exists": service.get_profile(request_session(), caller) is not None})


@blp.route("/bussiness_info", methods=["POST"], endpoint="bussiness_info_save")
@_authenticated
def bussiness_info_save() -> ResponseReturnValue:
    """Upsert the caller's business profile (201 created, 200 updated)."""
    return _save_profile()


@blp.route("/bussiness_info", methods=["GET"], endpoint="bussiness_info_get")
@_authenticated
def bussiness_info_get() -> ResponseReturnValue:
    return _get_profile()


@blp.route("/business-info", methods=["PUT", "POST"], endpoint="business_info_save")
@_authenticated
def business_info_save() -> ResponseReturnValue:
    return _save_profile()


@blp.route("/business-info", methods=["GET"], endpoint="business_info_get")
@_authenticated
def business_info_get() -> ResponseReturnValue:
    return _get_profile()


@blp.route("/bussiness_info/status", methods=["GET"], endpoint="bussiness_info_status")
@_authenticated
def bussiness_info_status() -> ResponseReturnValue:
    """`{exists}`: whether the caller has a business profile."""
    return _profile_status()


@blp.route("/business-info/status", methods=["GET"], endpoint="business_info_status")
@_authenticated
def business_info_status() -> ResponseReturnValue:
    return _profile_status()


# --- beta leads (public) -------------------------------------------------------------------


def _beta() -> ResponseReturnValue:
    name, email = schemas.load_lead(_body())
    session = request_session()
    service.add_beta_lead(session, name, email, request.remote_addr)
    session.commit()
    return jsonify({"success": True}), 201


@blp.route("/beta", methods=["POST"], endpoint="beta")
@_public
def beta() -> ResponseReturnValue:
    """Public: `{name, email}` joins the beta list (a repeat answers the same)."""
    return _beta()


@blp.route("/beta-leads", methods=["POST"], endpoint="beta_leads")
@_public
def beta_leads() -> ResponseReturnValue:
    return _beta()
