"""Settings from the environment.

`APP_ENV` picks a committed profile (`.env-dev`, `.env-homolog`, `.env-prod`) whose values fill in
whatever the real environment leaves unset; secrets never live in those files, they come from the
platform. A missing or malformed setting raises `ConfigError` naming the variable, and the entry
points turn that into a one-line message and a non-zero exit.

`load_settings` serves the app processes (web, worker, cron, scheduler); the release step (the
migrations) needs only the database and reads it with `load_database_url`. `SMTP_URL` is not needed
to start: outside dev/test it has no default, and a process that sends mail without it fails at
send time with a message naming it (`app.features.emails.service.open_transport`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from environs import Env, EnvError
from marshmallow.validate import OneOf, Range

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("dev", "homolog", "prod", "test")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    """`count` requests per `period` seconds: a burst of `count`, then one every period/count."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`10/15m`, `30/1m`, `5/s`, `100/1h`."""
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
            raise ValueError(f"{text!r} is not a rate like 10/15m (count/period, units s, m, h, d)")
        amount = int(match.group(2) or 1)
        return cls(int(match.group(1)), float(amount * _RATE_UNITS[match.group(3)]))


MIN_SECRET_BYTES = 32  # HS256 keys shorter than the hash output are brute-forceable offline


@dataclass(frozen=True)
class Settings:
    app_env: str
    database_url: str
    redis_url: str
    jwt_secret: str
    jwt_issuer: str
    access_token_ttl_seconds: int
    refresh_token_ttl_days: int
    refresh_reuse_grace_seconds: int
    password_setup_token_ttl_hours: int
    supabase_jwt_secret: str | None
    supabase_jwt_issuer: str | None
    supabase_jwt_audience: str | None
    rq_queues: tuple[str, ...]
    job_max_attempts: int
    job_retry_backoff_seconds: int
    job_timeout_seconds: int
    reconcile_grace_seconds: int
    sync_wait_seconds: float
    job_retention_days: int
    cron_run_retention_days: int
    log_level: str
    cors_origins: tuple[str, ...]
    db_pool_size: int
    metrics_token: str | None
    # Base URL of the web frontend, for links we hand out (password reset / invite pages).
    frontend_url: str = "http://localhost:5173"
    # CSV import and emails (issue 5).
    # smtp://user:pass@host:port, smtps://… (TLS), sink[:///dir] (dev: .eml files). None outside dev/test
    # when unset: only processes that send mail need it, and they say so when they try.
    smtp_url: str | None = "sink"
    email_from: str = "Valorize <no-reply@valorize.local>"
    email_rate_per_minute: int = 600  # per company and window (a fixed window counter in Redis)
    email_rate_window_seconds: int = 60  # the window; tests shorten it
    email_batch_size: int = 50  # messages per SMTP connection
    csv_max_rows: int = 50_000
    csv_max_bytes: int = 10 * 1024 * 1024  # decoded file size
    csv_sync_check_rows: int = 5_000  # larger previews are checked by a job
    import_send_invites: bool = True  # invite imported users when the request does not say
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto/-Host we trust
    # (Railway: 1). With 0, URLs we build (logo links) and logged client addresses are the socket's.
    trusted_proxy_hops: int = 0
    # The kernel pump (in every worker and in `cron.py serve`): publishes due retries and deferrals
    # every tick and reconciles once per interval (one process at a time, recorded in cron_runs).
    job_pump_interval_seconds: float = 1.0
    reconcile_interval_seconds: int = 60
    # Lifetime of the operator console's login cookie (/admin/rq: rq-dashboard and the schedule).
    ops_session_ttl_seconds: int = 1800
    # AI reports (issue 13). Without OPENAI_API_KEY a deterministic local analyst writes the reports.
    dataset_max_bytes: int = 20 * 1024 * 1024  # one uploaded CSV/XLSX, stored in Postgres
    dataset_max_rows: int = 200_000
    openai_api_key: str | None = None
    openai_base_url: str | None = None  # any OpenAI-compatible server (DeepSeek, a local gateway…)
    ai_model: str = "gpt-4o-mini"
    ai_timeout_seconds: float = 60.0
    ai_max_tokens: int = 4000
    ai_response_format: str = "json_object"  # json_object | json_schema | text
    # Trust and onboarding (issue 9).
    # The API's own public base URL: logo URLs and the set-password links in emails point here,
    # never at whatever Host header a request carried.
    public_api_url: str = "http://localhost:8000"
    api_docs_enabled: bool = True  # /docs and /openapi.json (off by default in homolog/prod)
    public_max_body_bytes: int = 64 * 1024  # bodies of routes anyone may call (login, refresh…)
    rate_limits_enabled: bool = True
    rate_limit_login_per_account: Rate = Rate(10, 900.0)
    rate_limit_login_per_address: Rate = Rate(30, 60.0)
    rate_limit_token_per_address: Rate = Rate(60, 60.0)
    rate_limit_jobs_per_company: Rate = Rate(120, 60.0)
    password_hash_concurrency: int = 2  # argon2 hashes (64 MiB each) at once per web process
    # Prize store (issue 14). One coin is worth COIN_VALUE_CENTS centavos (docs/store.md).
    coin_value_cents: int = 6
    store_cancel_window_hours: int = 72  # how long an employee may cancel a product redemption
    # Voucher provider: "tremendous" when TREMENDOUS_API_KEY is set, else the local demo adapter.
    voucher_provider: str = "local"
    tremendous_api_key: str | None = None
    tremendous_base_url: str = "https://testflight.tremendous.com/api/v2"
    tremendous_funding_source_id: str = "balance"
    tremendous_campaign_id: str | None = None
    tremendous_webhook_secret: str | None = None
    tremendous_timeout_seconds: float = 5.0
    voucher_reconcile_after_minutes: int = 30  # a sent voucher without a final event is checked after
    voucher_stuck_alert_hours: int = 24  # an unresolved voucher older than this is logged as an alert
    # Wallets per transaction of the weekly reset: bounds how long any wallet row stays locked.
    weekly_reset_chunk_size: int = 5_000

    @property
    def is_production(self) -> bool:
        return self.app_env in ("prod", "homolog")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from `environ` (default: the process environment) plus its profile file."""
    app_env, source = _environment(environ)
    settings = _with_environment(source, lambda env: _parse(env, app_env))
    if settings.is_production and settings.smtp_url is not None and settings.smtp_url.startswith("sink"):
        # The dev sink writes .eml files nobody reads: in homolog/prod, invites would vanish.
        raise ConfigError(
            'Environment variable "SMTP_URL" must be an smtp:// or smtps:// URL outside dev/test'
        )
    tremendous = settings.voucher_provider == "tremendous"
    if settings.is_production and tremendous and not settings.tremendous_webhook_secret:
        # Unsigned webhooks would let anyone fail (and refund) vouchers: refuse to start.
        raise ConfigError(
            'Environment variable "TREMENDOUS_WEBHOOK_SECRET" is required outside dev/test '
            "when the Tremendous provider is configured"
        )
    if settings.is_production and settings.jwt_secret == DEV_JWT_SECRET:
        raise ConfigError('Environment variable "JWT_SECRET" must be set to a real secret outside dev/test')
    if not settings.public_api_url:
        raise ConfigError(
            'Environment variable "PUBLIC_API_URL" is required outside dev/test '
            "(the API's public https:// base URL, for emailed links and logo URLs)"
        )
    if settings.is_production:
        for name, secret in (
            ("JWT_SECRET", settings.jwt_secret),
            ("SUPABASE_JWT_SECRET", settings.supabase_jwt_secret),
        ):
            if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f'Environment variable "{name}" must be at least {MIN_SECRET_BYTES} bytes '
                    "outside dev/test"
                )
    return settings


def load_database_url(environ: dict[str, str] | None = None) -> str:
    """DATABASE_URL alone (plus APP_ENV's profile): all the release step (migrations) needs."""
    _app_env, source = _environment(environ)
    return _with_environment(source, lambda env: _url(env, "DATABASE_URL", ("postgresql", "postgres")))


def variable_names() -> frozenset[str]:
    """Every environment variable `load_settings` reads (for the docs-vs-code check)."""
    placeholders = {"APP_ENV": "test", "DATABASE_URL": "postgresql://x@h/d", "REDIS_URL": "redis://h"}
    names: set[str] = {"APP_ENV"}

    def parse(env: Env) -> Settings:
        settings = _parse(env, "test")
        names.update(env.dump())
        return settings

    _with_environment(placeholders, parse)
    return frozenset(names)


def _environment(environ: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """APP_ENV and the variables to read: `environ` (default: the process's) over its profile."""
    source = dict(os.environ if environ is None else environ)
    app_env = source.get("APP_ENV", "dev")
    if app_env not in PROFILES:
        raise ConfigError(f'Environment variable "APP_ENV" invalid: must be one of {", ".join(PROFILES)}')
    profile = ROOT / f".env-{app_env}"
    if profile.exists():
        for key, value in _read_profile(profile).items():
            source.setdefault(key, value)
    return app_env, source


_T = TypeVar("_T")


def _with_environment(source: dict[str, str], parse: Callable[[Env], _T]) -> _T:
    env = Env(eager=True)
    # environs reads os.environ; give it our merged view without touching the real environment.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(source)
    try:
        return parse(env)
    except EnvError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        os.environ.clear()
        os.environ.update(saved)


DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"


def _parse(env: Env, app_env: str) -> Settings:
    queues = tuple(q.strip() for q in env.list("RQ_QUEUES", ["default", "reports", "cron", "emails"]) if q)
    if not queues:
        raise EnvError('Environment variable "RQ_QUEUES" invalid: at least one queue is required')
    return Settings(
        app_env=app_env,
        database_url=_url(env, "DATABASE_URL", ("postgresql", "postgres")),
        redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
        # Outside dev/test the secret is required: no default at all.
        jwt_secret=env.str("JWT_SECRET", DEV_JWT_SECRET)
        if app_env in ("dev", "test")
        else env.str("JWT_SECRET"),
        jwt_issuer=env.str("JWT_ISSUER", "valorize"),
        access_token_ttl_seconds=env.int("ACCESS_TOKEN_TTL_SECONDS", 3600, validate=Range(min=1)),
        refresh_token_ttl_days=env.int("REFRESH_TOKEN_TTL_DAYS", 30, validate=Range(min=1)),
        # Parallel refreshes from the frontend reuse one token; Supabase allows ~10 s too.
        refresh_reuse_grace_seconds=env.int("REFRESH_REUSE_GRACE_SECONDS", 10, validate=Range(min=0)),
        password_setup_token_ttl_hours=env.int("PASSWORD_SETUP_TOKEN_TTL_HOURS", 168, validate=Range(min=1)),
        supabase_jwt_secret=env.str("SUPABASE_JWT_SECRET", None) or None,
        supabase_jwt_issuer=env.str("SUPABASE_JWT_ISSUER", None) or None,
        supabase_jwt_audience=env.str("SUPABASE_JWT_AUDIENCE", "authenticated") or None,
        rq_queues=queues,
        job_max_attempts=env.int("JOB_MAX_ATTEMPTS", 3, validate=Range(min=1)),
        job_retry_backoff_seconds=env.int("JOB_RETRY_BACKOFF_SECONDS", 10, validate=Range(min=0)),
        job_timeout_seconds=env.int("JOB_TIMEOUT_SECONDS", 600, validate=Range(min=1)),
        reconcile_grace_seconds=env.int("RECONCILE_GRACE_SECONDS", 30, validate=Range(min=0)),
        # How long a slow endpoint called without `Prefer: respond-async` waits for its job.
        sync_wait_seconds=env.float("SYNC_WAIT_SECONDS", 25.0, validate=Range(min=0)),
        job_retention_days=env.int("JOB_RETENTION_DAYS", 90, validate=Range(min=1)),
        cron_run_retention_days=env.int("CRON_RUN_RETENTION_DAYS", 90, validate=Range(min=1)),
        log_level=env.str("LOG_LEVEL", "INFO").upper(),
        cors_origins=tuple(env.list("CORS_ORIGINS", [])),
        db_pool_size=env.int("DB_POOL_SIZE", 5, validate=Range(min=1)),
        metrics_token=env.str("METRICS_TOKEN", None) or None,  # /metrics is off without it
        frontend_url=env.str("FRONTEND_URL", "http://localhost:5173").rstrip("/"),
        # dev/test default to the sink; elsewhere only processes that send mail need it.
        smtp_url=_smtp_url(env.str("SMTP_URL", "sink" if app_env in ("dev", "test") else None) or None),
        email_from=env.str("EMAIL_FROM", "Valorize <no-reply@valorize.local>"),
        email_rate_per_minute=env.int("EMAIL_RATE_PER_MINUTE", 600, validate=Range(min=1)),
        email_rate_window_seconds=env.int("EMAIL_RATE_WINDOW_SECONDS", 60, validate=Range(min=1, max=3600)),
        email_batch_size=env.int("EMAIL_BATCH_SIZE", 50, validate=Range(min=1)),
        csv_max_rows=env.int("CSV_MAX_ROWS", 50_000, validate=Range(min=1)),
        csv_max_bytes=env.int("CSV_MAX_BYTES", 10 * 1024 * 1024, validate=Range(min=1)),
        csv_sync_check_rows=env.int("CSV_SYNC_CHECK_ROWS", 5_000, validate=Range(min=0)),
        import_send_invites=env.bool("IMPORT_SEND_INVITES", True),
        trusted_proxy_hops=env.int("TRUSTED_PROXY_HOPS", 0, validate=Range(min=0, max=5)),
        job_pump_interval_seconds=env.float(
            "JOB_PUMP_INTERVAL_SECONDS", 1.0, validate=Range(min=0.05, max=60)
        ),
        reconcile_interval_seconds=env.int("RECONCILE_INTERVAL_SECONDS", 60, validate=Range(min=1)),
        ops_session_ttl_seconds=env.int(
            "OPS_SESSION_TTL_SECONDS", 1800, validate=Range(min=60, max=12 * 3600)
        ),
        dataset_max_bytes=env.int("DATASET_MAX_BYTES", 20 * 1024 * 1024, validate=Range(min=1)),
        dataset_max_rows=env.int("DATASET_MAX_ROWS", 200_000, validate=Range(min=1)),
        openai_api_key=env.str("OPENAI_API_KEY", None) or None,
        # AI_BASE_URL is the contract's name for the same setting.
        openai_base_url=(env.str("OPENAI_BASE_URL", None) or env.str("AI_BASE_URL", None) or None),
        ai_model=env.str("AI_MODEL", "gpt-4o-mini"),
        ai_timeout_seconds=env.float("AI_TIMEOUT_SECONDS", 60.0, validate=Range(min=0.1)),
        ai_max_tokens=env.int("AI_MAX_TOKENS", 4000, validate=Range(min=256)),
        ai_response_format=env.str(
            "AI_RESPONSE_FORMAT", "json_object", validate=OneOf(("json_object", "json_schema", "text"))
        ),
        public_api_url=_public_api_url(env, app_env),
        api_docs_enabled=env.bool("API_DOCS_ENABLED", app_env in ("dev", "test")),
        public_max_body_bytes=env.int("PUBLIC_MAX_BODY_BYTES", 64 * 1024, validate=Range(min=1024)),
        rate_limits_enabled=env.bool("RATE_LIMITS_ENABLED", True),
        rate_limit_login_per_account=_rate(env, "RATE_LIMIT_LOGIN_PER_ACCOUNT", "10/15m"),
        rate_limit_login_per_address=_rate(env, "RATE_LIMIT_LOGIN_PER_ADDRESS", "30/1m"),
        rate_limit_token_per_address=_rate(env, "RATE_LIMIT_TOKEN_PER_ADDRESS", "60/1m"),
        rate_limit_jobs_per_company=_rate(env, "RATE_LIMIT_JOBS_PER_COMPANY", "120/1m"),
        password_hash_concurrency=env.int("PASSWORD_HASH_CONCURRENCY", 2, validate=Range(min=1)),
        weekly_reset_chunk_size=env.int("WEEKLY_RESET_CHUNK_SIZE", 5_000, validate=Range(min=1)),
        **_store_settings(env),
    )


def _rate(env: Env, name: str, default: str) -> Rate:
    try:
        return Rate.parse(env.str(name, default))
    except ValueError as exc:
        raise EnvError(f'Environment variable "{name}" invalid: {exc}') from None


def _public_api_url(env: Env, app_env: str) -> str:
    """PUBLIC_API_URL; else Railway's public domain; else (dev/test only) localhost on PORT."""
    value = env.str("PUBLIC_API_URL", "") or ""
    if not value and env.str("RAILWAY_PUBLIC_DOMAIN", ""):
        value = f"https://{env.str('RAILWAY_PUBLIC_DOMAIN')}"
    if not value:
        if app_env not in ("dev", "test"):
            return ""  # load_settings names the missing variable after the other checks
        value = f"http://localhost:{env.int('PORT', 8000)}"
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
        raise EnvError('Environment variable "PUBLIC_API_URL" invalid: expected an http(s):// URL')
    return value.rstrip("/")


def _store_settings(env: Env) -> dict[str, Any]:
    api_key = env.str("TREMENDOUS_API_KEY", None) or None
    provider = env.str("VOUCHER_PROVIDER", "tremendous" if api_key else "local").strip().lower()
    if provider not in ("local", "tremendous"):
        raise EnvError('Environment variable "VOUCHER_PROVIDER" invalid: expected local or tremendous')
    if provider == "tremendous" and not api_key:
        raise EnvError(
            'Environment variable "TREMENDOUS_API_KEY" is required when VOUCHER_PROVIDER=tremendous'
        )
    return {
        "coin_value_cents": env.int("COIN_VALUE_CENTS", 6, validate=Range(min=1, max=10_000)),
        "store_cancel_window_hours": env.int("STORE_CANCEL_WINDOW_HOURS", 72, validate=Range(min=0)),
        "voucher_provider": provider,
        "tremendous_api_key": api_key,
        "tremendous_base_url": env.str(
            "TREMENDOUS_BASE_URL", "https://testflight.tremendous.com/api/v2"
        ).rstrip("/"),
        "tremendous_funding_source_id": env.str("TREMENDOUS_FUNDING_SOURCE_ID", "balance"),
        "tremendous_campaign_id": env.str("TREMENDOUS_CAMPAIGN_ID", None) or None,
        "tremendous_webhook_secret": env.str("TREMENDOUS_WEBHOOK_SECRET", None) or None,
        "tremendous_timeout_seconds": env.float("TREMENDOUS_TIMEOUT_SECONDS", 5.0, validate=Range(min=0.1)),
        "voucher_reconcile_after_minutes": env.int(
            "VOUCHER_RECONCILE_AFTER_MINUTES", 30, validate=Range(min=0)
        ),
        "voucher_stuck_alert_hours": env.int("VOUCHER_STUCK_ALERT_HOURS", 24, validate=Range(min=1)),
    }


def _url(env: Env, name: str, schemes: tuple[str, ...]) -> str:
    value = env.str(name)
    scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise EnvError(f'Environment variable "{name}" invalid: expected a {"/".join(schemes)}:// URL')
    if scheme in ("postgresql", "postgres") and "+" not in value.split("://", 1)[0]:
        # Platforms hand out postgres:// or postgresql://; SQLAlchemy 2.1 would pick psycopg 3 for
        # the bare scheme, and our driver is psycopg2.
        value = "postgresql+psycopg2://" + value.split("://", 1)[1]
    return value


def _smtp_url(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else value.split(":", 1)[0]
    if scheme not in ("smtp", "smtps", "sink"):
        raise EnvError('Environment variable "SMTP_URL" invalid: expected smtp://, smtps:// or sink')
    return value


def _read_profile(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values
