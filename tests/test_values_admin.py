"""/admin/company/values: CRUD, reorder, soft delete, the 8-active limit, tenancy, permissions."""

from __future__ import annotations

import pytest

from tests.recognition_helpers import add_value

VALUE_KEYS = {
    "id", "company_id", "title", "description", "example", "iconName", "iconColor", "order", "is_active",
    "created_at", "updated_at",
}  # fmt: skip
BASE = "/admin/company/values"


def _create(client, tenant, title, **extra):
    body = {
        "title": title,
        "description": "d",
        "example": "e",
        "iconName": "star",
        "iconColor": "#fff",
        **extra,
    }
    return client.post(BASE, json=body, headers=tenant.headers())


def test_create_get_update_delete(client, make_tenant):
    tenant = make_tenant()
    created = _create(client, tenant, "Ownership", description="Own it", id=999, bogus=True)
    assert created.status_code == 201, created.json
    value = created.json
    assert set(value) == VALUE_KEYS
    assert isinstance(value["id"], int) and value["id"] != 999
    assert (value["company_id"], value["title"], value["description"], value["example"]) == (
        tenant.company_id,
        "Ownership",
        "Own it",
        "e",
    )
    assert (value["iconName"], value["iconColor"], value["order"], value["is_active"]) == (
        "star",
        "#fff",
        1,
        True,
    )
    assert value["created_at"].endswith("Z")
    second = _create(client, tenant, "Teamwork").json
    assert second["order"] == 2

    got = client.get(f"{BASE}/{value['id']}", headers=tenant.headers())
    assert got.status_code == 200 and got.json == value

    patched = client.patch(
        f"{BASE}/{value['id']}",
        json={"id": value["id"], "title": "Ownership!", "iconColor": "#000", "description": None},
        headers=tenant.headers(),
    )
    assert patched.status_code == 200, patched.json
    assert (patched.json["title"], patched.json["iconColor"], patched.json["description"]) == (
        "Ownership!",
        "#000",
        None,
    )

    assert client.delete(f"{BASE}/{value['id']}", headers=tenant.headers()).status_code == 204
    listing = client.get(BASE, headers=tenant.headers()).json
    assert [(v["title"], v["is_active"]) for v in listing] == [("Ownership!", False), ("Teamwork", True)]
    public = client.get(f"/companies/{tenant.company_id}/values", headers=tenant.headers()).json
    assert [v["title"] for v in public] == ["Teamwork"]

    reactivated = client.patch(f"{BASE}/{value['id']}", json={"is_active": True}, headers=tenant.headers())
    assert reactivated.status_code == 200 and reactivated.json["is_active"] is True


def test_duplicate_titles_are_409(client, make_tenant):
    tenant = make_tenant()
    first = _create(client, tenant, "Ownership").json
    other = _create(client, tenant, "Teamwork").json
    for title in ("Ownership", "ownership", "  OWNERSHIP "):
        response = _create(client, tenant, title)
        assert response.status_code == 409
        assert response.json["message"] == "A value with this title already exists for this company"
    client.delete(f"{BASE}/{first['id']}", headers=tenant.headers())
    assert _create(client, tenant, "Ownership").status_code == 409  # reactivate it instead
    response = client.patch(f"{BASE}/{other['id']}", json={"title": "Ownership"}, headers=tenant.headers())
    assert response.status_code == 409
    same = client.patch(f"{BASE}/{other['id']}", json={"title": "Teamwork"}, headers=tenant.headers())
    assert same.status_code == 200


def test_at_most_eight_active_values(client, make_tenant):
    tenant = make_tenant()
    ids = [_create(client, tenant, f"Value {n}").json["id"] for n in range(8)]
    ninth = _create(client, tenant, "Value 8")
    assert ninth.status_code == 409
    assert "at most 8 active values" in ninth.json["message"]
    assert len(client.get(BASE, headers=tenant.headers()).json) == 8

    assert client.delete(f"{BASE}/{ids[0]}", headers=tenant.headers()).status_code == 204
    replacement = _create(client, tenant, "Value 8")
    assert replacement.status_code == 201
    reactivate = client.patch(f"{BASE}/{ids[0]}", json={"is_active": True}, headers=tenant.headers())
    assert reactivate.status_code == 409
    assert "at most 8 active values" in reactivate.json["message"]
    assert client.get(f"{BASE}/{ids[0]}", headers=tenant.headers()).json["is_active"] is False
    # editing an active value, or an inactive one without reactivating it, is fine at the limit
    assert (
        client.patch(f"{BASE}/{ids[1]}", json={"is_active": True}, headers=tenant.headers()).status_code
        == 200
    )
    assert (
        client.patch(f"{BASE}/{ids[0]}", json={"title": "Old"}, headers=tenant.headers()).status_code == 200
    )


def test_reorder(client, make_tenant):
    tenant = make_tenant()
    a, b, c = (_create(client, tenant, t).json["id"] for t in ("A", "B", "C"))
    response = client.patch(f"{BASE}/reorder", json={"ordered_ids": [c, a, b]}, headers=tenant.headers())
    assert response.status_code == 200, response.json
    assert response.json["message"]
    assert [(v["id"], v["order"]) for v in response.json["values"]] == [(c, 1), (a, 2), (b, 3)]
    assert set(response.json["values"][0]) == VALUE_KEYS
    assert [v["id"] for v in client.get(BASE, headers=tenant.headers()).json] == [c, a, b]


@pytest.mark.parametrize(
    "body", [{}, {"ordered_ids": []}, {"ordered_ids": "1,2"}, {"ordered_ids": ["x"]}, {"ordered_ids": [1, 1]}]
)
def test_reorder_rejects_bad_bodies(client, make_tenant, body):
    tenant = make_tenant()
    add_value(tenant.company_id, "A")
    response = client.patch(f"{BASE}/reorder", json=body, headers=tenant.headers())
    assert response.status_code == 400 and response.json["message"]


def test_another_companys_values_are_invisible(client, make_tenant):
    acme, other = make_tenant("Acme"), make_tenant("Other")
    mine = add_value(acme.company_id, "Mine")
    theirs = add_value(other.company_id, "Theirs")
    headers = acme.headers()
    assert client.get(f"{BASE}/{theirs}", headers=headers).status_code == 404
    assert client.patch(f"{BASE}/{theirs}", json={"title": "Hijack"}, headers=headers).status_code == 404
    assert client.delete(f"{BASE}/{theirs}", headers=headers).status_code == 404
    reorder = client.patch(f"{BASE}/reorder", json={"ordered_ids": [mine, theirs]}, headers=headers)
    assert reorder.status_code == 400 and str(theirs) in reorder.json["message"]
    assert [v["id"] for v in client.get(BASE, headers=headers).json] == [mine]
    theirs_now = client.get(f"{BASE}/{theirs}", headers=other.headers()).json
    assert (theirs_now["title"], theirs_now["is_active"], theirs_now["order"]) == ("Theirs", True, 1)
    assert client.get(f"{BASE}/999999", headers=headers).status_code == 404
    assert client.get(f"{BASE}/99999999999", headers=headers).status_code == 404


def test_non_integer_ids_are_400(client, make_tenant):
    tenant = make_tenant()
    for raw in ("abc", "1.5", "-1"):
        response = client.get(f"{BASE}/{raw}", headers=tenant.headers())
        assert response.status_code == 400, raw
        assert "integer" in response.json["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 101},
        {"title": 5},
        {"title": "ok", "description": "x" * 501},
        {"title": "ok", "iconName": ["x"]},
        {"title": "ok", "iconName": "x" * 501},
        {"title": "ok", "iconColor": "x" * 501},
    ],
)
def test_create_validation(client, make_tenant, body):
    tenant = make_tenant()
    response = client.post(BASE, json=body, headers=tenant.headers())
    assert response.status_code == 400 and response.json["message"]
    assert client.get(BASE, headers=tenant.headers()).json == []


def test_text_fields_take_500_characters_each(client, make_tenant):
    """The contract's limit for every text field, icon fields included (not a 500 from the column)."""
    tenant = make_tenant()
    long = {
        k: c * 500 for k, c in (("description", "d"), ("example", "e"), ("iconName", "n"), ("iconColor", "c"))
    }
    created = _create(client, tenant, "Long", **long)
    assert created.status_code == 201, created.json
    assert {k: created.json[k] for k in long} == long
    patched = client.patch(
        f"{BASE}/{created.json['id']}", json={"iconName": "m" * 500}, headers=tenant.headers()
    )
    assert patched.status_code == 200 and patched.json["iconName"] == "m" * 500


def test_update_validation(client, make_tenant):
    tenant = make_tenant()
    value_id = add_value(tenant.company_id, "A")
    for body in ({}, {"id": value_id}, {"is_active": "maybe"}, {"title": ""}):
        response = client.patch(f"{BASE}/{value_id}", json=body, headers=tenant.headers())
        assert response.status_code == 400, body


def test_value_admin_needs_company_manage_settings(client, make_tenant, make_user):
    tenant = make_tenant()
    value_id = add_value(tenant.company_id, "A")
    for role in ("Employee", "HR Manager", "Team Lead"):
        _, token = make_user(tenant.company_id, role=role)
        headers = tenant.headers(token)
        calls = [
            client.get(BASE, headers=headers),
            client.post(BASE, json={"title": "B"}, headers=headers),
            client.get(f"{BASE}/{value_id}", headers=headers),
            client.patch(f"{BASE}/{value_id}", json={"title": "C"}, headers=headers),
            client.patch(f"{BASE}/reorder", json={"ordered_ids": [value_id]}, headers=headers),
            client.delete(f"{BASE}/{value_id}", headers=headers),
        ]
        assert [r.status_code for r in calls] == [403] * 6, role
        assert "company:manage_settings" in calls[0].json["message"]
    assert client.get(BASE).status_code == 401
    _, admin_token = make_user(tenant.company_id, role="Company Admin")
    assert client.get(BASE, headers=tenant.headers(admin_token)).status_code == 200
    assert [v["title"] for v in client.get(BASE, headers=tenant.headers()).json] == ["A"]


def test_openapi_documents_the_recognition_routes(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json["paths"]
    for path in (
        "/wallets/balance",
        "/wallets/transactions",
        "/compliments/send-compliment",
        "/compliments/history",
        "/compliments/feed",
        "/compliments/list-receivable-users",
        "/companies/{company_id}/values",
        "/admin/company/values",
        "/admin/company/values/reorder",
        "/admin/company/values/{value_id}",
    ):
        assert path in paths, path
    send = paths["/compliments/send-compliment"]["post"]
    assert "201" in send["responses"] and "requestBody" in send
