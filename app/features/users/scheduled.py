"""Scheduled tasks of the users feature."""

from __future__ import annotations

from typing import Any

from app import db
from app.cron.schedule import scheduled
from app.features.users import csv_import


@scheduled("prune-csv-previews", cron="41 4 * * *", description="Delete expired CSV import previews")
def prune_csv_previews() -> dict[str, Any]:
    with db.session_scope() as session:
        return {"previews_deleted": csv_import.prune_previews(session)}
