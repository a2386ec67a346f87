"""`flask --app app seed-demo` (alias `seed-local`, which scripts/devstack.py runs on start)."""

from __future__ import annotations

import click
from flask import Flask

from app import db
from app.errors import Forbidden
from app.features.demo.seed import DEMO_PASSWORD, seed_demo


def register(app: Flask) -> None:
    @click.option("--password", default=DEMO_PASSWORD, show_default=True, help="Password of every demo user")
    def seed(password: str) -> None:
        """Seed the demo company "Valorize Demo" (idempotent: a second run creates nothing)."""
        try:
            with db.session_scope() as session:
                result = seed_demo(session, password=password)
        except Forbidden as exc:
            raise click.ClickException(exc.message) from None
        if not result.created:
            click.echo(f"demo company already present (company_id={result.company_id}); nothing created")
            return
        click.echo(f"company_id={result.company_id}")
        click.echo(f"users={result.users} compliments={result.compliments} reports={result.reports}")
        if result.passwords:
            click.echo(f"login: {result.admin_email} / {password} (every demo user has that password)")
        for note in result.notes:
            click.echo(f"note: {note}")

    app.cli.command("seed-demo")(seed)
    app.cli.command("seed-local")(seed)
