"""The OpenAPI document tells the truth (issue 9, item 5): every protected operation declares bearer
security (so "Try it out" sends the token), the error schema is the real one, and the routes that
create jobs document `Idempotency-Key` and `Prefer`."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs

PUBLIC = {
    ("post", "/auth/login"),
    ("post", "/auth/admin/login"),
    ("post", "/auth/refresh"),
    ("post", "/auth/set-password"),
    ("get", "/public/company-logos/{company_id}/{filename}"),
    ("get", "/public/prize-images/{prize_id}/{filename}"),  # <img> tags send no token
    ("post", "/webhooks/tremendous"),  # the provider's deliveries, signed with an HMAC instead
    ("post", "/api/beta"),  # the AI-report product's beta list (reports-contract.md §3.7)
    ("post", "/api/beta-leads"),
}
JOB_ROUTES = {
    ("post", "/admin/users/{user_id}/send-welcome-email"),
    ("post", "/admin/users/send-welcome-emails-bulk"),
    ("post", "/admin/users/csv/preview"),
    ("post", "/admin/users/csv/import"),
    ("post", "/wallets/reset-weekly-balance"),
    ("post", "/admin/wallet-management/expire-coins"),
    ("post", "/admin/cron/{task_name}/run"),
    ("post", "/jobs/{job_id}/retry"),
}
METHODS = ("get", "post", "put", "patch", "delete")


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items() if m in METHODS]


def test_every_protected_operation_declares_bearer_security(client):
    spec = client.get("/openapi.json").get_json()
    operations = _operations(spec)
    assert len(operations) >= 80
    undeclared = []
    for method, path, operation in operations:
        url = re.sub(r"\{[^}]+\}", "1", path)
        anonymous = getattr(client, method)(url, json={} if method != "get" else None)
        if (method, path) in PUBLIC:
            assert "security" not in operation, (method, path)
            continue
        # Anyone else answers an anonymous caller 401, and says so in the document.
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        if operation.get("security") != [{"bearerAuth": []}]:
            undeclared.append(f"{method.upper()} {path}")
        assert "401" in operation["responses"], (method, path)
    assert not undeclared, undeclared
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_the_documented_error_schema_is_the_real_error_shape(client, make_tenant):
    spec = client.get("/openapi.json").get_json()
    schema = _inline(spec["components"]["schemas"]["Error"], spec)
    validator = jsonschema_rs.validator_for(schema)
    tenant = make_tenant()
    answers = [
        client.get("/admin/users/nobody", headers=tenant.headers()),  # 404
        client.get("/admin/users"),  # 401
        client.post("/admin/roles", json={"name": ""}, headers=tenant.headers()),  # 400 with details
        client.post("/auth/login", json={"email": "x@y.co", "password": "nope"}),  # 401
    ]
    for answer in answers:
        assert answer.status_code >= 400
        validator.validate(answer.get_json())
    assert schema["required"] == ["error", "message"]
    assert schema["properties"]["error"]["required"] == ["code", "message"]
    # Every operation documents its error answers with it (the "default" response), except the
    # AI-report product's /api/* routes, whose old client reads `error` as a string.
    legacy = jsonschema_rs.validator_for(_inline(spec["components"]["schemas"]["LegacyError"], spec))
    for method, path, operation in _operations(spec):
        if path.startswith("/api/"):
            assert operation["responses"]["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/LegacyError"
            }, (method, path)
            continue
        assert operation["responses"]["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}, (
            method,
            path,
        )
    for answer in (
        client.get("/api/library"),  # 401
        client.get("/api/report/status?id=nope", headers=tenant.headers()),  # 404
        client.post("/api/upload/create", json={}, headers=tenant.headers()),  # 400
    ):
        assert answer.status_code >= 400
        legacy.validate(answer.get_json())
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"]["schema"]
    assert default == {"$ref": "#/components/schemas/Error"}


def _inline(schema: Any, spec: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], spec)
        return {key: _inline(value, spec) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, spec) for item in schema]
    return schema


def test_job_routes_document_idempotency_key_prefer_and_429(client):
    spec = client.get("/openapi.json").get_json()
    for method, path in JOB_ROUTES:
        operation = spec["paths"][path][method]
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert {"Idempotency-Key", "Prefer"} <= headers, (method, path)
        assert "429" in operation["responses"], (method, path)
    for path in ("/auth/login", "/auth/admin/login", "/auth/refresh", "/auth/set-password"):
        assert "429" in spec["paths"][path]["post"]["responses"], path
