"""Flask CLI commands for local use (`flask --app app <command>`)."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import func, select

from app import db
from app.auth import issue_access_token
from app.errors import DomainError
from app.features.auth import service as auth_service
from app.features.company.service import is_valid_timezone
from app.features.demo.cli import register as register_demo
from app.features.economy.cli import register as register_economy
from app.features.identity.models import User
from app.features.users import onboarding


def register_cli(app: Flask) -> None:
    register_demo(app)
    register_economy(app)

    @app.cli.command("create-company")
    @click.option("--name", required=True, help="Company name")
    @click.option("--admin-email", required=True, help="Email of the first user (Company Admin)")
    @click.option("--admin-name", default="Admin", show_default=True)
    @click.option("--timezone", default=None, help="IANA timezone (default America/Sao_Paulo)")
    @click.option("--token-ttl", default=24 * 3600, show_default=True, help="Seconds the printed token lives")
    @click.option(
        "--super-admin",
        is_flag=True,
        help="Make the first user a Super Admin: platform operations across every company",
    )
    def create_company(
        name: str, admin_email: str, admin_name: str, timezone: str | None, token_ttl: int, super_admin: bool
    ) -> None:
        """Create a company with its default roles and an admin user; print a bearer token."""
        if timezone and not is_valid_timezone(timezone):
            raise click.BadParameter(f"{timezone!r} is not an IANA timezone", param_hint="--timezone")
        with db.session_scope() as session:
            company, admin = onboarding.create_company(
                session,
                name,
                admin_email,
                admin_name,
                timezone,
                super_admin=super_admin,
            )
            company_id, admin_id = company.id, admin.id
        token = issue_access_token(admin_id, company_id, ttl_seconds=token_ttl)
        click.echo(f"company_id={company_id}")
        click.echo(f"admin_user_id={admin_id}")
        click.echo(f"token={token}")

    @app.cli.command("set-password")
    @click.option("--email", required=True, help="The user's email")
    @click.option("--company-id", required=True, help="The user's company id (emails are unique per company)")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="New password")
    def set_password(email: str, company_id: str, password: str) -> None:
        """Set a user's password (local use; users normally set it through their invite link)."""
        with db.session_scope() as session:
            user = session.scalars(
                select(User).where(
                    User.company_id == company_id, func.lower(User.email) == email.strip().lower()
                )
            ).first()
            if user is None:
                raise click.ClickException(f"No user {email} in company {company_id}")
            try:
                auth_service.set_password(session, user, password)
            except DomainError as exc:
                raise click.ClickException(exc.message) from None
        click.echo(f"Password set for {email}")
