"""The company's default for inviting the users a CSV import creates.

Who gets an invite, in order: the import request's `sendEmails` when it is given (true or false);
otherwise the company's `send_invites_on_import` when it is set; otherwise the app-wide
IMPORT_SEND_INVITES. The decision is taken when the import is requested and travels with the job,
so changing the default later does not change an import already queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import runtime
from app.features.audit import service as audit
from app.features.company.models import CompanySettings
from app.features.company.service import get_coin_economy, get_company

AUDIT_ACTION = "company_settings.update"
AUDIT_ENTITY = "company_settings"


@dataclass(frozen=True)
class ImportSettings:
    send_invites_on_import: bool | None  # None = follow IMPORT_SEND_INVITES
    effective: bool  # what an import without `sendEmails` does


def _effective(company_value: bool | None) -> bool:
    return runtime.settings().import_send_invites if company_value is None else company_value


def company_default(session: Session, company_id: str) -> bool | None:
    """The company's own setting (None when unset or when it has no settings row yet); no writes."""
    return session.scalar(
        select(CompanySettings.send_invites_on_import).where(CompanySettings.company_id == company_id)
    )


def resolve_send_invites(session: Session, company_id: str, send_emails: bool | None) -> bool:
    """Whether an import invites its users: `send_emails` when given, else the company's default,
    else IMPORT_SEND_INVITES."""
    if send_emails is not None:
        return send_emails
    return _effective(company_default(session, company_id))


def get_import_settings(session: Session, company_id: str) -> ImportSettings:
    get_company(session, company_id)  # 404 for an unknown or inactive company
    value = company_default(session, company_id)
    return ImportSettings(value, _effective(value))


def update_import_settings(
    session: Session, company_id: str, send_invites_on_import: bool | None, actor_id: str | None
) -> ImportSettings:
    """Set (true/false) or clear (None: back to IMPORT_SEND_INVITES) the company's default; audited
    when it changes. Does not commit."""
    get_coin_economy(session, company_id)  # the settings row, created with its defaults if missing
    row = session.scalars(
        select(CompanySettings)
        .where(CompanySettings.company_id == company_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    before = row.send_invites_on_import
    if before != send_invites_on_import:
        row.send_invites_on_import = send_invites_on_import
        session.flush()
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action=AUDIT_ACTION,
            entity_type=AUDIT_ENTITY,
            entity_id=company_id,
            changes=audit.diff(
                {"sendInvitesOnImport": before}, {"sendInvitesOnImport": send_invites_on_import}
            ),
        )
    return ImportSettings(send_invites_on_import, _effective(send_invites_on_import))
