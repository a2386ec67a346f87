"""The Flask API: `create_app()` wires config, database, queues, blueprints and error handlers."""

from __future__ import annotations

from typing import Any

import click
import swagger_ui_bundle
from flask import Flask, Response, send_from_directory
from flask.cli import ScriptInfo
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from app import api as api_module
from app import runtime
from app.config import ConfigError, Settings
from app.logging import configure as configure_logging
from app.logging import install_access_log


def create_app(settings: Settings | None = None) -> Flask:
    try:
        settings = runtime.init(settings)
    except ConfigError as exc:
        if not _loaded_by_flask_cli():
            raise  # gunicorn's on_starting hook (gunicorn.conf.py) has already said it in one line
        return _unconfigured_cli_app(exc)
    configure_logging(settings.log_level, service="web")

    app = Flask(__name__)
    app.url_map.strict_slashes = False  # the frontend never adds trailing slashes; accept both
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.config["PUBLIC_MAX_BODY_BYTES"] = settings.public_max_body_bytes
    app.config["HSTS"] = settings.is_production  # served over https there (Railway's edge)
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    if settings.api_docs_enabled:
        # Browsable docs at /docs with Swagger UI assets from the swagger-ui-bundle package (no CDN).
        app.config["OPENAPI_SWAGGER_UI_PATH"] = "docs"
        app.config["OPENAPI_SWAGGER_UI_URL"] = "/docs/assets/"
        app.add_url_rule("/docs/assets/<path:filename>", "swagger_ui_assets", _swagger_ui_asset)
    else:  # API_DOCS_ENABLED=false (the homolog/prod default): neither /docs nor /openapi.json
        app.config["OPENAPI_URL_PREFIX"] = None
    api = api_module.init_app(app)
    install_access_log(app)  # one JSON access line per request (replaces gunicorn's)
    # The frontend calls from its own origin; preflights are answered before any auth (contract §1.1).
    CORS(
        app,
        origins=list(settings.cors_origins),
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Prefer", "X-Request-ID"],
        expose_headers=["Location", "X-Request-ID", "Preference-Applied", "Content-Disposition"],
        supports_credentials=False,
        max_age=600,
    )

    from app import health
    from app.jobs import views as job_views

    app.register_blueprint(health.blp)
    from app import metrics

    app.register_blueprint(metrics.blp)
    api.register_blueprint(job_views.blp)

    from app.features.compliments import views as compliment_views
    from app.features.values import views as value_views
    from app.features.wallets import views as wallet_views

    api.register_blueprint(wallet_views.blp)
    api.register_blueprint(compliment_views.blp)
    api.register_blueprint(compliment_views.company_values)
    api.register_blueprint(value_views.blp)

    from app.features.auth import page as set_password_page
    from app.features.auth import views as auth_views
    from app.features.company import views as company_views
    from app.features.users import views as user_views

    api.register_blueprint(auth_views.blp)
    app.register_blueprint(set_password_page.blp)  # HTML, not part of the OpenAPI document
    api.register_blueprint(user_views.blp)
    api.register_blueprint(company_views.blp)
    api.register_blueprint(company_views.public_logos)

    # Admin panel (issue 4).
    from app.features.audit import views as audit_views
    from app.features.company import domain_views
    from app.features.roles import views as role_views
    from app.features.users import admin_views as admin_user_views

    api.register_blueprint(domain_views.blp)
    api.register_blueprint(audit_views.blp)
    api.register_blueprint(admin_user_views.blp)
    api.register_blueprint(admin_user_views.job_titles)
    api.register_blueprint(role_views.blp)
    from app.features.dashboards import views as dashboard_views

    api.register_blueprint(dashboard_views.dashboard)
    api.register_blueprint(dashboard_views.compliments)

    # Scheduled tasks and their operator routes (issue 6).
    from app.cron import views as cron_views
    from app.features.wallets import management_views as wallet_management_views

    api.register_blueprint(wallet_management_views.reset_blp)
    api.register_blueprint(wallet_management_views.management_blp)
    api.register_blueprint(cron_views.ops)
    api.register_blueprint(cron_views.runs)

    # The operator console: rq-dashboard and the schedule page at /admin/rq, behind a browser login.
    from app.features.ops import console, console_views

    console.init_app(app, console_views.blp)

    # CSV import and welcome emails (issue 5).
    from app.features.company import import_settings_views
    from app.features.emails import views as email_views
    from app.features.users import import_views

    api.register_blueprint(import_views.blp)
    api.register_blueprint(import_settings_views.blp)
    api.register_blueprint(email_views.blp)

    # AI reports (issue 13): the RelatorIA /api/* routes.
    from app.features.reports import views as report_views

    api.register_blueprint(report_views.blp)

    # Prize store, vouchers and the economy dashboard (issue 14).
    from app.features.economy import views as economy_views
    from app.features.store import admin_views as store_admin_views
    from app.features.store import views as store_views
    from app.features.vouchers import views as voucher_views

    api.register_blueprint(store_views.prizes_blp)
    api.register_blueprint(store_views.redemptions_blp)
    api.register_blueprint(store_views.addresses_blp)
    api.register_blueprint(store_views.public_images)
    api.register_blueprint(store_admin_views.prizes_blp)
    api.register_blueprint(store_admin_views.vouchers_blp)
    api.register_blueprint(store_admin_views.redemptions_blp)
    api.register_blueprint(voucher_views.blp)
    api.register_blueprint(economy_views.economy_blp)
    api.register_blueprint(economy_views.backoffice_blp)

    from app.cli import register_cli

    register_cli(app)
    return app


def _loaded_by_flask_cli() -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.find_object(ScriptInfo) is not None


def _unconfigured_cli_app(error: ConfigError) -> Flask:
    """What `flask --app app …` gets when the settings are incomplete: `--help` still lists the
    project's commands (no database or Redis needed), and running one of them, or serving, says
    what is missing in one line instead of a traceback."""
    from app.cli import register_cli

    app = Flask(__name__)
    register_cli(app)
    message = f"configuration error: {error}"

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        click.echo(f"flask: {message}", err=True)
        raise SystemExit(2)

    for command in app.cli.commands.values():
        command.callback = refuse

    @app.before_request
    def unavailable() -> Response:
        return Response(message + "\n", status=503, mimetype="text/plain")

    return app


def _swagger_ui_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
