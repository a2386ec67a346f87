"""Where messages go, from SMTP_URL:

- `smtp://user:pass@host:port` plain SMTP (add `?starttls=true` to upgrade with STARTTLS);
- `smtps://user:pass@host:port` SMTP over TLS (implicit TLS, port 465 by default);
- `sink` or `sink:///some/dir` (the dev default): each message is written as an `.eml` file under
  `.local/mail/` (or the directory given), where it can be opened with any mail client.

One `Transport` is one connection, reused for a batch of messages. Errors are classified: SMTP
4xx replies and connection problems are transient (worth retrying), 5xx replies are permanent.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from app.config import ROOT

DEFAULT_SINK_DIR = ROOT / ".local" / "mail"
_TIMEOUT_SECONDS = 30


class SendError(Exception):
    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str  # smtp | smtps | sink
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sink_dir: Path = DEFAULT_SINK_DIR


def parse_smtp_url(url: str) -> SmtpTarget:
    if url == "sink" or url.startswith("sink:"):
        path = url.split("://", 1)[1] if "://" in url else ""
        return SmtpTarget("sink", sink_dir=Path(path) if path else DEFAULT_SINK_DIR)
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("SMTP_URL must be smtp://, smtps:// or sink")
    query = parse_qs(parts.query)
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname or "localhost",
        port=parts.port or (465 if parts.scheme == "smtps" else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        starttls=query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
    )


def classify(exc: BaseException) -> SendError:
    """Turn an smtplib/socket error into a SendError that says whether retrying can help."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        return SendError(f"{code} {text}", transient=400 <= code < 500, code=code)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc)
        code = int(exc.smtp_code)
        return SendError(f"{code} {text}", transient=code < 500 or code >= 600, code=code)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError, TimeoutError)):
        return SendError(f"connection problem: {exc}", transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return SendError(str(exc), transient=False)
    return SendError(f"{type(exc).__name__}: {exc}", transient=False)


class Transport:
    """A lazily opened connection: `send()` connects on first use and reconnects after errors."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target
        self._smtp: smtplib.SMTP | None = None
        self.connections_opened = 0

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        if target.scheme == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host, target.port, timeout=_TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=_TIMEOUT_SECONDS)
            if target.starttls:
                smtp.starttls(context=ssl.create_default_context())
        if target.username:
            smtp.login(target.username, target.password or "")
        self.connections_opened += 1
        return smtp

    def send(self, message: EmailMessage) -> None:
        """Deliver one message or raise SendError (transient or permanent)."""
        if self.target.scheme == "sink":
            self._write_to_sink(message)
            return
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except Exception as exc:
            self._drop()  # after any error the next message starts on a fresh connection
            raise classify(exc) from exc

    def _write_to_sink(self, message: EmailMessage) -> None:
        directory = self.target.sink_dir
        try:
            directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
            (directory / name).write_bytes(bytes(message))
        except OSError as exc:
            raise SendError(f"cannot write to the mail sink: {exc}", transient=True) from exc

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
