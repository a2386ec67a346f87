"""What a dashboard request is about: the company, the period in the company's timezone and the
optional department / job-title filter, validated (plan, dates, ids) into a `Scope`.

The period is [start 00:00, end+1 day 00:00) in the company's timezone; with a department or
job-title filter, the users in scope are that group's active members and the compliments in scope
are those they sent or received."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.features.identity.models import Company, Department, JobTitle

PROFESSIONAL = "PROFESSIONAL"
MAX_RANGE_DAYS = 366  # "at most one year", inclusive of both ends (a leap year has 366 days)
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Scope:
    company_id: str
    timezone: str
    start_date: date
    end_date: date
    department_id: str | None
    job_title_id: str | None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def at(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz)

    @property
    def start(self) -> datetime:
        return self.at(self.start_date)

    @property
    def end(self) -> datetime:  # exclusive
        return self.at(self.end_date + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def prev_start_date(self) -> date:
        return self.start_date - timedelta(days=self.days)

    @property
    def prev_end_date(self) -> date:
        return self.start_date - timedelta(days=1)

    def params(self) -> dict[str, Any]:
        return {
            "cid": self.company_id,
            "tz": self.timezone,
            "start": self.start,
            "end": self.end,
            "prev_start": self.at(self.prev_start_date),
            "dept": self.department_id,
            "jt": self.job_title_id,
        }


def plan_restriction(feature: str, current: str) -> Forbidden:
    return Forbidden(
        f"{feature} requires the {PROFESSIONAL} plan",
        "PLAN_RESTRICTION",
        {
            "featureName": feature,
            "requiredPlan": PROFESSIONAL,
            "currentPlan": current,
            "upgradeRequired": True,
        },
    )


def company_of(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("Company not found")
    return company


def resolve_scope(
    session: Session,
    company_id: str,
    start_date: date | None,
    end_date: date | None,
    department_id: str | None = None,
    job_title_id: str | None = None,
    *,
    plan_gated_filters: bool = True,
) -> Scope:
    """Validate the query (plan, dates, filter ids) into a Scope; 403 / 400 otherwise."""
    company = company_of(session, company_id)
    if plan_gated_filters and (department_id or job_title_id) and company.plan != PROFESSIONAL:
        raise plan_restriction("Department and job title filters", company.plan)
    today = utcnow().astimezone(ZoneInfo(company.timezone)).date()
    end = end_date or today
    start = start_date or (end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise Invalid("startDate must be on or before endDate")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise Invalid("The date range may not exceed one year")
    if department_id and (
        session.scalar(
            select(Department.id).where(Department.id == department_id, Department.company_id == company_id)
        )
        is None
    ):
        raise Invalid("Department not found in this company", "INVALID_DEPARTMENT")
    if job_title_id and (
        session.scalar(
            select(JobTitle.id).where(JobTitle.id == job_title_id, JobTitle.company_id == company_id)
        )
        is None
    ):
        raise Invalid("Job title not found in this company", "INVALID_JOB_TITLE")
    return Scope(company_id, company.timezone, start, end, department_id or None, job_title_id or None)


def require_professional(session: Session, company_id: str, feature: str) -> None:
    """Forbidden (403 PLAN_RESTRICTION) unless the company is on the PROFESSIONAL plan."""
    company = company_of(session, company_id)
    if company.plan != PROFESSIONAL:
        raise plan_restriction(feature, company.plan)
