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

Welcome emails go in batches of EMAIL_BATCH_SIZE: one transaction claims the whole batch (set-based
statements), one SMTP connection carries it, and each send is settled the moment it leaves (one
statement, asynchronous commit; see `_settlements`), so a crash re-sends at most the one message
in flight. Claiming a batch at once is safe: a claimed send that never left is sent by the re-run,
once.

Nothing here waits for the per-company rate limit: a send that finds the window used up raises
`RateLimited` (what already left stays recorded) and the job layer defers the job until the window
turns.
"""

from __future__ import annotations

import hashlib
import logging
import math
import queue
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, cast

from sqlalchemy import Update, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app import db, runtime
from app.config import ConfigError
from app.errors import RateLimited
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


def _settlement(record_id: str, error: SendError | None) -> Update:
    """The statement recording the outcome of a claimed send."""
    values: dict[str, Any] = (
        {"status": EmailStatus.SENT, "sent_at": func.now(), "error": None, "transient": False}
        if error is None
        else {"status": EmailStatus.FAILED, "error": str(error)[:2000], "transient": error.transient}
    )
    return update(SentEmail).where(SentEmail.id == record_id).values(**values)


class _Settler:
    """Settles a batch's sends from a thread of its own, on a connection of its own, while the
    next message is on the wire: the SMTP conversation never waits for Postgres. Whatever is
    queued when the thread gets to it is written together (one UPDATE for the sent ones), so
    under load a batch costs a few statements rather than one per message.

    A settlement is queued the moment the server accepted the message and written within about
    one message's time; a worker killed in between leaves that send `sending`, and the re-run
    sends it again with the same Message-ID (at least once, never reported lost). `close()`
    writes everything still queued, even when the batch failed, and raises what the thread hit."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, SendError | None] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="email-settler", daemon=True)
        self._thread.start()

    def __enter__(self) -> _Settler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, record_id: str, error: SendError | None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((record_id, error))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        done = False
        try:
            with db.engine().connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                while not done:
                    items = [self._queue.get()]
                    while not self._queue.empty():
                        items.append(self._queue.get())
                    done = None in items
                    outcomes = [item for item in items if item is not None]
                    sent = [record_id for record_id, error in outcomes if error is None]
                    if sent:
                        conn.exec_driver_sql(_SETTLE_SENT, {"ids": sent})
                    for record_id, error in outcomes:
                        if error is not None:
                            conn.execute(_settlement(record_id, error))
        except Exception as exc:  # raised to the sender by its next call or by close()
            self._error = exc
            while not done:  # wait for close(); nothing more is written
                done = self._queue.get() is None


# The hot statement (one per message, or per few under load), kept as plain SQL: building and
# compiling a SQLAlchemy UPDATE each time costs more CPU than the round trip itself.
_SETTLE_SENT = (
    f"UPDATE {SentEmail.__tablename__} SET status = '{EmailStatus.SENT}', sent_at = now(), "
    "error = NULL, transient = false WHERE id = ANY(%(ids)s)"
)


def _rate_limited(retry_after: float) -> RateLimited:
    return RateLimited(
        "The company's email rate limit is used up for now; the rest is sent when its window turns",
        math.ceil(retry_after),
        code="EMAIL_RATE_LIMITED",
    )


def _admit_one(company_id: str | None) -> None:
    """Take the company's rate-limit slot for one send, or raise RateLimited (nothing waits)."""
    if company_id is None:
        return
    grant = ratelimit.take(company_id, 1)
    if not grant.granted:
        raise _rate_limited(grant.retry_after)


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
    Never raises for delivery problems: the outcome says what happened. Raises RateLimited, with
    nothing claimed or sent, when the company's window is used up (a job defers on it; nothing
    waits). A duplicate takes no slot.
    """
    to = to.strip()
    rendered = render(template, context, locale)  # a template error is a bug: raise before claiming
    own = transport is None
    # A missing SMTP_URL fails here, before the claim; the transport connects only on its first send.
    active = transport or open_transport()
    try:
        record_id, claimed = _claim_send(
            to, template, company_id, user_id, run_id, lambda: _admit_one(company_id if rate_limit else None)
        )
    except RateLimited:
        if own:
            active.close()
        raise
    if not claimed:
        if own:
            active.close()
        delivered = (
            session.scalar(select(SentEmail.status).where(SentEmail.id == record_id)) == EmailStatus.SENT
        )
        return SendOutcome("duplicate", record_id=record_id, delivered=delivered)
    message_id = stable_message_id(run_id, template, to) if run_id is not None else None
    message = build_message(to, rendered.subject, rendered.text, rendered.html, message_id)
    try:
        error = deliver(active, message)
    finally:
        if own:
            active.close()
    with db.engine().begin() as conn:
        conn.execute(_settlement(record_id, error))
    log.info(
        "email sent" if error is None else "email failed",
        extra={"template": template, "record_id": record_id, "error": str(error) if error else None},
    )
    if error is None:
        return SendOutcome(EmailStatus.SENT, record_id=record_id)
    return SendOutcome(EmailStatus.FAILED, str(error), error.transient, record_id)


def _claim_send(
    to: str,
    template: str,
    company_id: str | None,
    user_id: str | None,
    run_id: str | None,
    admit: Callable[[], None],
) -> tuple[str, bool]:
    """Write the `sending` record (committed at once): (record id, True). (id, False) when this run
    already settled this send. A `sending` record left by an interrupted attempt of the same run,
    or a transient failure, is taken over: the send goes out again (same Message-ID). `admit()` runs
    before a claim commits; when it raises (the rate limit), nothing is written."""
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
            admit()
            conn.execute(stmt)
        return record_id, True
    stmt = stmt.on_conflict_do_nothing(
        index_elements=["run_id", "template", "to_email"], index_where=SentEmail.run_id.is_not(None)
    )
    same_send = (SentEmail.run_id == run_id, SentEmail.template == template, SentEmail.to_email == to)
    with db.engine().begin() as conn:
        if conn.execute(stmt.returning(SentEmail.id)).scalar() is not None:
            admit()
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
            admit()
            return retaken, True
        return conn.execute(select(SentEmail.id).where(*same_send)).scalar_one(), False


# --- welcome / invite emails ---------------------------------------------------------------

# user ids -> each one's set-password link, written in the caller's session (the claim's
# transaction). The flow that owns invites passes it, so this module knows nothing of tokens.
InviteLinks = Callable[[Session, list[str]], dict[str, str]]


@dataclass
class WelcomeResult:
    user_id: str
    success: bool
    error: str | None = None
    code: str | None = None  # NOT_FOUND | INACTIVE | WELCOME_EMAIL_LIMIT | DELIVERY_FAILED
    transient: bool = False
    already_sent: bool = False


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


# Per-user locks, taken in key order (two batches sharing users cannot deadlock).
_LOCK_USERS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def _claim_welcomes(
    recipients: list[_Recipient], run_id: str, invite_links: InviteLinks
) -> tuple[dict[str, _Claim | WelcomeResult], RateLimited | None]:
    """One transaction for a batch, under its users' locks: skip what this run already did, enforce
    the 3-per-user limit, take rate-limit slots for the rest, then write their `sending` records
    and one-time tokens, committed together. Users the window had no room for get nothing (they
    are claimed by the run after the deferral); the RateLimited returned says when."""
    outcomes: dict[str, _Claim | WelcomeResult] = {}
    with db.session_scope() as session:
        session.execute(_LOCK_USERS, {"keys": sorted({_advisory_key(r.id) for r in recipients})})
        emails = {r.email for r in recipients}
        # One read: this run's records of the batch, and every welcome record of its users.
        rows = session.scalars(
            select(SentEmail).where(
                SentEmail.template == WELCOME,
                SentEmail.user_id.in_([r.id for r in recipients])
                | ((SentEmail.run_id == run_id) & SentEmail.to_email.in_(emails)),
            )
        ).all()
        existing = {row.to_email: row for row in rows if row.run_id == run_id and row.to_email in emails}
        mine = {row.id for row in existing.values()}
        earlier = Counter(
            row.user_id
            for row in rows
            if row.id not in mine and row.status in (EmailStatus.SENT, EmailStatus.SENDING)
        )
        new_rows: list[dict[str, Any]] = []
        wanted: list[_Recipient] = []
        for recipient in recipients:
            row = existing.get(recipient.email)
            decided = _decided(recipient, row, earlier.get(recipient.id, 0))
            if decided is None:
                wanted.append(recipient)
                continue
            outcomes[recipient.id] = decided
            if decided.code == "WELCOME_EMAIL_LIMIT" and row is None:
                new_rows.append(_welcome_row(recipient, run_id, EmailStatus.SKIPPED, decided.error))
            elif decided.code == "WELCOME_EMAIL_LIMIT" and row is not None:
                row.status, row.error, row.transient = EmailStatus.SKIPPED, decided.error, False
        admitted, limited = _admit(wanted)
        claims: dict[str, str] = {}
        for recipient in admitted:
            row = existing.get(recipient.email)
            if row is None:
                new_rows.append(_welcome_row(recipient, run_id, EmailStatus.SENDING, None))
                claims[recipient.id] = new_rows[-1]["id"]
            else:  # an interrupted send or a transient failure of an earlier attempt of this run
                row.status, row.error, row.attempts = EmailStatus.SENDING, None, row.attempts + 1
                claims[recipient.id] = row.id
        if new_rows:
            session.execute(insert(SentEmail), new_rows)
        links = invite_links(session, list(claims)) if claims else {}
        session.flush()
    outcomes.update({user_id: _Claim(record_id, links[user_id]) for user_id, record_id in claims.items()})
    return outcomes, limited


def _decided(recipient: _Recipient, row: SentEmail | None, sent_before: int) -> WelcomeResult | None:
    """The result of a user this run need not (or may not) email; None when the email must go."""
    if row is not None:
        if row.status == EmailStatus.SENT:
            return WelcomeResult(recipient.id, True, already_sent=True)
        # `sending`: an earlier attempt died mid-send; it goes out again (same Message-ID).
        if row.status != EmailStatus.SENDING and (row.status == EmailStatus.SKIPPED or not row.transient):
            code = "WELCOME_EMAIL_LIMIT" if row.status == EmailStatus.SKIPPED else "DELIVERY_FAILED"
            return WelcomeResult(recipient.id, False, row.error, code)
    if sent_before >= MAX_WELCOME_EMAILS:
        message = f"Welcome email limit reached: at most {MAX_WELCOME_EMAILS} per user"
        return WelcomeResult(recipient.id, False, message, "WELCOME_EMAIL_LIMIT")
    return None


def _admit(wanted: list[_Recipient]) -> tuple[list[_Recipient], RateLimited | None]:
    """The recipients their companies' rate-limit windows have room for (in order), and the
    RateLimited to stop with when some had none."""
    by_company: dict[str, list[_Recipient]] = defaultdict(list)
    for recipient in wanted:
        by_company[recipient.company_id].append(recipient)
    admitted: set[str] = set()
    retry_after = 0.0
    for company_id, members in by_company.items():
        grant = ratelimit.take(company_id, len(members))
        admitted.update(r.id for r in members[: grant.granted])
        retry_after = max(retry_after, grant.retry_after)
    return [r for r in wanted if r.id in admitted], _rate_limited(retry_after) if retry_after else None


def _welcome_row(recipient: _Recipient, run_id: str, status: str, error: str | None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "company_id": recipient.company_id,
        "user_id": recipient.id,
        "to_email": recipient.email,
        "template": WELCOME,
        "run_id": run_id,
        "status": status,
        "error": error,
    }


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
    invite_links: InviteLinks,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[WelcomeResult]:
    """Invite each user (a one-time set-password link from `invite_links`), in batches of
    EMAIL_BATCH_SIZE: per batch one transaction claims the sends and writes the tokens, one SMTP
    connection carries the messages, and each send is settled as it leaves. Safe to re-run with
    the same `run_id`.

    When the company's rate-limit window is used up, the batch sends what the window allowed
    (recorded, so never sent again by this run) and RateLimited is raised: the caller defers and a
    later run with the same `run_id` carries on where this one stopped. Nothing waits here."""
    settings = runtime.settings()
    unique_ids = list(dict.fromkeys(user_ids))
    recipients = _load_recipients(session, company_id, unique_ids)
    results: list[WelcomeResult] = []
    link_hours = settings.password_setup_token_ttl_hours
    for batch in _chunks(unique_ids, settings.email_batch_size):
        outcomes: dict[str, _Claim | WelcomeResult] = {}
        found: list[_Recipient] = []
        for user_id in batch:
            recipient = recipients.get(user_id)
            if recipient is None:
                outcomes[user_id] = WelcomeResult(user_id, False, "User not found", "NOT_FOUND")
            elif not recipient.is_active:
                outcomes[user_id] = WelcomeResult(user_id, False, "User is deactivated", "INACTIVE")
            else:
                found.append(recipient)
        # A missing SMTP_URL fails here, before anything is claimed (the connection opens lazily).
        with open_transport() as transport:
            limited = None
            if found:
                claimed, limited = _claim_welcomes(found, run_id, invite_links)
                outcomes.update(claimed)
            to_send = [(r, c) for r in found if isinstance(c := outcomes.get(r.id), _Claim)]
            if to_send:
                with _Settler() as settle:
                    for recipient, claim in to_send:
                        outcomes[recipient.id] = _send_welcome(
                            recipient, claim, run_id, transport, settle, link_hours, sleep
                        )
        if limited is not None:
            raise limited
        results.extend(cast(WelcomeResult, outcomes[user_id]) for user_id in batch)
        if progress is not None:
            progress(len(results) * 100 // max(1, len(unique_ids)))
    return results


def _send_welcome(
    recipient: _Recipient,
    claim: _Claim,
    run_id: str,
    transport: Transport,
    settle: Callable[[str, SendError | None], None],
    link_hours: int,
    sleep: Callable[[float], None],
) -> WelcomeResult:
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
    settle(claim.record_id, error)
    if error is None:
        return WelcomeResult(recipient.id, True)
    log.warning("welcome email failed", extra={"user_id": recipient.id, "error": str(error)})
    return WelcomeResult(
        recipient.id, False, f"Email could not be delivered: {error}", "DELIVERY_FAILED", error.transient
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
