"""Report jobs: parse a dataset, generate a report, email a report.

Thin: the services do the work. What the tasks add is the failure path. The job's transaction is
rolled back on an error, so the error a person reads (`error_code`, `error_message`) is written in
a transaction of its own before the exception goes back to the kernel. The status a client sees
is derived from the job row too (`service.dataset_status` / `report_status`), so even a failure
that never reaches this code (a worker killed for good, an operator cancel) shows as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.errors import DomainError, PermanentJobError, Unavailable
from app.features.emails import service as emails
from app.features.emails.tasks import deferred_when_rate_limited
from app.features.emails.templates import REPORT
from app.features.reports import service
from app.features.reports.llm import LLMError
from app.features.reports.models import Dataset
from app.features.reports.output_schema import InvalidOutput
from app.features.reports.parsing import ParseError
from app.jobs import JobContext, task
from app.jobs.models import Job
from app.logging import job_log_context

log = logging.getLogger(__name__)


class InvalidAIOutput(Exception):
    """The model's answer was not a valid report even after the repair call: retried as a job."""


def _is_last_attempt(ctx: JobContext) -> bool:
    job = ctx.session.get(Job, ctx.job_id)
    return job is None or ctx.attempt >= job.max_attempts


def _record(ctx: JobContext, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run `write(session, *args)` in a fresh transaction of the job's session and commit it."""
    ctx.session.rollback()
    write(ctx.session, *args, **kwargs)
    ctx.session.commit()


@task(service.PARSE_KIND, queue="reports", max_attempts=3, timeout_seconds=900)
def parse_dataset(ctx: JobContext, dataset_id: str) -> dict[str, Any]:
    with job_log_context(dataset_id=dataset_id):
        try:
            result = service.parse(ctx.session, dataset_id, ctx.job_id, ctx.progress)
        except ParseError as exc:
            log.info("dataset invalid", extra={"error_code": exc.code})
            _record(ctx, service.record_parse_failure, dataset_id, ctx.job_id, exc.code, exc.message)
            raise PermanentJobError(exc.message, exc.code) from None
        except Exception:
            if _is_last_attempt(ctx):
                message = "Não foi possível ler o arquivo por um erro interno. Envie-o de novo mais tarde."
                _record(ctx, service.record_parse_failure, dataset_id, ctx.job_id, "parse_error", message)
            raise
        log.info("dataset parsed", extra={"row_count": result.get("row_count")})
        return result


PARSE_WAIT_SECONDS = 2


@task(service.GENERATE_KIND, queue="reports", max_attempts=3, timeout_seconds=900)
def generate_report(ctx: JobContext, report_id: str) -> dict[str, Any]:
    dataset_id = ctx.session.scalar(service.dataset_id_of(report_id))
    with job_log_context(report_id=report_id, dataset_id=dataset_id):
        try:
            return service.generate(ctx.session, report_id, ctx.job_id, ctx.attempt, ctx.progress)
        except service.DatasetStillParsing:
            ctx.defer(PARSE_WAIT_SECONDS, "waiting for the dataset to be read")
        except LLMError as exc:
            final = not exc.transient or _is_last_attempt(ctx)
            _fail(ctx, report_id, exc.code, exc.message, final)
            if not exc.transient:
                raise PermanentJobError(exc.message, exc.code) from None
            raise Unavailable(exc.message, code=exc.code) from None
        except InvalidOutput as exc:
            message = (
                "A IA devolveu uma resposta fora do formato do relatório, mesmo após pedir a correção "
                f"({exc.errors[0]}). Regenere o relatório; se persistir, revise o mapeamento das colunas."
            )
            _fail(ctx, report_id, "invalid_ai_output", message, _is_last_attempt(ctx))
            raise InvalidAIOutput(message) from None
        except DomainError as exc:
            _fail(ctx, report_id, exc.code, exc.message, exc.permanent or _is_last_attempt(ctx))
            raise
        except Exception:
            if _is_last_attempt(ctx):
                _fail(
                    ctx,
                    report_id,
                    "internal_error",
                    "A geração falhou por um erro interno. Regenere o relatório em alguns minutos.",
                    True,
                )
            raise


def _fail(ctx: JobContext, report_id: str, code: str, message: str, final: bool) -> None:
    log.warning("report attempt failed", extra={"error_code": code, "final": final, "attempt": ctx.attempt})
    _record(ctx, service.record_report_error, report_id, ctx.job_id, ctx.attempt, code, message, final=final)


@task(service.EMAIL_KIND, queue="emails", max_attempts=3, timeout_seconds=300)
def send_report_email(ctx: JobContext, report_id: str, to: str, subject: str, message: str) -> dict[str, Any]:
    with job_log_context(report_id=report_id):
        session: Session = ctx.session
        report = service.report_for_email(session, ctx.company_id, report_id)
        dataset = session.get(Dataset, report.dataset_id)
        context = service.email_context(report, dataset.filename if dataset else None, message)
        # At least once: a re-run after a crash mid-send sends again with the same Message-ID; a
        # send this job already settled is not repeated (the email service keys it by job id).
        with deferred_when_rate_limited(ctx):
            outcome = emails.send_email(
                session,
                to,
                REPORT,
                {**context, "subject": subject},
                company_id=report.company_id,
                user_id=report.owner_id,
                run_id=ctx.job_id,
            )
        if outcome.status == "failed" and outcome.transient:
            raise RuntimeError(f"transient SMTP failure, retrying: {outcome.error}")
        if not (outcome.sent or outcome.delivered):
            raise PermanentJobError(
                f"O email não pôde ser entregue ({outcome.error or outcome.status}). Tente enviar de novo.",
                "email_failed",
            )
        service.mark_emailed(session, report)
        return {"report_id": report_id, "status": "sent"}
