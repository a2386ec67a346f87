"""/admin/company/domains (contract §11.1): list, replace, add (409), delete (400 on the last),
the email-domain check, tenancy, permissions and the audit trail."""

from __future__ import annotations

from sqlalchemy import func, select

from app import db
from app.features.audit.models import AuditLog
from app.features.company import domains as domain_service
from app.features.company.models import CompanyDomain
from app.features.users import onboarding

BASE = "/admin/company/domains"


def _domains(company_id: str) -> list[str]:
    with db.session_scope() as session:
        return [d.domain for d in domain_service.list_domains(session, company_id)]


def _audit_count() -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(AuditLog)) or 0)


def test_domains_screen_replay(client, make_tenant):
    tenant = make_tenant()
    assert client.get(BASE, headers=tenant.headers()).json == []

    added = client.post(BASE, json={"domain": " @Acme.COM ", "extra": 1}, headers=tenant.headers())
    assert added.status_code == 201, added.json
    assert set(added.json) == {"id", "domain", "created_at"}
    assert added.json["domain"] == "acme.com" and added.json["created_at"].endswith("Z")

    dup = client.post(BASE, json={"domain": "ACME.com"}, headers=tenant.headers())
    assert dup.status_code == 409 and dup.json["message"]

    last = client.delete(f"{BASE}/{added.json['id']}", headers=tenant.headers())
    assert last.status_code == 400 and last.json["message"]
    assert _domains(tenant.company_id) == ["acme.com"]

    replaced = client.put(
        BASE, json={"domains": ["acme.com", "acme.io", "Acme.io"]}, headers=tenant.headers()
    )
    assert replaced.status_code == 200, replaced.json
    assert [d["domain"] for d in replaced.json] == ["acme.com", "acme.io"]
    kept = next(d for d in replaced.json if d["domain"] == "acme.com")
    assert kept["id"] == added.json["id"]  # kept domains keep their identity

    listed = client.get(BASE, headers=tenant.headers())
    assert listed.status_code == 200 and listed.json == replaced.json
    assert all(set(d) == {"id", "domain", "created_at"} for d in listed.json)

    io_id = next(d["id"] for d in listed.json if d["domain"] == "acme.io")
    assert client.delete(f"{BASE}/{io_id}", headers=tenant.headers()).status_code == 204
    assert _domains(tenant.company_id) == ["acme.com"]

    with db.session_scope() as session:
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)).all()
    assert actions == ["domain.create", "domain.replace", "domain.delete"]


def test_validation_failures_change_nothing(client, make_tenant):
    tenant = make_tenant()
    client.post(BASE, json={"domain": "acme.com"}, headers=tenant.headers())
    before = (_domains(tenant.company_id), _audit_count())
    for method, body in [
        ("post", {}),
        ("post", {"domain": "not a domain"}),
        ("post", {"domain": "acme"}),
        ("put", {"domains": []}),
        ("put", {"domains": ["ok.com", "bad domain"]}),
        ("put", {}),
    ]:
        response = getattr(client, method)(BASE, json=body, headers=tenant.headers())
        assert response.status_code == 400, (method, body, response.json)
        assert response.json["message"]
    assert (_domains(tenant.company_id), _audit_count()) == before


def test_tenancy_and_permissions(client, make_tenant, make_user):
    mine, other = make_tenant("Mine"), make_tenant("Other")
    theirs = client.post(BASE, json={"domain": "other.com"}, headers=other.headers()).json
    client.post(BASE, json={"domain": "other2.com"}, headers=other.headers())
    assert client.get(BASE, headers=mine.headers()).json == []
    assert client.delete(f"{BASE}/{theirs['id']}", headers=mine.headers()).status_code == 404
    assert _domains(other.company_id) == ["other.com", "other2.com"]

    _, employee = make_user(mine.company_id, "Employee")
    for method, body in [("get", None), ("post", {"domain": "x.com"}), ("put", {"domains": ["x.com"]})]:
        response = getattr(client, method)(BASE, json=body, headers=mine.headers(employee))
        assert response.status_code == 403, method
    assert client.delete(f"{BASE}/{theirs['id']}", headers=mine.headers(employee)).status_code == 403
    assert client.get(BASE).status_code == 401
    # An HR manager creates users, so the user form's domain pre-check may read the list; no more.
    _, hr = make_user(mine.company_id, "HR Manager")
    assert client.get(BASE, headers=mine.headers(hr)).status_code == 200
    assert client.post(BASE, json={"domain": "hr.com"}, headers=mine.headers(hr)).status_code == 403


def test_email_domain_allowed_and_create_company(app):
    with db.session_scope() as session:
        company, _ = onboarding.create_company(session, "Dom", "boss@dom.com", "Boss")
        domain_service.add_initial_domains(session, company.id, ["Dom.com", "@dom.org", "dom.com"])
        company_id = company.id
    with db.session_scope() as session:
        rows = session.scalars(select(CompanyDomain.domain).where(CompanyDomain.company_id == company_id))
        assert sorted(rows) == ["dom.com", "dom.org"]
        assert domain_service.email_domain_allowed(session, company_id, "A@DOM.COM")
        assert domain_service.email_domain_allowed(session, company_id, "a@dom.org")
        assert not domain_service.email_domain_allowed(session, company_id, "a@evil.com")
        assert not domain_service.email_domain_allowed(session, company_id, "a@sub.dom.com")
        # No domain configured: nothing to check against, every address passes.
        bare, _ = onboarding.create_company(session, "Bare", "x@any.com", "X")
        assert domain_service.email_domain_allowed(session, bare.id, "y@whatever.net")
