"""Settings from the environment.

`APP_ENV` picks a committed profile (`.env-dev`, `.env-homolog`, `.env-prod`) whose values fill in
whatever the real environment leaves unset; secrets never live in those files, they come from the
platform. A missing or malformed setting raises `ConfigError` naming the variable, and the entry
points turn that into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from environs import Env, EnvError
from marshmallow.validate import Range

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("dev", "homolog", "prod", "test")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


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
    smtp_url: str = "sink"  # smtp://user:pass@host:port, smtps://… (TLS), sink[:///dir] (dev: .eml files)
    email_from: str = "Valorize <no-reply@valorize.local>"
    email_rate_per_minute: int = 600  # per company, fixed one-minute window in Redis
    email_batch_size: int = 50  # messages per SMTP connection
    csv_max_rows: int = 50_000
    csv_max_bytes: int = 10 * 1024 * 1024  # decoded file size
    csv_sync_check_rows: int = 5_000  # larger previews are checked by a job
    import_send_invites: bool = True  # invite imported users when the request does not say
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto/-Host we trust
    # (Railway: 1). With 0, URLs we build (logo links) and logged client addresses are the socket's.
    trusted_proxy_hops: int = 0
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

    @property
    def is_production(self) -> bool:
        return self.app_env in ("prod", "homolog")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from `environ` (default: the process environment) plus its profile file."""
    source = dict(os.environ if environ is None else environ)
    app_env = source.get("APP_ENV", "dev")
    if app_env not in PROFILES:
        raise ConfigError(f'Environment variable "APP_ENV" invalid: must be one of {", ".join(PROFILES)}')
    profile = ROOT / f".env-{app_env}"
    if profile.exists():
        for key, value in _read_profile(profile).items():
            source.setdefault(key, value)

    env = Env(eager=True)
    # environs reads os.environ; give it our merged view without touching the real environment.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(source)
    try:
        settings = _parse(env, app_env)
    except EnvError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if settings.is_production and settings.smtp_url.startswith("sink"):
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
    return settings


DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"


def _parse(env: Env, app_env: str) -> Settings:
    queues = tuple(q.strip() for q in env.list("RQ_QUEUES", ["default", "emails", "reports", "cron"]) if q)
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
        smtp_url=_smtp_url(env.str("SMTP_URL", "sink")),
        email_from=env.str("EMAIL_FROM", "Valorize <no-reply@valorize.local>"),
        email_rate_per_minute=env.int("EMAIL_RATE_PER_MINUTE", 600, validate=Range(min=1)),
        email_batch_size=env.int("EMAIL_BATCH_SIZE", 50, validate=Range(min=1)),
        csv_max_rows=env.int("CSV_MAX_ROWS", 50_000, validate=Range(min=1)),
        csv_max_bytes=env.int("CSV_MAX_BYTES", 10 * 1024 * 1024, validate=Range(min=1)),
        csv_sync_check_rows=env.int("CSV_SYNC_CHECK_ROWS", 5_000, validate=Range(min=0)),
        import_send_invites=env.bool("IMPORT_SEND_INVITES", True),
        trusted_proxy_hops=env.int("TRUSTED_PROXY_HOPS", 0, validate=Range(min=0, max=5)),
        **_store_settings(env),
    )


def _store_settings(env: Env) -> dict[str, object]:
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


def _smtp_url(value: str) -> str:
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
