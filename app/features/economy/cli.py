"""Operator commands: `flask --app app set-plan` and `flask --app app deposit`."""

from __future__ import annotations

import click
from flask import Flask

from app import db
from app.errors import DomainError
from app.features.economy import service
from app.features.identity import service as identity


def register(app: Flask) -> None:
    @app.cli.command("set-plan")
    @click.option("--company-id", required=True)
    @click.option(
        "--plan", required=True, type=click.Choice(["ESSENTIAL", "PROFESSIONAL"], case_sensitive=False)
    )
    def set_plan(company_id: str, plan: str) -> None:
        """Change a company's plan (the Economy wallet history and the network view need PROFESSIONAL)."""
        try:
            with db.session_scope() as session:
                company = identity.set_plan(session, company_id, plan)
                click.echo(f"company_id={company.id} plan={company.plan}")
        except DomainError as exc:
            raise click.ClickException(exc.message) from None

    @app.cli.command("deposit")
    @click.option("--company-id", required=True)
    @click.option("--amount", required=True, type=float, help="BRL, e.g. 1500.00")
    @click.option("--reason", default="Depósito registrado pelo operador", show_default=True)
    def deposit(company_id: str, amount: float, reason: str) -> None:
        """Record a deposit into a company's prize fund (BRL)."""
        try:
            with db.session_scope() as session:
                entry = service.deposit(session, company_id, round(amount * 100), reason, created_by=None)
                click.echo(f"deposit_id={entry.id} balance={entry.balance_after_cents / 100:.2f}")
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
