"""Domain errors: what services raise when a request or a job cannot go on.

They speak the domain (not found, conflict, forbidden, invalid…), never HTTP. `app/api.py` maps
each class to a status and the error shape in one place; the job runner fails a job at once on a
permanent one instead of retrying it like a crash. `code` is the machine code clients switch on;
`message` is a sentence a person can act on.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class. `permanent`: retrying the same input cannot succeed (a job fails at once)."""

    default_code = "ERROR"
    permanent = True

    def __init__(self, message: str, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details


class Invalid(DomainError):
    """The input breaks a rule (format, range, reference to something that isn't there)."""

    default_code = "VALIDATION_ERROR"


class NotFound(DomainError):
    """The thing does not exist, or not for this caller's company or owner."""

    default_code = "NOT_FOUND"


class Conflict(DomainError):
    """The thing exists already, or is in a state that forbids the change."""

    default_code = "CONFLICT"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    default_code = "FORBIDDEN"


class Unauthenticated(DomainError):
    """No valid identity (bad credentials, invalid or expired token)."""

    default_code = "UNAUTHORIZED"


class TooLarge(DomainError):
    """The input is larger than the configured limit."""

    default_code = "PAYLOAD_TOO_LARGE"


class RateLimited(DomainError):
    """Too many attempts; try again after `retry_after` seconds."""

    default_code = "RATE_LIMITED"
    permanent = False

    def __init__(self, message: str, retry_after: int, code: str | None = None, details: Any = None) -> None:
        super().__init__(message, code, details)
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """A dependency is down (database, Redis, SMTP, a provider); the same call may work later."""

    default_code = "UNAVAILABLE"
    permanent = False

    def __init__(
        self, message: str, retry_after: int = 5, code: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message, code, details)
        self.retry_after = max(1, int(retry_after))


class PermanentJobError(DomainError):
    """Raised by a task when retrying cannot help (bad input, missing data): the job fails at once."""

    default_code = "JOB_FAILED"
