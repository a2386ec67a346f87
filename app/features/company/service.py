"""Company info (name, logo, timezone) and the coin economy settings, scoped to one company."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound
from app.features.company.models import DEFAULT_RENEWAL_DAY, DEFAULT_WEEKLY_RENEWAL_AMOUNT, CompanySettings
from app.features.identity.models import Company


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    return name in _timezones()


def get_company(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None or not company.is_active:
        raise NotFound("Company not found")
    return company


def update_company_info(session: Session, company_id: str, changes: dict[str, str | None]) -> Company:
    company = get_company(session, company_id)
    if "name" in changes and changes["name"] is not None:
        company.name = changes["name"].strip()
    if "logo_url" in changes:
        company.logo_url = changes["logo_url"] or None  # "" clears the logo
    if changes.get("timezone"):
        company.timezone = str(changes["timezone"])
    session.flush()
    return company


def get_coin_economy(session: Session, company_id: str) -> CompanySettings:
    """The company's settings row, created with the defaults on first read (race-safe)."""
    get_company(session, company_id)
    now = utcnow()
    session.execute(
        insert(CompanySettings)
        .values(
            company_id=company_id,
            weekly_renewal_amount=DEFAULT_WEEKLY_RENEWAL_AMOUNT,
            renewal_day=DEFAULT_RENEWAL_DAY,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[CompanySettings.company_id])
    )
    return session.scalars(
        select(CompanySettings)
        .where(CompanySettings.company_id == company_id)
        .execution_options(populate_existing=True)
    ).one()


def update_coin_economy(session: Session, company_id: str, changes: dict[str, int]) -> CompanySettings:
    settings = get_coin_economy(session, company_id)
    for key in ("weekly_renewal_amount", "renewal_day"):
        if key in changes and changes[key] is not None:
            setattr(settings, key, changes[key])
    session.flush()
    return settings


def renewal_settings(session: Session, company_id: str) -> tuple[int, int]:
    """(weekly_renewal_amount, renewal_day) without writing: the defaults when no row exists yet.

    For the weekly reset and other readers that must not create rows.
    """
    row = session.get(CompanySettings, company_id)
    if row is None:
        return DEFAULT_WEEKLY_RENEWAL_AMOUNT, DEFAULT_RENEWAL_DAY
    return row.weekly_renewal_amount, row.renewal_day
