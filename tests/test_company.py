"""/admin/company/info and /admin/company/coin-economy (contract §9): bare objects, scoped to the caller."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app import db
from app.features.company.models import CompanySettings
from app.features.identity.models import Company


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _company(company_id: str) -> Company:
    with db.session_scope() as session:
        return session.get_one(Company, company_id)


def _settings_rows() -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(CompanySettings)) or 0)


def _settings(company_id: str) -> tuple[int, int]:
    with db.session_scope() as session:
        row = session.get_one(CompanySettings, company_id)
        return row.weekly_renewal_amount, row.renewal_day


# --- company info -----------------------------------------------------------------------------


def test_any_member_reads_the_company_info(client, make_tenant, make_user):
    tenant = make_tenant("Acme Corp")
    _, token = make_user(tenant.company_id)
    response = client.get("/admin/company/info", headers=_bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Acme Corp" and body["logo_url"] is None
    assert body["id"] == tenant.company_id
    assert body["timezone"] == "America/Sao_Paulo"
    assert body["created_at"].endswith("Z")
    assert client.get("/admin/company/info").status_code == 401


def test_admin_patches_name_logo_and_timezone(client, make_tenant):
    tenant = make_tenant("Acme Corp")
    other = make_tenant("Other Co")
    response = client.patch(
        "/admin/company/info",
        json={
            "name": "Acme Brasil",
            "logo_url": "https://cdn.example.com/logo.png",
            "timezone": "Europe/Lisbon",
        },
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "name": "Acme Brasil",
        "logo_url": "https://cdn.example.com/logo.png",
        "timezone": "Europe/Lisbon",
    }
    company = _company(tenant.company_id)
    assert (company.name, company.logo_url, company.timezone) == (
        "Acme Brasil",
        "https://cdn.example.com/logo.png",
        "Europe/Lisbon",
    )
    # The UI sends "" after removing the logo; null clears it too.
    cleared = client.patch(
        "/admin/company/info", json={"name": "Acme Brasil", "logo_url": ""}, headers=tenant.headers()
    )
    assert cleared.get_json()["logo_url"] is None
    assert _company(tenant.company_id).logo_url is None
    # Another tenant is untouched.
    untouched = _company(other.company_id)
    assert (untouched.name, untouched.timezone) == ("Other Co", "America/Sao_Paulo")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "AB"},
        {"name": "   x  "},
        {"name": "x" * 101},
        {"name": None},
        {"logo_url": "not a url"},
        {"logo_url": "ftp://cdn.example.com/logo.png"},
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "america/sao_paulo"},
        {"timezone": ""},
        {"name": "Valid Name", "timezone": "Nowhere/Land"},
    ],
)
def test_company_info_validation_is_400_and_changes_nothing(client, make_tenant, body):
    tenant = make_tenant("Acme Corp")
    response = client.patch("/admin/company/info", json=body, headers=tenant.headers())
    assert response.status_code == 400
    assert response.get_json()["message"]
    company = _company(tenant.company_id)
    assert (company.name, company.logo_url, company.timezone) == ("Acme Corp", None, "America/Sao_Paulo")


def test_patching_company_info_needs_manage_settings(client, make_tenant, make_user):
    tenant = make_tenant("Acme Corp")
    _, token = make_user(tenant.company_id, role="HR Manager")
    response = client.patch("/admin/company/info", json={"name": "Hijacked"}, headers=_bearer(token))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "INSUFFICIENT_PERMISSION"
    assert _company(tenant.company_id).name == "Acme Corp"


# --- coin economy -----------------------------------------------------------------------------


def test_coin_economy_is_created_with_defaults_on_first_read(client, make_tenant, make_user):
    tenant = make_tenant()
    _, token = make_user(tenant.company_id)
    first = client.get("/admin/company/coin-economy", headers=_bearer(token))
    assert first.status_code == 200
    body = first.get_json()
    assert set(body) == {"weekly_renewal_amount", "renewal_day", "created_at", "updated_at"}
    assert (body["weekly_renewal_amount"], body["renewal_day"]) == (100, 1)
    second = client.get("/admin/company/coin-economy", headers=_bearer(token)).get_json()
    assert second["created_at"] == body["created_at"]
    assert _settings_rows() == 1


def test_admin_patches_the_coin_economy(client, make_tenant):
    tenant = make_tenant()
    other = make_tenant()
    response = client.patch(
        "/admin/company/coin-economy",
        json={"weekly_renewal_amount": "250", "renewal_day": 5, "unknown": True},
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["weekly_renewal_amount"], body["renewal_day"]) == (250, 5)
    assert _settings(tenant.company_id) == (250, 5)
    partial = client.patch("/admin/company/coin-economy", json={"renewal_day": 7}, headers=tenant.headers())
    assert (partial.get_json()["weekly_renewal_amount"], partial.get_json()["renewal_day"]) == (250, 7)
    other_view = client.get("/admin/company/coin-economy", headers=other.headers()).get_json()
    assert (other_view["weekly_renewal_amount"], other_view["renewal_day"]) == (100, 1)


@pytest.mark.parametrize(
    "body",
    [
        {"weekly_renewal_amount": 49},
        {"weekly_renewal_amount": 501},
        {"weekly_renewal_amount": 100.5},
        {"weekly_renewal_amount": "lots"},
        {"weekly_renewal_amount": True},
        {"weekly_renewal_amount": None},
        {"renewal_day": 0},
        {"renewal_day": 8},
        {"weekly_renewal_amount": 200, "renewal_day": 9},
    ],
)
def test_coin_economy_validation_is_400_and_changes_nothing(client, make_tenant, body: dict[str, Any]):
    tenant = make_tenant()
    client.get("/admin/company/coin-economy", headers=tenant.headers())
    response = client.patch("/admin/company/coin-economy", json=body, headers=tenant.headers())
    assert response.status_code == 400
    assert response.get_json()["message"]
    assert _settings(tenant.company_id) == (100, 1)


def test_patching_coin_economy_needs_manage_settings(client, make_tenant, make_user):
    tenant = make_tenant()
    _, token = make_user(tenant.company_id, role="Team Lead")
    response = client.patch("/admin/company/coin-economy", json={"renewal_day": 3}, headers=_bearer(token))
    assert response.status_code == 403
    assert _settings_rows() == 0


def test_company_routes_are_documented(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"get", "patch"} <= set(paths["/admin/company/info"])
    assert {"get", "patch"} <= set(paths["/admin/company/coin-economy"])
    for path in ("/users/profile", "/users/me/get-my-balance", "/users/me/permissions", "/admin/roles/me"):
        assert path in paths
