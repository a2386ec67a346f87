"""CSV preview over HTTP: row checks, limits and bad input (no worker needed)."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app import db, runtime
from app.features.company.domains import add_initial_domains
from app.features.users import csv_import
from app.features.users.models import CsvImportPreview


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def preview(client, tenant, text: str | bytes, headers: dict[str, str] | None = None):
    return client.post(
        "/admin/users/csv/preview", json={"fileContent": b64(text)}, headers=headers or tenant.headers()
    )


def test_template_download(client, make_tenant):
    tenant = make_tenant()
    response = client.get("/admin/users/csv/template", headers=tenant.headers())
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="users_template.csv"'
    assert response.get_data(as_text=True).startswith(
        '"nome","email","departamento","cargo","email_gestor"\n'
    )


def test_preview_requires_the_permission(client, make_tenant, make_user):
    tenant = make_tenant()
    _, token = make_user(tenant.company_id, "Employee")
    response = client.post(
        "/admin/users/csv/preview",
        json={"fileContent": b64("nome,email\nAna,a@x.com\n")},
        headers=tenant.headers(token),
    )
    assert response.status_code == 403


def test_preview_answers_the_contract_shape_and_checks_every_rule(client, make_tenant):
    tenant = make_tenant(admin_email="boss@acme.com")
    with db.session_scope() as session:
        add_initial_domains(session, tenant.company_id, ["acme.com", "acme.com.br"])
    text = "\n".join(
        [
            "nome,email,departamento,cargo,email_gestor",
            "Ana Souza,ANA@acme.com,Tecnologia,Dev,boss@acme.com",  # 1 valid, manager in company
            "B,b@acme.com,,,",  # 2 name too short
            "Carla,not-an-email,,,",  # 3 invalid email
            "Dan,dan@other.com,,,",  # 4 wrong domain
            "Ana Dup,ana@ACME.com,,,",  # 5 duplicate in file (case-insensitive)
            "Boss Again,boss@acme.com,,,",  # 6 already in company
            "Eva,eva@acme.com.br,,,nobody@acme.com",  # 7 manager not found
            "Fred,fred@acme.com,,,fred@acme.com",  # 8 own manager
            "Gil,gil@acme.com,,,hal@acme.com",  # 9 cycle gil -> hal -> gil
            "Hal,hal@acme.com,,,gil@acme.com",  # 10
            "Ivo,ivo@acme.com,Ops,,ana@acme.com",  # 11 valid, manager in file
            "Jo,jo@acme.com,,,carla",  # 12 invalid manager email
        ]
    )
    response = preview(client, tenant, text)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {
        "previewId",
        "totalRows",
        "validRows",
        "rowsWithErrors",
        "preview",
        "summary",
        "expiresAt",
    }
    assert (body["totalRows"], body["validRows"], body["rowsWithErrors"]) == (12, 2, 10)
    assert body["summary"] == {"toCreate": 2, "toUpdate": 0, "errors": 10}
    rows = {r["rowNumber"]: r for r in body["preview"]}
    assert rows[1] == {
        "rowNumber": 1,
        "name": "Ana Souza",
        "email": "ana@acme.com",
        "department": "Tecnologia",
        "position": "Dev",
        "managerEmail": "boss@acme.com",
        "status": "valid",
        "errors": [],
        "action": "create",
    }
    assert "department" not in rows[2] and "action" not in rows[2]
    assert rows[2]["errors"] == [csv_import.NAME_TOO_SHORT]
    assert rows[3]["errors"] == [csv_import.INVALID_EMAIL]
    assert "not one of the company's domains" in rows[4]["errors"][0]
    assert rows[5]["errors"][0].startswith(csv_import.DUPLICATE_IN_FILE)
    assert rows[6]["errors"] == [csv_import.EXISTS_IN_COMPANY]
    assert rows[7]["errors"] == [csv_import.MANAGER_NOT_FOUND]
    assert rows[8]["errors"] == [csv_import.OWN_MANAGER]
    assert rows[9]["errors"][0].startswith(csv_import.MANAGER_CYCLE)
    assert rows[10]["errors"][0].startswith(csv_import.MANAGER_CYCLE)
    assert rows[11]["status"] == "valid"
    assert rows[12]["errors"] == [csv_import.INVALID_MANAGER_EMAIL]
    with db.session_scope() as session:  # stored server-side, for any replica to import
        stored = session.get_one(CsvImportPreview, body["previewId"])
        assert stored.company_id == tenant.company_id and stored.total_rows == 12


def test_multipart_upload_and_latin1(client, make_tenant):
    tenant = make_tenant()
    data = "nome;email;departamento\nJoão;joao@x.com;Operações\n".encode("latin-1")
    response = client.post(
        "/admin/users/csv/preview",
        data={"file": (io.BytesIO(data), "users.csv", "text/csv")},
        content_type="multipart/form-data",
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.get_json()
    [row] = response.get_json()["preview"]
    assert (row["name"], row["department"], row["status"]) == ("João", "Operações", "valid")


def test_bad_files_get_a_clear_400(client, make_tenant, settings):
    runtime.init(replace(settings, csv_max_rows=5))
    tenant = make_tenant()
    cases = {
        "": "EMPTY_FILE",
        "nome,email\n": "EMPTY_FILE",
        "nome,departamento\nAna,Ops\n": "MISSING_COLUMN",
        "nome,email\n" + "".join(f"U {i},u{i}@x.com\n" for i in range(6)): "TOO_MANY_ROWS",
    }
    for text, code in cases.items():
        response = preview(client, tenant, text)
        assert response.status_code == 400, (text, response.get_json())
        assert response.get_json()["error"]["code"] == code
        assert response.get_json()["message"]
    binary = client.post(
        "/admin/users/csv/preview", json={"fileContent": b64(b"\x00\x01PK\x03\x04")}, headers=tenant.headers()
    )
    assert (binary.status_code, binary.get_json()["error"]["code"]) == (400, "NOT_TEXT")
    for body in ({}, {"fileContent": 12}, {"fileContent": "%%% not base64 %%%"}):
        response = client.post("/admin/users/csv/preview", json=body, headers=tenant.headers())
        assert response.status_code == 400, body
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(CsvImportPreview)) == 0


def test_oversized_bodies_are_refused_with_413_before_being_read(client, make_tenant, settings):
    runtime.init(replace(settings, csv_max_bytes=1024))
    tenant = make_tenant()
    big = "nome,email\n" + "".join(f"User {i},user{i}@x.com\n" for i in range(200))
    response = preview(client, tenant, big)
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE" and "limit" in body["message"]
    # No Content-Length (chunked): the body is cut off at the limit while streaming.
    builder = EnvironBuilder(
        path="/admin/users/csv/preview",
        method="POST",
        headers=tenant.headers(),
        content_type="application/json",
        input_stream=io.BytesIO(b'{"fileContent": "' + b"A" * 8192 + b'"}'),
    )
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    app_iter, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status.startswith("413"), status
    assert b"PAYLOAD_TOO_LARGE" in b"".join(app_iter)
    # Just under the limit still works.
    small = "nome,email\n" + "".join(f"U{i},u{i}@x.com\n" for i in range(10))
    assert preview(client, tenant, small).status_code == 200


def test_previews_are_scoped_to_the_company_and_expire(client, make_tenant):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    preview_id = preview(client, acme, "nome,email\nAna,ana@x.com\n").get_json()["previewId"]
    other = client.post("/admin/users/csv/import", json={"previewId": preview_id}, headers=globex.headers())
    assert (other.status_code, other.get_json()["message"]) == (400, csv_import.PREVIEW_NOT_FOUND)
    assert client.get(f"/admin/users/csv/preview/{preview_id}", headers=globex.headers()).status_code == 404
    assert client.get(f"/admin/users/csv/preview/{preview_id}", headers=acme.headers()).status_code == 200
    with db.session_scope() as session:
        row = session.get_one(CsvImportPreview, preview_id)
        row.expires_at = db.utcnow() - csv_import.PREVIEW_TTL
    expired = client.post("/admin/users/csv/import", json={"previewId": preview_id}, headers=acme.headers())
    assert (expired.status_code, expired.get_json()["message"]) == (400, csv_import.PREVIEW_NOT_FOUND)
    from app.features.users.scheduled import prune_csv_previews

    assert prune_csv_previews() == {"previews_deleted": 1}


def test_unknown_confirmed_rows_are_refused(client, make_tenant):
    tenant = make_tenant()
    preview_id = preview(client, tenant, "nome,email\nAna,ana@x.com\n").get_json()["previewId"]
    response = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id, "confirmedRows": [1, 7]},
        headers=tenant.headers(),
    )
    assert response.status_code == 400 and "7" in response.get_json()["message"]


def test_large_files_are_checked_by_a_job(client, make_tenant, settings, worker):
    runtime.init(replace(settings, csv_sync_check_rows=3))
    tenant = make_tenant()
    text = "nome,email\n" + "".join(f"User {i},u{i}@x.com\n" for i in range(5)) + "X,bad\n"
    accepted = preview(client, tenant, text, headers={**tenant.headers(), "Prefer": "respond-async"})
    assert accepted.status_code == 202
    job_id = accepted.get_json()["job_id"]
    assert client.get(f"/jobs/{job_id}", headers=tenant.headers()).get_json()["status"] == "queued"
    worker()
    job = client.get(f"/jobs/{job_id}", headers=tenant.headers()).get_json()
    assert job["status"] == "succeeded"
    assert job["result"]["totalRows"] == 6 and job["result"]["rowsWithErrors"] == 1
    full = client.get(f"/admin/users/csv/preview/{job['result']['previewId']}", headers=tenant.headers())
    assert full.status_code == 200 and full.get_json()["validRows"] == 5
