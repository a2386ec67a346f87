"""The email service: render a template, send it over SMTP (or the dev sink), record the outcome.

Sending is an effect outside the database, so its records are NOT written in the caller's
transaction: each send is claimed (a `sending` row) and then settled (`sent`/`failed`) in short
transactions of their own, committed at once. A job that crashes and re-runs therefore sees what
already left. With a `run_id` (the job id), the unique (run_id, template, to_email) index makes
"one person, one email per run" a database guarantee.

A `sending` row found by a re-run means the previous run died between claiming the send and
recording the outcome: we cannot know whether the message left. We send it again (at least once),
with the same `Message-ID`, derived from the send's identity (run, template, recipient), so mail
clients fold the rare duplicate of a message the server had accepted just before the crash. A
message recorded `sent` is never sent again, and one that never left is never reported sent.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app import db, runtime
from app.config import ConfigError
from app.features.emails import ratelimit
from app.features.emails.models import EmailStatus, SentEmail
from app.features.emails.templates import WELCOME, render
from app.features.emails.transport import SendError, Transport, parse_smtp_url
from app.features.identity.models import Company, User
from app.ids import new_id

log = logging.getLogger(__name__)

MAX_WELCOME_EMAILS = 3
_SEND_TRIES = 3  # in-place retries of a transient SMTP error (with a fresh connection each time)
_RETRY_PAUSE_SECONDS = 0.2


# --- messages ------------------------------------------------------------------------------


def _sender_domain() -> str | None:
    return runtime.settings().email_from.rpartition("@")[2].strip("> ") or None


def stable_message_id(*identity: str) -> str:
    """A Message-ID that is the same every time the same send is attempted (its idempotency
    handle), so a resend after an interrupted attempt is recognisably the same message."""
    digest = hashlib.sha256("\x1f".join(identity).encode()).hexdigest()[:40]
    return f"<{digest}@{_sender_domain() or 'valorize.local'}>"


def build_message(to: str, subject: str, text: str, html: str, message_id: str | None = None) -> EmailMessage:
    settings = runtime.settings()
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain=_sender_domain())
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def open_transport() -> Transport:
    """A connection to the configured SMTP_URL (lazy: it connects on the first send).

    Outside dev/test SMTP_URL has no default and only processes that send mail need it: without
    it this raises ConfigError naming the variable, before anything is claimed or sent."""
    url = runtime.settings().smtp_url
    if url is None:
        raise ConfigError(
            'Environment variable "SMTP_URL" is not set: this process sends email '
            "(set it to an smtp:// or smtps:// URL)"
        )
    return Transport(parse_smtp_url(url))


def deliver(
    transport: Transport, message: EmailMessage, sleep: Callable[[float], None] = time.sleep
) -> SendError | None:
    """Send with in-place retries of transient errors; the last error, or None when delivered."""
    for attempt in range(_SEND_TRIES):
        try:
            transport.send(message)
            return None
        except SendError as exc:
            if not exc.transient or attempt == _SEND_TRIES - 1:
                return exc
            sleep(_RETRY_PAUSE_SECONDS * 3**attempt)
    return None  # unreachable


# --- records -------------------------------------------------------------------------------


def _settle(record_id: str, error: SendError | None) -> None:
    """Record the outcome of a claimed send, in its own committed transaction."""
    values: dict[str, Any] = (
        {"status": EmailStatus.SENT, "sent_at": func.now(), "error": None, "transient": False}
        if error is None
        else {"status": EmailStatus.FAILED, "error": str(error)[:2000], "transient": error.transient}
    )
    with db.engine().begin() as conn:
        conn.execute(update(SentEmail).where(SentEmail.id == record_id).values(**values))


@dataclass
class SendOutcome:
    status: str  # sent | failed | skipped | duplicate
    error: str | None = None
    transient: bool = False
    record_id: str | None = None
    delivered: bool = False  # for a duplicate: an earlier attempt of the same run delivered it

    @property
    def sent(self) -> bool:
        return self.status == EmailStatus.SENT


def send_email(
    session: Session,
    to: str,
    template: str,
    context: dict[str, Any],
    *,
    company_id: str | None = None,
    user_id: str | None = None,
    run_id: str | None = None,
    locale: str | None = None,
    transport: Transport | None = None,
    rate_limit: bool = True,
) -> SendOutcome:
    """Render `template` with `context`, send it to `to` and record it in `sent_emails`.

    `session` is the caller's and is only read (the record is committed on its own, see the
    module docstring). With `run_id`, a second call for the same (run, template, to) does not send
    again once the first settled and answers `duplicate`; after an interrupted attempt it sends
    again with the same Message-ID. `transport` lets a caller reuse one connection for a batch.
    Never raises for delivery problems: the outcome says what happened.
    """
    to = to.strip()
    rendered = render(template, context, locale)  # a template error is a bug: raise before claiming
    own = transport is None
    # A missing SMTP_URL fails here, before the claim; the transport connects only on its first send.
    active = transport or open_transport()
    record_id, claimed = _claim_send(to, template, company_id, user_id, run_id)
    if not claimed:
        if own:
            active.close()
        delivered = (
            session.scalar(select(SentEmail.status).where(SentEmail.id == record_id)) == EmailStatus.SENT
        )
        return SendOutcome("duplicate", record_id=record_id, delivered=delivered)
    if rate_limit and company_id:
        ratelimit.acquire(company_id, runtime.settings().email_rate_per_minute)
    message_id = stable_message_id(run_id, template, to) if run_id is not None else None
    message = build_message(to, rendered.subject, rendered.text, rendered.html, message_id)
    try:
        error = deliver(active, message)
    finally:
        if own:
            active.close()
    _settle(record_id, error)
    log.info(
        "email sent" if error is None else "email failed",
        extra={"template": template, "record_id": record_id, "error": str(error) if error else None},
    )
    if error is None:
        return SendOutcome(EmailStatus.SENT, record_id=record_id)
    return SendOutcome(EmailStatus.FAILED, str(error), error.transient, record_id)


def _claim_send(
    to: str, template: str, company_id: str | None, user_id: str | None, run_id: str | None
) -> tuple[str, bool]:
    """Write the `sending` record (committed at once): (record id, True). (id, False) when this run
    already settled this send. A `sending` record left by an interrupted attempt of the same run,
    or a transient failure, is taken over: the send goes out again (same Message-ID)."""
    record_id = new_id()
    stmt = pg_insert(SentEmail).values(
        id=record_id,
        company_id=company_id,
        user_id=user_id,
        to_email=to,
        template=template,
        run_id=run_id,
        status=EmailStatus.SENDING,
    )
    if run_id is None:  # no identity to dedupe on: a plain record
        with db.engine().begin() as conn:
            conn.execute(stmt)
        return record_id, True
    stmt = stmt.on_conflict_do_nothing(
        index_elements=["run_id", "template", "to_email"], index_where=SentEmail.run_id.is_not(None)
    )
    same_send = (SentEmail.run_id == run_id, SentEmail.template == template, SentEmail.to_email == to)
    with db.engine().begin() as conn:
        if conn.execute(stmt.returning(SentEmail.id)).scalar() is not None:
            return record_id, True
        # Only one attempt of a run sends at a time (the job's lock, or the caller's own lock).
        retaken = conn.execute(
            update(SentEmail)
            .where(
                *same_send,
                (SentEmail.status == EmailStatus.SENDING)
                | ((SentEmail.status == EmailStatus.FAILED) & SentEmail.transient),
            )
            .values(status=EmailStatus.SENDING, error=None, attempts=SentEmail.attempts + 1)
            .returning(SentEmail.id)
        ).scalar()
        if retaken is not None:
            return retaken, True
        return conn.execute(select(SentEmail.id).where(*same_send)).scalar_one(), False


# --- welcome / invite emails ---------------------------------------------------------------


@dataclass
class WelcomeResult:
    user_id: str
    success: bool
    error: str | None = None
    code: str | None = None  # NOT_FOUND | INACTIVE | WELCOME_EMAIL_LIMIT | DELIVERY_FAILED
    transient: bool = False
    already_sent: bool = False

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"userId": self.user_id, "success": self.success}
        if self.error:
            body["error"] = self.error
        if self.code:
            body["code"] = self.code
        return body


@dataclass
class _Recipient:
    id: str
    email: str
    name: str
    company_id: str
    company_name: str
    is_active: bool


@dataclass
class _Claim:
    record_id: str
    link: str  # the set-password page with the one-time token


def _advisory_key(user_id: str) -> int:
    key = (zlib.crc32(b"valorize-welcome") << 32) | zlib.crc32(user_id.encode())
    return key - (1 << 64) if key >= (1 << 63) else key


def _claim_welcome(recipient: _Recipient, run_id: str) -> _Claim | WelcomeResult:
    """Under a per-user lock: skip what this run already did, enforce the 3-per-user limit, then
    write the `sending` record and the one-time password token, committed together."""
    from app.features.auth.service import create_password_setup_token, password_page_url

    with db.session_scope() as session:
        session.execute(select(func.pg_advisory_xact_lock(_advisory_key(recipient.id))))
        existing = session.scalars(
            select(SentEmail).where(
                SentEmail.run_id == run_id,
                SentEmail.template == WELCOME,
                SentEmail.to_email == recipient.email,
            )
        ).first()
        if existing is not None:
            if existing.status == EmailStatus.SENT:
                return WelcomeResult(recipient.id, True, already_sent=True)
            # `sending`: an earlier attempt died mid-send; it goes out again (same Message-ID).
            if existing.status != EmailStatus.SENDING and (
                existing.status == EmailStatus.SKIPPED or not existing.transient
            ):
                code = "WELCOME_EMAIL_LIMIT" if existing.status == EmailStatus.SKIPPED else "DELIVERY_FAILED"
                return WelcomeResult(recipient.id, False, existing.error, code)
        sent_before = session.scalar(
            select(func.count())
            .select_from(SentEmail)
            .where(
                SentEmail.user_id == recipient.id,
                SentEmail.template == WELCOME,
                SentEmail.status.in_((EmailStatus.SENT, EmailStatus.SENDING)),
                SentEmail.id != (existing.id if existing is not None else ""),
            )
        )
        if (sent_before or 0) >= MAX_WELCOME_EMAILS:
            message = f"Welcome email limit reached: at most {MAX_WELCOME_EMAILS} per user"
            if existing is None:
                session.add(_welcome_row(recipient, run_id, EmailStatus.SKIPPED, message))
            else:
                existing.status, existing.error, existing.transient = EmailStatus.SKIPPED, message, False
            return WelcomeResult(recipient.id, False, message, "WELCOME_EMAIL_LIMIT")
        if existing is None:
            existing = _welcome_row(recipient, run_id, EmailStatus.SENDING, None)
            session.add(existing)
        else:  # an interrupted send or a transient failure of an earlier attempt of this run
            existing.status, existing.error, existing.attempts = (
                EmailStatus.SENDING,
                None,
                existing.attempts + 1,
            )
        user = session.get_one(User, recipient.id)
        token = create_password_setup_token(session, user)
        session.flush()
        return _Claim(existing.id, password_page_url(token))


def _welcome_row(recipient: _Recipient, run_id: str, status: str, error: str | None) -> SentEmail:
    return SentEmail(
        id=new_id(),
        company_id=recipient.company_id,
        user_id=recipient.id,
        to_email=recipient.email,
        template=WELCOME,
        run_id=run_id,
        status=status,
        error=error,
    )


def _load_recipients(session: Session, company_id: str | None, user_ids: list[str]) -> dict[str, _Recipient]:
    stmt = (
        select(User.id, User.email, User.name, User.company_id, Company.name, User.is_active)
        .join(Company, Company.id == User.company_id)
        .where(User.id.in_(user_ids))
    )
    if company_id is not None:
        stmt = stmt.where(User.company_id == company_id)
    return {row[0]: _Recipient(*row) for row in session.execute(stmt).tuples()}


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def send_welcome_emails(
    session: Session,
    company_id: str | None,
    user_ids: list[str],
    run_id: str,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[WelcomeResult]:
    """Invite each user (a one-time set-password link), in batches of EMAIL_BATCH_SIZE sharing one
    SMTP connection, under the company's rate limit. Safe to re-run with the same `run_id`."""
    settings = runtime.settings()
    unique_ids = list(dict.fromkeys(user_ids))
    recipients = _load_recipients(session, company_id, unique_ids)
    results: list[WelcomeResult] = []
    link_hours = settings.password_setup_token_ttl_hours
    for batch in _chunks(unique_ids, settings.email_batch_size):
        with open_transport() as transport:
            for user_id in batch:
                results.append(
                    _welcome_one(recipients.get(user_id), user_id, run_id, transport, link_hours, sleep)
                )
        if progress is not None:
            progress(len(results) * 100 // max(1, len(unique_ids)))
    return results


def _welcome_one(
    recipient: _Recipient | None,
    user_id: str,
    run_id: str,
    transport: Transport,
    link_hours: int,
    sleep: Callable[[float], None],
) -> WelcomeResult:
    if recipient is None:
        return WelcomeResult(user_id, False, "User not found", "NOT_FOUND")
    if not recipient.is_active:
        return WelcomeResult(user_id, False, "User is deactivated", "INACTIVE")
    claim = _claim_welcome(recipient, run_id)
    if isinstance(claim, WelcomeResult):
        return claim
    settings = runtime.settings()
    ratelimit.acquire(recipient.company_id, settings.email_rate_per_minute, sleep=sleep)
    rendered = render(
        WELCOME,
        {
            "name": recipient.name,
            "email": recipient.email,
            "company_name": recipient.company_name,
            "link": claim.link,
            "link_valid_hours": link_hours,
        },
    )
    message_id = stable_message_id(run_id, WELCOME, recipient.email)
    error = deliver(
        transport,
        build_message(recipient.email, rendered.subject, rendered.text, rendered.html, message_id),
        sleep,
    )
    _settle(claim.record_id, error)
    if error is None:
        return WelcomeResult(user_id, True)
    log.warning("welcome email failed", extra={"user_id": user_id, "error": str(error)})
    return WelcomeResult(
        user_id, False, f"Email could not be delivered: {error}", "DELIVERY_FAILED", error.transient
    )


def welcome_stats(session: Session, user_ids: list[str]) -> dict[str, tuple[int, datetime | None]]:
    """user id -> (welcome emails sent, when the last one was sent), for the users list."""
    rows = session.execute(
        select(SentEmail.user_id, func.count(), func.max(SentEmail.sent_at))
        .where(
            SentEmail.user_id.in_(user_ids),
            SentEmail.template == WELCOME,
            SentEmail.status == EmailStatus.SENT,
        )
        .group_by(SentEmail.user_id)
    ).tuples()
    return {user_id: (int(count), last) for user_id, count, last in rows if user_id is not None}


def bulk_response(results: list[WelcomeResult]) -> dict[str, Any]:
    """The body of POST /admin/users/send-welcome-emails-bulk (contract §7.3)."""
    sent = sum(1 for r in results if r.success)
    return {
        "message": f"Sent {sent} of {len(results)} emails",
        "results": [r.as_dict() for r in results],
        "summary": {"total": len(results), "sent": sent, "failed": len(results) - sent},
    }
