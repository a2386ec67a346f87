"""Company email domains (contract §11.1): which domains a company's users' emails may use.

A company with no domain configured accepts any email domain (there is nothing to check against);
once one exists, user creation and CSV import only accept addresses on a listed domain.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, Invalid, NotFound
from app.features.audit import service as audit
from app.features.company.models import CompanyDomain
from app.features.identity.models import Company

# Labels of letters, digits and inner hyphens, at least one dot, a letter-only TLD.
_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DUPLICATE_MESSAGE = "Domain already exists for this company"
LAST_DOMAIN_MESSAGE = "Cannot remove the last domain of the company"


def normalize_domain(raw: str) -> str:
    """`" @Acme.COM "` -> `"acme.com"`; Invalid (400) when it is not a domain name."""
    domain = raw.strip().lower().lstrip("@")
    if not _DOMAIN.match(domain):
        raise Invalid(f"Invalid domain: {raw.strip()[:100]!r}", "INVALID_DOMAIN")
    return domain


def list_domains(session: Session, company_id: str) -> list[CompanyDomain]:
    return list(
        session.scalars(
            select(CompanyDomain)
            .where(CompanyDomain.company_id == company_id)
            .order_by(CompanyDomain.created_at, CompanyDomain.domain)
        )
    )


def email_domain_allowed(session: Session, company_id: str, email: str) -> bool:
    """True when the email's domain is one of the company's (or the company has none yet)."""
    domain = email.strip().lower().rpartition("@")[2]
    rows = set(session.scalars(select(CompanyDomain.domain).where(CompanyDomain.company_id == company_id)))
    return not rows or domain in rows


def _lock(session: Session, company_id: str) -> list[CompanyDomain]:
    """Lock the company's domain rows: the "not the last one" check must see every writer."""
    session.execute(select(Company.id).where(Company.id == company_id).with_for_update())
    return list_domains(session, company_id)


def add_domain(session: Session, company_id: str, raw: str, actor_id: str | None) -> CompanyDomain:
    domain = normalize_domain(raw)
    existing = _lock(session, company_id)
    if any(d.domain == domain for d in existing):
        raise Conflict(DUPLICATE_MESSAGE, "DOMAIN_ALREADY_EXISTS")
    row = CompanyDomain(company_id=company_id, domain=domain)
    session.add(row)
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="domain.create",
        entity_type="company_domain",
        entity_id=row.id,
        changes={"domain": domain},
    )
    return row


def replace_domains(
    session: Session, company_id: str, raws: list[str], actor_id: str | None
) -> list[CompanyDomain]:
    """Make the list exactly `raws` (deduplicated); kept domains keep their id and created_at."""
    wanted: list[str] = []
    for raw in raws:
        domain = normalize_domain(raw)
        if domain not in wanted:
            wanted.append(domain)
    if not wanted:
        raise Invalid("At least one domain is required", "VALIDATION_ERROR")
    existing = _lock(session, company_id)
    have = {d.domain: d for d in existing}
    removed = [d for d in existing if d.domain not in wanted]
    for row in removed:
        session.delete(row)
    added = [d for d in wanted if d not in have]
    for domain in added:
        session.add(CompanyDomain(company_id=company_id, domain=domain))
    session.flush()
    if added or removed:
        audit.record(
            session,
            company_id=company_id,
            actor_id=actor_id,
            action="domain.replace",
            entity_type="company_domain",
            entity_id=None,
            changes={"added": added, "removed": [d.domain for d in removed]},
        )
    return list_domains(session, company_id)


def remove_domain(session: Session, company_id: str, domain_id: str, actor_id: str | None) -> None:
    existing = _lock(session, company_id)
    row = next((d for d in existing if d.id == domain_id), None)
    if row is None:
        raise NotFound("Domain not found")
    if len(existing) == 1:
        raise Invalid(LAST_DOMAIN_MESSAGE, "LAST_DOMAIN")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="domain.delete",
        entity_type="company_domain",
        entity_id=domain_id,
        changes={"domain": row.domain},
    )


def add_initial_domains(session: Session, company_id: str, raws: list[str]) -> None:
    """Domains of a company being created (no lock or audit: nothing else can see it yet)."""
    seen: set[str] = set()
    for raw in raws:
        domain = normalize_domain(raw)
        if domain not in seen:
            seen.add(domain)
            session.add(CompanyDomain(company_id=company_id, domain=domain))
    session.flush()
