"""Attacks on the set-based CSV import through HTTP: COPY-syntax cells, odd sizes, case and
whitespace tricks, confirmedRows abuse, foreign ids, concurrent and repeated imports."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select, update

from app import db, runtime
from app.features.identity.models import Company, User
from app.features.users import csv_import
from app.jobs.models import Job
from tests.conftest import wait_for
from tests.test_weekly_reset_helpers import make_company


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _preview(client: Any, tenant: Any, text: str) -> Any:
    return client.post("/admin/users/csv/preview", json={"fileContent": _b64(text)}, headers=tenant.headers())


def _users(company_id: str) -> int:
    with db.session_scope() as session:
        query = select(func.count()).select_from(User).where(User.company_id == company_id)
        return int(session.scalar(query) or 0)


def test_copy_syntax_cr_and_huge_cells_never_500(client, make_tenant):
    tenant = make_tenant()
    long_name = "N" * 10_000
    text = (
        "nome,email,departamento,cargo\r\n"
        '"\\.",dot@x.com,\\.,\\N\r\n'  # COPY's end marker and NULL as whole cells
        f'"a\rb\r\nc",cr@x.com,"=HYPERLINK(""http://e"")",\t\r\n'
        f"{long_name},long@x.com,{'D' * 10_000},\r\n"
        "Idn,user@xn--bcher-kva.example,,\r\n"
        "Uni,ünï@bücher.de,,\r\n"
        f"Big,{'e' * 10_000}@x.com,,\r\n"
    )
    response = _preview(client, tenant, text)
    assert response.status_code == 200, response.get_json()
    rows = response.get_json()["preview"]
    assert [r["name"] for r in rows][:2] == ["\\.", "a\rb\r\nc"]
    assert (rows[0]["department"], rows[0]["position"]) == ("\\.", "\\N")
    assert rows[1]["department"] == '=HYPERLINK("http://e")' and "position" not in rows[1]
    assert rows[2]["errors"] == [csv_import.NAME_TOO_LONG, csv_import.DEPARTMENT_TOO_LONG]
    assert rows[3]["status"] == "valid"
    assert rows[4]["errors"] == [csv_import.INVALID_EMAIL] and rows[5]["errors"] == [csv_import.INVALID_EMAIL]


def test_a_cell_past_the_csv_field_limit_is_a_400_not_a_500(client, make_tenant):
    tenant = make_tenant()
    response = _preview(client, tenant, f"nome,email\n{'x' * 200_000},a@x.com\n")
    assert response.status_code == 400, response.get_json()
    assert _preview(client, tenant, "nome,email\nAna,a@x.com\n").status_code == 200  # session usable


def test_case_and_whitespace_twins_and_self_managers(client, make_tenant):
    tenant = make_tenant(admin_email="Boss@Acme.com")
    text = (
        "nome,email,email_gestor\n"
        "Ana,  Ana@Acme.com ,\n"
        "Ana2,ana@ACME.COM,\n"
        "Bia,bia@acme.com, BIA@acme.COM \n"
        "Boss,BOSS@acme.com,\n"
        "Caio,caio@acme.com,boss@ACME.com\n"
    )
    response = _preview(client, tenant, text)
    assert response.status_code == 200, response.get_json()
    errors = [r["errors"] for r in response.get_json()["preview"]]
    assert errors == [
        [],
        [f"{csv_import.DUPLICATE_IN_FILE} (first in row 1)"],
        [csv_import.OWN_MANAGER],
        [csv_import.EXISTS_IN_COMPANY],
        [],
    ]


def test_header_only_too_many_rows_and_too_large(client, make_tenant, settings):
    runtime.init(replace(settings, csv_max_rows=3, csv_max_bytes=1000))
    tenant = make_tenant()
    only_header = _preview(client, tenant, "nome,email\n\n\n")
    assert (only_header.status_code, only_header.get_json()["error"]["code"]) == (400, "EMPTY_FILE")
    rows = "".join(f"P {i},p{i}@x.com\n" for i in range(4))
    too_many = _preview(client, tenant, "nome,email\n" + rows)
    assert (too_many.status_code, too_many.get_json()["error"]["code"]) == (400, "TOO_MANY_ROWS")
    big = "nome,email\n" + "A" * (1000 - 11 + 1)
    assert len(big.encode()) == 1001
    assert _preview(client, tenant, big).status_code == 413
    ok = _preview(client, tenant, "nome,email\n" + rows[: rows.index("P 3")])
    assert ok.status_code == 200 and ok.get_json()["totalRows"] == 3


def test_confirmed_rows_abuse_is_refused_before_any_job(client, make_tenant, settings, worker):
    runtime.init(replace(settings, import_send_invites=False))
    tenant = make_tenant()
    preview_id = _preview(client, tenant, "nome,email\nAna,a@x.com\nBia,b@x.com\n").get_json()["previewId"]
    for rows in ([10**30], [2**31], [-1], [0], ["abc"], [None], [True], [1.5], "1", {"a": 1}):
        response = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview_id, "confirmedRows": rows},
            headers={**tenant.headers(), "Prefer": "respond-async"},
        )
        assert response.status_code == 400, (rows, response.status_code, response.get_json())
    duplicated = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id, "confirmedRows": [2, "2", 2]},
        headers={**tenant.headers(), "Prefer": "respond-async"},
    )
    assert duplicated.status_code == 202
    worker()
    job = client.get(f"/jobs/{duplicated.get_json()['job_id']}", headers=tenant.headers()).get_json()
    assert job["result"]["report"] == {"created": 1, "updated": 0, "skipped": 1, "errors": []}
    assert _users(tenant.company_id) == 2


def test_foreign_preview_and_job_ids_are_not_usable(client, make_tenant, settings, worker):
    runtime.init(replace(settings, import_send_invites=False))
    ours = make_tenant("Ours")
    theirs = make_tenant("Theirs")
    preview_id = _preview(client, ours, "nome,email\nAna,a@x.com\n").get_json()["previewId"]
    assert client.get(f"/admin/users/csv/preview/{preview_id}", headers=theirs.headers()).status_code == 404
    stolen = client.post("/admin/users/csv/import", json={"previewId": preview_id}, headers=theirs.headers())
    assert (stolen.status_code, stolen.get_json()["error"]["code"]) == (400, "PREVIEW_NOT_FOUND")
    accepted = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id},
        headers={**ours.headers(), "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202
    job_id = accepted.get_json()["job_id"]
    assert client.get(f"/jobs/{job_id}", headers=theirs.headers()).status_code == 404
    worker()
    again = client.post("/admin/users/csv/import", json={"previewId": preview_id}, headers=theirs.headers())
    assert again.status_code == 400
    assert _users(theirs.company_id) == 1 and _users(ours.company_id) == 2


def test_two_concurrent_imports_of_one_preview_create_each_user_once(app, make_tenant, settings, worker):
    runtime.init(replace(settings, import_send_invites=False))
    tenant = make_tenant()
    rows = "".join(f"P {i},p{i}@x.com\n" for i in range(50))
    with app.test_client() as setup:
        preview_id = _preview(setup, tenant, "nome,email\n" + rows).get_json()["previewId"]
    answers: list[Any] = []
    barrier = threading.Barrier(2)

    def submit() -> None:
        with app.test_client() as own:
            barrier.wait()
            answers.append(
                own.post(
                    "/admin/users/csv/import",
                    json={"previewId": preview_id},
                    headers={**tenant.headers(), "Prefer": "respond-async"},
                )
            )

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [202, 202], [a.get_json() for a in answers]
    worker()
    with app.test_client() as check:
        results = [
            check.get(f"/jobs/{a.get_json()['job_id']}", headers=tenant.headers()).get_json() for a in answers
        ]
        assert all(r["status"] == "succeeded" for r in results), results
        assert results[0]["result"] == results[1]["result"]
        assert results[0]["result"]["report"]["created"] == 50
        body = {"previewId": preview_id}
        replay = check.post("/admin/users/csv/import", json=body, headers=tenant.headers())
        assert replay.status_code == 200 and replay.get_json()["report"]["created"] == 50
    assert _users(tenant.company_id) == 51


def test_a_company_reset_whose_company_was_deactivated_meanwhile_is_not_a_500(
    app, make_tenant, settings, worker
):
    """POST /wallets/reset-weekly-balance?companyId=…: the company is active when the job is
    queued and deactivated before it runs; the job finds no company to reset."""
    runtime.init(replace(settings, sync_wait_seconds=30))
    operator = make_tenant("Platform", super_admin=True)
    target, _ = make_company("Target", users=2)

    answers: list[Any] = []

    def post() -> None:
        with app.test_client() as own:
            url = f"/wallets/reset-weekly-balance?companyId={target}"
            answers.append(own.post(url, headers=operator.headers()))

    def queued() -> bool:
        with db.session_scope() as session:
            return session.scalar(select(Job.id).where(Job.kind == "wallets.reset_weekly")) is not None

    request = threading.Thread(target=post)
    request.start()
    try:
        wait_for(queued)
        with db.session_scope() as session:
            session.execute(update(Company).where(Company.id == target).values(is_active=False))
        worker()
    finally:
        request.join()
    [response] = answers
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message"] == "Company is not active"
