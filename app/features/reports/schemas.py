"""Request checks and response bodies of the RelatorIA routes (contract §3), in the old shapes
plus the documented additions (`job_id`, `error_message`, …)."""

from __future__ import annotations

import json
import re
from typing import Any

import marshmallow as ma

from app.api import format_utc
from app.errors import Invalid
from app.features.reports.models import BusinessProfile, Dataset, Report, ReportVersion
from app.features.reports.parsing import TYPES
from app.features.reports.service import Outcome, ReportRow
from app.jobs.models import Job

MAX_PARAMETERS_BYTES = 10_000


class LegacyErrorSchema(ma.Schema):
    """An error on /api/*: the old client reads `error` as a string."""

    class Meta:
        unknown = ma.INCLUDE

    error = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    code = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    details = ma.fields.Raw()


_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


def _ts(value: Any) -> str | None:
    return format_utc(value) if value is not None else None


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string", "VALIDATION_ERROR")
    value = value.strip()
    if len(value) > limit:
        raise Invalid(f"{name} must be at most {limit} characters", "VALIDATION_ERROR")
    return value or None


def _string_list(value: Any, name: str) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 20:
        raise Invalid(f"{name} must be a list of strings", "VALIDATION_ERROR")
    cleaned = [v.strip()[:200] for v in value if v.strip()]
    return cleaned or None


# --- requests ------------------------------------------------------------------------------


def load_profile(body: dict[str, Any]) -> dict[str, Any]:
    """The business profile fields (§3.6 Rec): a plain-string goal is `other`, a string priority a
    one-element list."""
    goal = body.get("goal")
    if isinstance(goal, str):
        goal = {"selected": [], "other": goal.strip()[:500]} if goal.strip() else None
    elif isinstance(goal, dict):
        other = goal.get("other")
        if other is not None and not isinstance(other, str):
            raise Invalid("goal.other must be a string", "VALIDATION_ERROR")
        goal = {
            "selected": _string_list(goal.get("selected"), "goal.selected") or [],
            "other": other.strip()[:500] if other and other.strip() else None,
        }
        if not goal["selected"] and not goal["other"]:
            goal = None
    elif goal is not None:
        raise Invalid("goal must be an object {selected, other} or a string", "VALIDATION_ERROR")
    return {
        "niche_bussiness": _text(body, "niche_bussiness", 100) or _text(body, "niche_business", 100),
        "goal": goal,
        "analysis_period": _text(body, "analysis_period", 100),
        "info_priority": _string_list(body.get("info_priority"), "info_priority"),
        "best_data_format": _text(body, "best_data_format", 50),
    }


def load_mappings(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise Invalid("Invalid payload", "VALIDATION_ERROR", {"mappings": "must be an array"})
    mappings = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise Invalid("Invalid payload", "VALIDATION_ERROR", {f"mappings/{index}": "needs a name"})
        kind = item.get("type")
        if kind is not None and kind not in TYPES:
            raise Invalid(
                f"Invalid payload: type must be one of {', '.join(TYPES)}",
                "VALIDATION_ERROR",
                {f"mappings/{index}/type": kind},
            )
        subtype = item.get("subtype")
        mappings.append(
            {
                "name": item["name"],
                "type": kind,
                "subtype": str(subtype)[:50] if subtype is not None else None,
                "is_time": bool(item.get("is_time")),
                "is_index": bool(item.get("is_index")),
            }
        )
    return mappings


def load_parameters(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("parameters must be an object", "VALIDATION_ERROR")
    if len(json.dumps(value, default=str)) > MAX_PARAMETERS_BYTES:
        raise Invalid(f"parameters must be at most {MAX_PARAMETERS_BYTES} bytes of JSON", "VALIDATION_ERROR")
    return value


def load_lead(body: dict[str, Any]) -> tuple[str, str]:
    name, email = body.get("name"), body.get("email")
    if not isinstance(name, str) or not name.strip() or not isinstance(email, str) or not email.strip():
        raise Invalid("name and email are required", "VALIDATION_ERROR")
    name, email = name.strip(), email.strip().lower()
    if len(name) > 100 or len(email) > 254 or not _EMAIL.match(email):
        raise Invalid("invalid email format" if len(name) <= 100 else "name is too long", "VALIDATION_ERROR")
    return name, email


# --- responses -----------------------------------------------------------------------------


def dataset_status_body(dataset: Dataset, outcome: Outcome) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "status": outcome.status,
        "error_message": outcome.error_message,
        "error_code": outcome.error_code,
        "job_id": dataset.parse_job_id,
        "row_count": dataset.row_count,
        "filename": dataset.filename,
        "updated_at": _ts(dataset.updated_at),
    }


def report_status_body(report: Report, outcome: Outcome, job: Job | None) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "pdf_url": None,  # no PDF is produced (contract §3.4: never the old "FILE:" string)
        "error_message": outcome.error_message,
        "error_code": outcome.error_code,
        "updated_at": _ts(report.updated_at),
        "job_id": report.job_id,
        "attempts": job.attempts if job is not None else report.attempts,
        "progress": job.progress if job is not None else (100 if outcome.status == "done" else 0),
    }


def report_view_body(report: Report, outcome: Outcome, dataset: Dataset | None) -> dict[str, Any]:
    return {
        "id": report.id,
        "status": outcome.status,
        "created_at": _ts(report.created_at),
        "ai_response": report.ai_response if outcome.status == "done" else None,
        "pdf_url": None,
        "pdf_path": None,
        "dataset": (
            {
                "columns": dataset.columns,
                "filename": dataset.filename,
                "owner_id": dataset.owner_id,
                "row_count": dataset.row_count,
            }
            if dataset is not None
            else None
        ),
        "dataset_id": report.dataset_id,
        "error_message": outcome.error_message,
        "error_code": outcome.error_code,
        "parameters": report.parameters,
        "usage": report.usage,
        "model": report.model,
        "provider": report.provider,
        "llm_latency_ms": report.llm_latency_ms,
        "prompt_version": report.prompt_version,
        "sent_via_email": report.sent_via_email,
        "job_id": report.job_id,
        "completed_at": _ts(report.completed_at),
        "updated_at": _ts(report.updated_at),
    }


def library_item(row: ReportRow) -> dict[str, Any]:
    outcome = row.outcome
    summary = (row.report.ai_response or {}).get("summary") if outcome.status == "done" else None
    first_line = summary.split(".")[0].strip()[:120] if isinstance(summary, str) and summary.strip() else None
    return {
        "id": row.report.id,
        "status": outcome.status,
        "created_at": _ts(row.report.created_at),
        "pdf_path": None,
        "dataset_id": row.report.dataset_id,
        "datasets": {"filename": row.filename} if row.filename is not None else None,
        "title": row.filename or first_line or "Relatório",
        "error_message": outcome.error_message,
    }


def profile_body(profile: BusinessProfile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "owner_id": profile.owner_id,
        "niche_bussiness": profile.niche_bussiness,
        "goal": profile.goal,
        "analysis_period": profile.analysis_period,
        "info_priority": profile.info_priority,
        "best_data_format": profile.best_data_format,
        "created_at": _ts(profile.created_at),
        "updated_at": _ts(profile.updated_at),
    }


def version_body(version: ReportVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "version": version.version,
        "job_id": version.job_id,
        "ai_response": version.ai_response,
        "usage": version.usage,
        "model": version.model,
        "provider": version.provider,
        "prompt_version": version.prompt_version,
        "llm_latency_ms": version.llm_latency_ms,
        "created_at": _ts(version.created_at),
    }
