"""AI reports: datasets, their parse, reports, their generation, the library, business profiles.

Every read and write is scoped to the caller (`Caller`: user and company); another user's id is
`NotFound`. Services raise domain errors (`app/errors.py`) and never build HTTP answers.

Statuses a client sees are derived from the outcome a job wrote on the row *and* the job row
itself (`dataset_status`, `report_status`), so a job that ends without writing one (a worker killed
for good, an operator cancel, a last failed attempt) still shows as `invalid`/`failed`, never as
`processing`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import jwt
from redis.exceptions import RedisError
from sqlalchemy import Select, case, delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import runtime
from app.db import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound, PermanentJobError, RateLimited, TooLarge
from app.features.reports import analyst, llm, parsing, prompt
from app.features.reports.models import (
    BetaLead,
    BusinessProfile,
    Dataset,
    DatasetFile,
    DatasetStatus,
    Report,
    ReportDeletion,
    ReportStatus,
    ReportVersion,
)
from app.features.reports.output_schema import InvalidOutput, extract_json, finish
from app.jobs import enqueue
from app.jobs import service as jobs
from app.jobs.models import ACTIVE_STATUSES, Job, JobStatus

log = logging.getLogger(__name__)

PARSE_KIND = "reports.parse_dataset"
GENERATE_KIND = "reports.generate_report"
EMAIL_KIND = "reports.send_email"
ALLOWED_EXTENSIONS = (".csv", ".xlsx")
UPLOAD_TOKEN_TTL = timedelta(hours=2)
LIBRARY_CAP = 500
VALID_COLUMN_TYPES = parsing.TYPES


@dataclass(frozen=True)
class Caller:
    user_id: str
    company_id: str
    email: str


# --- statuses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str
    error_code: str | None = None
    error_message: str | None = None


INTERRUPTED = "O processamento foi interrompido várias vezes (o worker parou)."


class DatasetStillParsing(Exception):
    """The report's file is still being read: its job waits for the parse job to end."""


def dataset_status(dataset: Dataset, job: Job | None) -> Outcome:
    if dataset.status in (DatasetStatus.PARSED, DatasetStatus.INVALID):
        return Outcome(dataset.status, dataset.error_code, dataset.error_message)
    if dataset.parse_job_id is None:
        return Outcome(DatasetStatus.UPLOADED)
    if job is not None and job.status in (JobStatus.PENDING, JobStatus.QUEUED):
        return Outcome(DatasetStatus.UPLOADED)
    if job is not None and job.status == JobStatus.STARTED:
        return Outcome(DatasetStatus.PROCESSING)
    # The job ended without writing an outcome (killed for good, canceled, pruned).
    canceled = job is not None and job.status == JobStatus.CANCELED
    message = "A leitura do arquivo foi cancelada." if canceled else f"{INTERRUPTED}"
    return Outcome(DatasetStatus.INVALID, "parse_error", f"{message} Envie o arquivo de novo.")


def report_status(report: Report, job: Job | None) -> Outcome:
    if report.job_id is None or (job is None and report.status in (ReportStatus.DONE, ReportStatus.FAILED)):
        failed = report.status == ReportStatus.FAILED
        return Outcome(
            report.status, report.error_code if failed else None, report.error_message if failed else None
        )
    if job is not None and job.status in (JobStatus.PENDING, JobStatus.QUEUED):
        return Outcome(ReportStatus.PENDING)
    if job is not None and job.status == JobStatus.STARTED:
        return Outcome(ReportStatus.PROCESSING)
    if job is not None and job.status == JobStatus.SUCCEEDED and report.status == ReportStatus.DONE:
        return Outcome(ReportStatus.DONE)
    if report.error_message:
        return Outcome(ReportStatus.FAILED, report.error_code, report.error_message)
    if job is not None and job.status == JobStatus.CANCELED:
        return Outcome(ReportStatus.FAILED, "canceled", "A geração foi cancelada. Regenere o relatório.")
    return Outcome(ReportStatus.FAILED, "interrupted", f"{INTERRUPTED} Regenere o relatório.")


def effective_report_status() -> Any:
    """`report_status` as SQL (for the dashboard's one grouped query); needs the outer join on Job."""
    return case(
        (Report.job_id.is_(None), Report.status),
        (
            Job.id.is_(None),
            case((Report.status == ReportStatus.DONE, Report.status), else_=literal("failed")),
        ),
        (Job.status.in_((JobStatus.PENDING, JobStatus.QUEUED)), literal("pending")),
        (Job.status == JobStatus.STARTED, literal("processing")),
        ((Job.status == JobStatus.SUCCEEDED) & (Report.status == ReportStatus.DONE), literal("done")),
        else_=literal("failed"),
    )


# --- loading (always scoped) ---------------------------------------------------------------


def _owned(model: type[Dataset] | type[Report], caller: Caller) -> Select[Any]:
    return select(model).where(model.owner_id == caller.user_id, model.company_id == caller.company_id)


Owned = TypeVar("Owned", Dataset, Report)


def _get_owned(
    session: Session, model: type[Owned], caller: Caller, row_id: str | None, lock: bool, what: str
) -> Owned:
    if not row_id:
        raise Invalid(f"{what.lower()} id is required", f"{what.lower()}_id_required")
    stmt = _owned(model, caller).where(model.id == str(row_id))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound(f"{what} not found", f"{what.lower()}_not_found")
    return row


def get_dataset(session: Session, caller: Caller, dataset_id: str | None, *, lock: bool = False) -> Dataset:
    return _get_owned(session, Dataset, caller, dataset_id, lock, "Dataset")


def get_report(session: Session, caller: Caller, report_id: str | None, *, lock: bool = False) -> Report:
    return _get_owned(session, Report, caller, report_id, lock, "Report")


def job_of(session: Session, job_id: str | None) -> Job | None:
    return session.get(Job, job_id) if job_id else None


# --- upload --------------------------------------------------------------------------------


def clean_filename(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("File name is required", "filename_required")
    name = PureWindowsPath(PurePosixPath(raw.strip()).name).name.strip()  # no folders, either style
    name = re.sub(r"[\x00-\x1f]", "", name)[:200]
    if not name:
        raise Invalid("File name is required", "filename_required")
    lowered = name.lower()
    if lowered.endswith(".xls"):
        raise Invalid(
            "Formato .xls não suportado: salve a planilha como .xlsx ou .csv.", "unsupported_format"
        )
    if not lowered.endswith(ALLOWED_EXTENSIONS):
        raise Invalid("Formato não suportado: envie um arquivo .csv ou .xlsx.", "unsupported_format")
    return name


def check_upload(data: bytes) -> None:
    """Refuse, before anything is written, a file that can never be parsed (empty, too big, binary)."""
    limit = runtime.settings().dataset_max_bytes
    if len(data) > limit:
        raise TooLarge(
            f"O arquivo é grande demais: o limite é {limit / (1024 * 1024):g} MB.",
            "too_large",
            {"maxBytes": limit},
        )
    try:
        if parsing.sniff_format(data) == "csv":
            parsing.decode_text(data)
    except parsing.ParseError as exc:
        raise Invalid(exc.message, exc.code) from None


def create_dataset(session: Session, caller: Caller, filename: Any) -> Dataset:
    name = clean_filename(filename)
    dataset = Dataset(
        company_id=caller.company_id,
        owner_id=caller.user_id,
        filename=name,
        storage_path=f"{caller.user_id}/{int(time.time() * 1000)}_{name}",
        status=DatasetStatus.UPLOADED,
        upload_nonce=secrets.token_urlsafe(16),
    )
    session.add(dataset)
    session.flush()
    return dataset


def upload_token(dataset: Dataset) -> str:
    settings = runtime.settings()
    payload = {
        "sub": dataset.id,
        "nonce": dataset.upload_nonce,
        "type": "dataset_upload",
        "iss": settings.jwt_issuer,
        "exp": int(time.time() + UPLOAD_TOKEN_TTL.total_seconds()),
    }
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256")


def dataset_for_upload_token(session: Session, dataset_id: str, token: str) -> Dataset:
    """The dataset a signed upload URL is for (single use: the nonce is cleared by the upload)."""
    settings = runtime.settings()
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], issuer=settings.jwt_issuer)
    except jwt.PyJWTError:
        raise Forbidden(
            "O link de envio é inválido ou expirou: peça um novo.", "upload_token_invalid"
        ) from None
    if claims.get("type") != "dataset_upload" or claims.get("sub") != dataset_id:
        raise Forbidden("O link de envio é inválido ou expirou: peça um novo.", "upload_token_invalid")
    dataset = session.scalars(
        select(Dataset)
        .where(Dataset.id == dataset_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if dataset is None or not dataset.upload_nonce or dataset.upload_nonce != claims.get("nonce"):
        raise Forbidden("O link de envio já foi usado ou expirou: peça um novo.", "upload_token_invalid")
    return dataset


def store_file(session: Session, dataset: Dataset, data: bytes, content_type: str | None) -> Job:
    """Keep the bytes and create the parse job, in the caller's transaction (nothing half-stored:
    the checks run before any write). Allowed on a dataset without a file, or an invalid one."""
    job = job_of(session, dataset.parse_job_id)
    current = dataset_status(dataset, job)
    if current.status == DatasetStatus.PARSED:
        raise Conflict("Este conjunto de dados já foi lido; crie um novo envio.", "dataset_already_parsed")
    if current.status in (DatasetStatus.PROCESSING,) or (job is not None and job.status in ACTIVE_STATUSES):
        raise Conflict("O arquivo deste conjunto de dados está sendo lido.", "dataset_processing")
    check_upload(data)
    stored = session.get(DatasetFile, dataset.id)
    if stored is None:
        session.add(DatasetFile(dataset_id=dataset.id, data=data))
    else:
        stored.data = data
        stored.created_at = utcnow()
    dataset.size_bytes = len(data)
    dataset.sha256 = hashlib.sha256(data).hexdigest()
    dataset.content_type = (content_type or "")[:100] or None
    _reset_parse(dataset)
    dataset.upload_nonce = None
    return _enqueue_parse(session, dataset)


def _reset_parse(dataset: Dataset) -> None:
    dataset.status = DatasetStatus.UPLOADED
    dataset.error_code = dataset.error_message = None
    dataset.row_count = None
    dataset.columns = []
    dataset.sample = None
    dataset.stats = None
    dataset.parse_info = None
    dataset.parsed_at = None


def _enqueue_parse(session: Session, dataset: Dataset) -> Job:
    job, _ = enqueue(
        session,
        PARSE_KIND,
        {"dataset_id": dataset.id},
        company_id=dataset.company_id,
        requested_by=dataset.owner_id,
    )
    dataset.parse_job_id = job.id
    session.flush()
    return job


def reparse(session: Session, caller: Caller, dataset_id: str | None) -> Job:
    """Parse an invalid dataset's stored file again (after a crash or a fix)."""
    dataset = get_dataset(session, caller, dataset_id, lock=True)
    current = dataset_status(dataset, job_of(session, dataset.parse_job_id))
    if current.status != DatasetStatus.INVALID or session.get(DatasetFile, dataset.id) is None:
        raise Conflict(
            "Só um conjunto de dados inválido, com arquivo enviado, pode ser lido de novo.", "not_reparsable"
        )
    _reset_parse(dataset)
    return _enqueue_parse(session, dataset)


# --- parse job -----------------------------------------------------------------------------


def parse(session: Session, dataset_id: str, job_id: str, progress: Any) -> dict[str, Any]:
    """The parse job's work, in its transaction. ParseError for a file that can never work."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        return {"skipped": "deleted"}
    if dataset.parse_job_id != job_id:
        return {"skipped": "superseded"}
    if dataset.status == DatasetStatus.PARSED:
        return {"status": dataset.status, "row_count": dataset.row_count}
    stored = session.get(DatasetFile, dataset_id)
    if stored is None:
        raise parsing.ParseError("file_missing", "O arquivo não foi encontrado: envie-o de novo.")
    data = stored.data
    progress(10)
    parsed = parsing.parse_dataset(data, runtime.settings().dataset_max_rows)
    progress(60)
    dataset.status = DatasetStatus.PARSED
    dataset.error_code = dataset.error_message = None
    dataset.row_count = parsed.row_count
    dataset.columns = parsed.columns
    dataset.sample = parsed.sample
    dataset.stats = parsed.stats
    dataset.parse_info = parsed.info
    dataset.parsed_at = utcnow()
    session.flush()
    return {"status": DatasetStatus.PARSED, "row_count": parsed.row_count, "columns": len(parsed.columns)}


def record_parse_failure(session: Session, dataset_id: str, job_id: str, code: str, message: str) -> None:
    """Write the invalid outcome (in its own transaction: the job's was rolled back). Reports
    waiting for this file see it and fail with its message."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.parse_job_id != job_id:
        return
    dataset.status = DatasetStatus.INVALID
    dataset.error_code = code
    dataset.error_message = message


# --- mapping and preview -------------------------------------------------------------------


def require_parsed(session: Session, dataset: Dataset) -> None:
    current = dataset_status(dataset, job_of(session, dataset.parse_job_id))
    if current.status != DatasetStatus.PARSED:
        message = current.error_message or "O arquivo ainda não foi lido: aguarde o status 'parsed'."
        raise Conflict(message, "dataset_not_ready", {"status": current.status})


def save_mapping(
    session: Session, caller: Caller, dataset_id: Any, mappings: list[dict[str, Any]]
) -> Dataset:
    dataset = get_dataset(session, caller, dataset_id, lock=True)
    require_parsed(session, dataset)
    by_name = {m["name"]: m for m in mappings}
    merged = []
    for column in dataset.columns:
        mapping = by_name.get(column["name"])
        if mapping is None:
            merged.append(column)
            continue
        merged.append(
            {
                **column,
                "user_type": mapping.get("type") or column.get("type"),
                "user_subtype": mapping.get("subtype") or column.get("subtype"),
                "is_time": bool(mapping.get("is_time")),
                "is_index": bool(mapping.get("is_index")),
            }
        )
    dataset.columns = merged
    session.flush()
    return dataset


# --- reports -------------------------------------------------------------------------------


def _enqueue_generate(session: Session, report: Report) -> Job:
    job, _ = enqueue(
        session,
        GENERATE_KIND,
        {"report_id": report.id},
        company_id=report.company_id,
        requested_by=report.owner_id,
    )
    report.job_id = job.id
    return job


def create_report(
    session: Session, caller: Caller, dataset_id: Any, parameters: dict[str, Any], idempotency_key: str | None
) -> tuple[Report, str | None]:
    """A pending report and its job (or, while the file is being read, a report the parse job will
    start). Returns (report, warning)."""
    if idempotency_key:
        existing = session.scalars(
            _owned(Report, caller).where(Report.idempotency_key == idempotency_key)
        ).first()
        if existing is not None:
            return existing, None
    dataset = get_dataset(session, caller, dataset_id)
    current = dataset_status(dataset, job_of(session, dataset.parse_job_id))
    if current.status == DatasetStatus.INVALID:
        raise Conflict(
            f"O conjunto de dados é inválido: {current.error_message} Envie o arquivo de novo.",
            "dataset_invalid",
        )
    if current.status == DatasetStatus.UPLOADED and dataset.parse_job_id is None:
        raise Conflict(
            "Envie o arquivo do conjunto de dados antes de pedir o relatório.", "dataset_not_ready"
        )
    report = Report(
        company_id=caller.company_id,
        owner_id=caller.user_id,
        dataset_id=dataset.id,
        status=ReportStatus.PENDING,
        parameters=parameters,
        idempotency_key=idempotency_key,
    )
    try:
        with session.begin_nested():
            session.add(report)
            session.flush()
    except IntegrityError:  # the same Idempotency-Key won a concurrent request
        winner = session.scalars(
            _owned(Report, caller).where(Report.idempotency_key == idempotency_key)
        ).first()
        if winner is None:
            raise
        return winner, None
    # While the file is still being read, the report's job waits for it (it defers until the
    # parse job ends), so the report always has a job that ends it done or failed.
    _enqueue_generate(session, report)
    warning = None if current.status == DatasetStatus.PARSED else f"Dataset status is '{current.status}'"
    session.flush()
    return report, warning


def regenerate(session: Session, caller: Caller, report_id: Any) -> tuple[Report, ReportVersion | None]:
    report = get_report(session, caller, report_id, lock=True)
    job = job_of(session, report.job_id)
    if (job is not None and job.status in ACTIVE_STATUSES) or (
        report.job_id is None and report.status == ReportStatus.PENDING
    ):
        raise Conflict(
            "O relatório já está sendo gerado: aguarde o fim antes de regenerar.", "job_in_progress"
        )
    dataset = session.get_one(Dataset, report.dataset_id)
    require_parsed(session, dataset)
    latest = session.scalars(
        select(ReportVersion)
        .where(ReportVersion.report_id == report.id)
        .order_by(ReportVersion.version.desc())
    ).first()
    report.status = ReportStatus.PENDING
    report.ai_response = None
    report.error_code = report.error_message = None
    report.sent_via_email = False
    report.completed_at = None
    report.updated_at = utcnow()
    _enqueue_generate(session, report)
    session.flush()
    return report, latest


def versions(session: Session, caller: Caller, report_id: Any) -> list[ReportVersion]:
    report = get_report(session, caller, report_id)
    return list(
        session.scalars(
            select(ReportVersion).where(ReportVersion.report_id == report.id).order_by(ReportVersion.version)
        )
    )


@dataclass
class Deleted:
    report_id: str
    dataset_id: str | None
    tombstone_id: str


def delete_report(session: Session, caller: Caller, report_id: Any) -> Deleted:
    """One transaction: cancel the active job, remove the report (its versions cascade), then the
    dataset and its file if no other report uses them; keep a content-free tombstone."""
    report = get_report(session, caller, report_id, lock=True)
    job = job_of(session, report.job_id)
    if job is not None and job.status in ACTIVE_STATUSES:
        jobs.cancel(session, job)
    dataset_id = report.dataset_id
    session.delete(report)
    session.flush()
    others = session.scalar(select(func.count()).select_from(Report).where(Report.dataset_id == dataset_id))
    dataset_deleted = False
    if not others:
        dataset = session.get(Dataset, dataset_id)
        parse_job = job_of(session, dataset.parse_job_id) if dataset else None
        if parse_job is not None and parse_job.status in ACTIVE_STATUSES:
            jobs.cancel(session, parse_job)
        session.execute(delete(DatasetFile).where(DatasetFile.dataset_id == dataset_id))
        session.execute(delete(Dataset).where(Dataset.id == dataset_id))
        dataset_deleted = True
    tombstone = ReportDeletion(
        report_id=report.id,
        dataset_id=dataset_id,
        dataset_deleted=dataset_deleted,
        company_id=caller.company_id,
        owner_id=caller.user_id,
        reason="user_requested",
    )
    session.add(tombstone)
    session.flush()
    return Deleted(report.id, dataset_id if dataset_deleted else None, tombstone.id)


@dataclass
class ReportRow:
    report: Report
    job: Job | None
    filename: str | None

    @property
    def outcome(self) -> Outcome:
        return report_status(self.report, self.job)


def library(session: Session, caller: Caller, limit: int | None, offset: int) -> tuple[list[ReportRow], int]:
    base = _owned(Report, caller)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    stmt = (
        select(Report, Job, Dataset.filename)
        .where(Report.owner_id == caller.user_id, Report.company_id == caller.company_id)
        .outerjoin(Job, Job.id == Report.job_id)
        .outerjoin(Dataset, Dataset.id == Report.dataset_id)
        .order_by(Report.created_at.desc(), Report.id)
        .offset(offset)
        .limit(limit or LIBRARY_CAP)
    )
    return [ReportRow(r, j, f) for r, j, f in session.execute(stmt).tuples()], total


def dashboard(session: Session, caller: Caller) -> dict[str, Any]:
    """One grouped query over the caller's reports (contract §3.5, with the two documented fixes)."""
    status = effective_report_status()
    recent = Report.created_at >= func.now() - timedelta(days=30)
    row = session.execute(
        select(
            func.count(),
            func.count().filter(recent),
            func.count().filter(status == "done"),
            func.count().filter(recent & (status == "done")),
            func.count().filter(status == "failed"),
        )
        .select_from(Report)
        .outerjoin(Job, Job.id == Report.job_id)
        .where(Report.owner_id == caller.user_id, Report.company_id == caller.company_id)
    ).one()
    total, total_recent, done, done_recent, failed = (int(v or 0) for v in row)
    finished = done + failed
    return {
        "user_id": caller.user_id,
        "total_reports": total,
        "total_reports_last_month": total_recent,
        "done_reports": done,
        "done_reports_last_month": done_recent,
        "hours_saved": int(done * 1.5),
        "success_rate": round(done / finished * 100, 2) if finished else 0,
    }


# --- the report job ------------------------------------------------------------------------


@dataclass
class Generated:
    document: dict[str, Any]
    model: str
    provider: str
    usage: dict[str, int] | None
    latency_ms: int | None


def analysis_input(session: Session, report: Report, dataset: Dataset) -> prompt.AnalysisInput:
    profile = session.scalars(
        select(BusinessProfile).where(BusinessProfile.owner_id == report.owner_id)
    ).first()
    return prompt.build_input(
        filename=dataset.filename,
        row_count=dataset.row_count or 0,
        columns=dataset.columns or [],
        sample=dataset.sample or [],
        stats=dataset.stats or {},
        profile=profile_dict(profile) if profile else None,
        parameters=report.parameters or {},
    )


def _server_meta(input_: prompt.AnalysisInput, model: str, generated_by: str) -> dict[str, Any]:
    return {
        "rows_sampled": len(input_.sample),
        "row_count": input_.row_count,
        "model": model,
        "generated_by": generated_by,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "prompt_version": prompt.PROMPT_VERSION,
    }


def run_model(input_: prompt.AnalysisInput) -> Generated:
    """Ask the model; one repair call when its answer is not a valid report. LLMError / InvalidOutput."""
    settings = runtime.settings()
    messages = prompt.build_messages(input_)
    prompt_text = "".join(m["content"] for m in messages)
    client = llm.make_client(settings)
    usage: dict[str, int] = {}
    latency = 0
    answer = None
    for turn in ("first", "repair"):
        answer = llm.complete(settings, messages, client)
        latency += answer.latency_ms
        for key, value in (answer.usage or {}).items():
            usage[key] = usage.get(key, 0) + (value or 0)
        log.info(
            "llm call",
            extra={
                "turn": turn,
                "model": answer.model,
                "latency_ms": answer.latency_ms,
                "total_tokens": (answer.usage or {}).get("total_tokens"),
                "prompt_sha256": hashlib.sha256(prompt_text.encode()).hexdigest(),
                "prompt_chars": len(prompt_text),
            },
        )
        warnings = list(input_.warnings)
        try:
            document = finish(
                extract_json(answer.text),
                _server_meta(input_, answer.model, "llm"),
                warnings,
            )
            return Generated(document, answer.model, llm.provider_name(settings), usage or None, latency)
        except InvalidOutput as exc:
            if turn == "repair":
                raise
            log.warning("llm answer invalid; asking for a repair", extra={"errors": exc.errors[:5]})
            messages = prompt.repair_messages(messages, answer.text, exc.errors)
    raise AssertionError("unreachable")


def run_local_analyst(input_: prompt.AnalysisInput) -> Generated:
    document = finish(
        analyst.analyse(input_),
        _server_meta(input_, analyst.ANALYST_NAME, analyst.ANALYST_NAME),
        list(input_.warnings),
    )
    return Generated(document, analyst.ANALYST_NAME, "local", None, 0)


def generate(session: Session, report_id: str, job_id: str, attempt: int, progress: Any) -> dict[str, Any]:
    """The report job's work. The model call happens with no row lock held; the result is written
    only if the report still belongs to this job (a regenerate or a delete may have happened)."""
    report = session.get(Report, report_id)
    if report is None:
        return {"skipped": "deleted"}
    if report.job_id != job_id:
        return {"skipped": "superseded"}
    if report.status == ReportStatus.DONE and report.result_job_id == job_id:
        return {"report_id": report_id, "status": ReportStatus.DONE}
    dataset = session.get_one(Dataset, report.dataset_id)
    if dataset.status != DatasetStatus.PARSED:
        current = dataset_status(dataset, job_of(session, dataset.parse_job_id))
        if current.status in (DatasetStatus.UPLOADED, DatasetStatus.PROCESSING) and dataset.parse_job_id:
            raise DatasetStillParsing(dataset.id)  # the task waits (defers) and comes back
        raise PermanentJobError(
            f"O arquivo do relatório é inválido: {current.error_message or 'envie-o de novo.'}",
            "dataset_invalid",
        )
    progress(10)
    input_ = analysis_input(session, report, dataset)
    progress(20)
    session.rollback()  # end the read-only transaction: nothing is held open during the model call
    generated = run_model(input_) if runtime.settings().openai_api_key else run_local_analyst(input_)
    progress(90)
    report = session.scalars(
        select(Report)
        .where(Report.id == report_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if report is None or report.job_id != job_id:
        return {"skipped": "superseded"}
    number = (
        session.scalar(select(func.max(ReportVersion.version)).where(ReportVersion.report_id == report_id))
        or 0
    ) + 1
    report.status = ReportStatus.DONE
    report.ai_response = generated.document
    report.error_code = report.error_message = None
    report.model = generated.model
    report.provider = generated.provider
    report.prompt_version = prompt.PROMPT_VERSION
    report.usage = generated.usage
    report.llm_latency_ms = generated.latency_ms
    report.attempts = attempt
    report.result_job_id = job_id
    report.completed_at = utcnow()
    session.add(
        ReportVersion(
            report_id=report_id,
            version=number,
            job_id=job_id,
            ai_response=generated.document,
            usage=generated.usage,
            model=generated.model,
            provider=generated.provider,
            prompt_version=prompt.PROMPT_VERSION,
            llm_latency_ms=generated.latency_ms,
        )
    )
    session.flush()
    log.info(
        "report generated",
        extra={
            "model": generated.model,
            "latency_ms": generated.latency_ms,
            "usage": generated.usage,
            "version": number,
        },
    )
    return {"report_id": report_id, "status": ReportStatus.DONE, "version": number, "model": generated.model}


def record_report_error(
    session: Session, report_id: str, job_id: str, attempt: int, code: str, message: str, *, final: bool
) -> None:
    """The last attempt's error, in its own transaction (the job's was rolled back). `final`
    writes the failed outcome too (a permanent error, or the last attempt)."""
    report = session.get(Report, report_id)
    if report is None or report.job_id != job_id:
        return
    report.error_code = code
    report.error_message = message
    report.attempts = attempt
    if final:
        report.status = ReportStatus.FAILED
    report.updated_at = utcnow()


# --- demo ----------------------------------------------------------------------------------


def create_example(session: Session, caller: Caller, filename: str, data: bytes) -> Report:
    """A parsed dataset and a finished local-analyst report, built inline (no jobs): the demo seed's
    way to show a filled library on a fresh machine."""
    dataset = create_dataset(session, caller, filename)
    session.add(DatasetFile(dataset_id=dataset.id, data=data))
    parsed = parsing.parse_dataset(data, runtime.settings().dataset_max_rows)
    dataset.size_bytes, dataset.sha256, dataset.upload_nonce = (
        len(data),
        hashlib.sha256(data).hexdigest(),
        None,
    )
    dataset.status, dataset.row_count, dataset.columns = (
        DatasetStatus.PARSED,
        parsed.row_count,
        parsed.columns,
    )
    dataset.sample, dataset.stats, dataset.parse_info = parsed.sample, parsed.stats, parsed.info
    dataset.parsed_at = utcnow()
    report = Report(
        company_id=caller.company_id, owner_id=caller.user_id, dataset_id=dataset.id, parameters={}
    )
    session.add(report)
    session.flush()
    generated = run_local_analyst(analysis_input(session, report, dataset))
    report.status, report.ai_response, report.completed_at = ReportStatus.DONE, generated.document, utcnow()
    report.model, report.provider, report.prompt_version = (
        generated.model,
        generated.provider,
        prompt.PROMPT_VERSION,
    )
    session.add(
        ReportVersion(
            report_id=report.id,
            version=1,
            ai_response=generated.document,
            model=generated.model,
            provider=generated.provider,
            prompt_version=prompt.PROMPT_VERSION,
        )
    )
    session.flush()
    return report


# --- email ---------------------------------------------------------------------------------


def request_email(
    session: Session, caller: Caller, report_id: Any, to: Any, subject: Any, message: Any
) -> Job:
    report = get_report(session, caller, report_id)
    if report_status(report, job_of(session, report.job_id)).status != ReportStatus.DONE:
        raise Conflict("O relatório ainda não está pronto para envio.", "report_not_ready")
    if to is not None and not isinstance(to, str):
        raise Invalid("to (email) must be a string", "to_invalid")
    recipient = (to or "").strip() or caller.email
    if recipient.lower() != caller.email.lower():
        raise Forbidden(
            "Por segurança, o relatório só pode ser enviado para o seu próprio email.",
            "recipient_not_allowed",
        )
    subject = (subject if isinstance(subject, str) and subject.strip() else "Seu relatório").strip()[:200]
    message = (message if isinstance(message, str) else "Segue o seu relatório.").strip()[:2000]
    job, _ = enqueue(
        session,
        EMAIL_KIND,
        {"report_id": report.id, "to": caller.email, "subject": subject, "message": message},
        company_id=caller.company_id,
        requested_by=caller.user_id,
    )
    return job


def report_for_email(session: Session, company_id: str | None, report_id: str) -> Report:
    report = session.get(Report, report_id)
    if report is None or report.company_id != company_id:
        raise PermanentJobError("O relatório não existe mais.", "report_not_found")
    if report.status != ReportStatus.DONE or not report.ai_response:
        raise PermanentJobError("O relatório não está pronto.", "report_not_ready")
    return report


def email_context(report: Report, filename: str | None, message: str) -> dict[str, Any]:
    document = report.ai_response or {}
    return {
        "message": message,
        "title": filename or "Relatório",
        "summary": document.get("summary") or "",
        "insights": [i.get("text", "") for i in document.get("insights") or []],
        "kpis": [
            {"label": k.get("label", ""), "value": _display(k.get("value")), "unit": k.get("unit") or ""}
            for k in document.get("kpis") or []
        ],
        "charts": [
            {"title": c.get("title", ""), "columns": c.get("columns") or [], "rows": c.get("data_rows") or []}
            for c in document.get("charts") or []
        ],
        "warnings": (document.get("meta") or {}).get("warnings") or [],
        "link": f"{runtime.settings().frontend_url}/reports/{report.id}",
    }


def _display(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".replace(",", "§").replace(".", ",").replace("§", ".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace(",", ".")
    return "" if value is None else str(value)


def mark_emailed(session: Session, report: Report) -> None:
    report.sent_via_email = True
    report.last_emailed_at = utcnow()
    session.flush()


def dataset_id_of(report_id: str) -> Select[str]:
    return select(Report.dataset_id).where(Report.id == report_id)


# --- business profile ----------------------------------------------------------------------

PROFILE_FIELDS = ("niche_bussiness", "goal", "analysis_period", "info_priority", "best_data_format")


def profile_dict(profile: BusinessProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in PROFILE_FIELDS}


def get_profile(session: Session, caller: Caller) -> BusinessProfile | None:
    return session.scalars(
        select(BusinessProfile).where(
            BusinessProfile.owner_id == caller.user_id, BusinessProfile.company_id == caller.company_id
        )
    ).first()


def save_profile(session: Session, caller: Caller, values: dict[str, Any]) -> tuple[BusinessProfile, bool]:
    """Upsert the caller's one profile. Returns (profile, created)."""
    if all(values.get(name) in (None, "", [], {}) for name in PROFILE_FIELDS):
        raise Invalid("Payload inválido", "empty_profile")
    session.execute(
        select(func.pg_advisory_xact_lock(func.hashtext(f"valorize:business-profile:{caller.user_id}")))
    )
    profile = get_profile(session, caller)
    created = profile is None
    if profile is None:
        profile = BusinessProfile(company_id=caller.company_id, owner_id=caller.user_id)
        session.add(profile)
    for name in PROFILE_FIELDS:
        setattr(profile, name, values.get(name))
    profile.updated_at = utcnow()
    session.flush()
    return profile, created


# --- beta leads ----------------------------------------------------------------------------

BETA_RATE_PER_HOUR = 20


def add_beta_lead(session: Session, name: str, email: str, client_ip: str | None) -> None:
    """Store a lead once per address; a repeat answers the same (no existence leak)."""
    if client_ip:
        _rate_limit(f"valorize:beta-leads:{client_ip}", BETA_RATE_PER_HOUR, 3600)
    existing = session.scalar(select(BetaLead.id).where(BetaLead.email == email))
    if existing is not None:
        return
    try:
        with session.begin_nested():
            session.add(BetaLead(name=name, email=email))
            session.flush()
    except IntegrityError:
        pass  # a concurrent request stored the same address


def _rate_limit(key: str, limit: int, window: int) -> None:
    try:
        with runtime.redis().pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
            count = int(pipe.execute()[0])
    except RedisError:
        return  # fail open: a lead is better than an error
    if count > limit:
        raise RateLimited("Muitas tentativas: tente de novo mais tarde.", window)


def body_size(value: Any) -> int:
    return len(json.dumps(value, default=str))
