"""The CSV import at scale: rows streamed with COPY and checked and written with set-based SQL (a
fixed number of statements whatever the size, no statement handing the rows to Python), loops
and bad managers found across COPY batches, the email rule as SQL, and a preview gone before its
job answers PREVIEW_NOT_FOUND as the contract says."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask
from sqlalchemy import delete, event, func, select

from app import db, runtime
from app.features.identity.models import User
from app.features.users import csv_import
from app.features.users.models import CsvImportPreview, CsvImportRow, UserManager
from app.features.users.tasks import import_csv
from app.jobs import JobContext
from app.jobs.http import job_answer
from app.jobs.models import Job
from tests.test_import_csv import _assert_imported, staff_csv


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class _Statements:
    count: int = 0
    most_rows_returned: int = 0


@contextmanager
def _statements() -> Iterator[_Statements]:
    """Every statement SQLAlchemy sends, and the most rows any of them returned to Python."""
    seen = _Statements()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.count += 1
        if cursor.description is not None and cursor.rowcount > 0:
            seen.most_rows_returned = max(seen.most_rows_returned, cursor.rowcount)

    engine = db.engine()
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", after)


def _ctx(session: Any, company_id: str) -> JobContext:
    return JobContext(session, "test-job", csv_import.IMPORT_KIND, company_id, None, 1, lambda p: None)


def _preview_check_import(company_id: str, admin_id: str, text: str) -> tuple[_Statements, dict[str, Any]]:
    """The service path of a large file, in-process: preview (check left to the job), the check
    job's work, the import job's work; the statements of all three."""
    with _statements() as seen:
        with db.session_scope() as session:
            preview = csv_import.create_preview(
                session, company_id, admin_id, text.encode(), max_rows=100_000, check_up_to=0
            )
            preview_id = preview.id
        with db.session_scope() as session:
            csv_import.run_preview_check(session, preview_id, lambda p: None)
        with db.session_scope() as session:
            result = import_csv(_ctx(session, company_id), preview_id)
    return seen, result


def test_a_bigger_file_takes_the_same_statements_and_none_returns_its_rows(make_tenant, settings):
    """1,500 rows (past the old 1,000-row INSERT chunks) cost exactly the statements 30 rows do,
    and no statement hands more than a few rows back to Python: the rows travel by COPY and
    INSERT … SELECT."""
    runtime.init(replace(settings, import_send_invites=False))
    small_tenant = make_tenant("Small", admin_email="boss@acme.com")
    big_tenant = make_tenant("Big", admin_email="boss@acme.com")
    small, small_result = _preview_check_import(small_tenant.company_id, small_tenant.admin_id, staff_csv(30))
    big, big_result = _preview_check_import(big_tenant.company_id, big_tenant.admin_id, staff_csv(1500))
    assert small_result["report"]["created"] == 30 and big_result["report"]["created"] == 1500
    assert big.count == small.count
    assert big.most_rows_returned <= 10
    _assert_imported(big_tenant.company_id, 1500, big_tenant.admin_id)
    with db.session_scope() as session:  # the rows stayed with their preview, one per data row
        assert session.scalar(select(func.count()).select_from(CsvImportRow)) == 1530


# Managers across COPY batches of 2 rows: forward and backward references, a loop spanning
# batches, a row leading into a loop, and rows under bad rows.
_TANGLED = """nome,email,departamento,cargo,email_gestor
Ana,a@acme.com,Ops,,f@acme.com
Bia,b@acme.com,Ops,,a@acme.com
Caio,c@acme.com,,,boss@acme.com
Dani,d@acme.com,,,e@acme.com
Eva,e@acme.com,,,g@acme.com
Fabio,f@acme.com,,,c@acme.com
Gil,g@acme.com,,,d@acme.com
Hugo,h@acme.com,,,e@acme.com
Iris,i@acme.com,,,h@acme.com
Joao,j@acme.com,,,k@acme.com
Kim,k@acme.com,,,l@acme.com
Lia,l@acme.com,,,k@acme.com
"""


def test_manager_links_and_loops_across_copy_batches(client, make_tenant, settings, monkeypatch):
    monkeypatch.setattr(csv_import, "COPY_BATCH", 2)
    runtime.init(replace(settings, import_send_invites=False))
    tenant = make_tenant(admin_email="boss@acme.com")
    response = client.post(
        "/admin/users/csv/preview", json={"fileContent": _b64(_TANGLED)}, headers=tenant.headers()
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    errors = {r["rowNumber"]: r["errors"] for r in body["preview"]}
    loop = "Manager cycle: d@acme.com → e@acme.com → g@acme.com → d@acme.com"
    assert errors == {
        1: [],
        2: [],
        3: [],
        4: [loop],
        5: [loop],
        6: [],
        7: [loop],
        8: ["The manager's row 5 has errors"],  # leads into the loop
        9: ["The manager's row 8 has errors"],
        10: ["The manager's row 11 has errors"],  # j → k, and k ⇄ l is a loop named from k
        11: ["Manager cycle: k@acme.com → l@acme.com → k@acme.com"],
        12: ["Manager cycle: k@acme.com → l@acme.com → k@acme.com"],
    }
    assert (body["validRows"], body["rowsWithErrors"]) == (4, 8)

    with db.session_scope() as session:
        result = import_csv(_ctx(session, tenant.company_id), body["previewId"])
    assert result["report"] == {"created": 4, "updated": 0, "skipped": 8, "errors": []}
    with db.session_scope() as session:
        by_id = dict(session.execute(select(User.id, User.email)).tuples().all())
        links = {
            by_id[user]: by_id[manager]
            for user, manager in session.execute(select(UserManager.user_id, UserManager.manager_id))
        }
    assert links == {
        "a@acme.com": "f@acme.com",  # a later batch
        "b@acme.com": "a@acme.com",
        "c@acme.com": "boss@acme.com",  # already in the company
        "f@acme.com": "c@acme.com",
    }


def test_the_email_rule_in_sql_is_the_pattern(client, make_tenant):
    """The preview applies EMAIL_PATTERN (with the length and ".." rules) in Postgres exactly as
    Python's `re` reads it."""
    tenant = make_tenant()
    candidates = [
        "plain@x.com",
        "a_b+c.d-e@sub-domain.example.co",
        "o'brien@x.io",
        "weird!#$%&*/=?^`{|}~@x.com",
        "a..b@x.com",
        "a@b",
        "a@-b.com",
        "a@b-.com",
        "a@x.com.",
        "a b@x.com",
        "ünï@x.com",
        "a@ëx.com",
        "a@@x.com",
        "@x.com",
        "x" * 245 + "@x.com",  # 251 characters
        "x" * 250 + "@x.com",  # 256 characters
    ]
    rows = "".join(f"Person {i},{email}\n" for i, email in enumerate(candidates))
    response = client.post(
        "/admin/users/csv/preview",
        json={"fileContent": _b64("nome,email\n" + rows)},
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.get_json()
    got = {r["email"]: csv_import.INVALID_EMAIL not in r["errors"] for r in response.get_json()["preview"]}
    pattern = re.compile(csv_import.EMAIL_PATTERN)
    expected = {e: len(e) <= 254 and ".." not in e and bool(pattern.match(e)) for e in candidates}
    assert got == expected
    assert sum(expected.values()) == 5


def test_cells_that_look_like_copy_syntax_arrive_as_written(client, make_tenant):
    tenant = make_tenant()
    name = 'Ana "Nina"\n\\.\n\\N, \t\\'
    text = f'nome,email,departamento\n"{name.replace(chr(34), chr(34) * 2)}",ana@x.com,""\nB,b@x.com,\\N\n'
    response = client.post(
        "/admin/users/csv/preview", json={"fileContent": _b64(text)}, headers=tenant.headers()
    )
    assert response.status_code == 200, response.get_json()
    first, second = response.get_json()["preview"]
    assert (first["name"], first["status"], "department" in first) == (name, "valid", False)
    assert (second["department"], second["errors"]) == ("\\N", [csv_import.NAME_TOO_SHORT])


def _answer(app: Flask, job_id: str) -> tuple[int, dict[str, Any]]:
    with db.session_scope() as session:
        job = session.get_one(Job, job_id)
        assert job.status == "failed", (job.status, job.error)
        with app.test_request_context():
            response = job_answer(job)
    assert not isinstance(response, tuple)
    return response.status_code, response.get_json()


def test_an_import_whose_preview_is_gone_answers_400_preview_not_found(
    app, client, make_tenant, settings, worker
):
    runtime.init(replace(settings, import_send_invites=False))
    tenant = make_tenant(admin_email="boss@acme.com")
    preview_id = client.post(
        "/admin/users/csv/preview", json={"fileContent": _b64(staff_csv(3))}, headers=tenant.headers()
    ).get_json()["previewId"]
    accepted = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id},
        headers={**tenant.headers(), "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202
    with db.session_scope() as session:  # pruned (or its company's data removed) before the job ran
        session.execute(delete(CsvImportPreview).where(CsvImportPreview.id == preview_id))
    worker()
    status, body = _answer(app, accepted.get_json()["job_id"])
    assert (status, body["error"]["code"], body["message"]) == (
        400,
        "PREVIEW_NOT_FOUND",
        csv_import.PREVIEW_NOT_FOUND,
    )
    job = client.get(f"/jobs/{accepted.get_json()['job_id']}", headers=tenant.headers()).get_json()
    assert job["attempts"] == 1  # failed at once: retrying cannot bring the preview back
    assert (job["result"]["error"]["kind"], job["result"]["error"]["code"]) == (
        "Invalid",
        "PREVIEW_NOT_FOUND",
    )


def test_a_check_whose_preview_is_gone_answers_404_preview_not_found(
    app, client, make_tenant, settings, worker
):
    runtime.init(replace(settings, csv_sync_check_rows=2))
    tenant = make_tenant()
    accepted = client.post(
        "/admin/users/csv/preview",
        json={"fileContent": _b64(staff_csv(5))},
        headers={**tenant.headers(), "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202
    with db.session_scope() as session:
        session.execute(delete(CsvImportPreview))
    worker()
    status, body = _answer(app, accepted.get_json()["job_id"])
    assert (status, body["error"]["code"]) == (404, "PREVIEW_NOT_FOUND")  # as GET /csv/preview/<id>


def test_a_large_file_checked_by_a_job_then_its_body_streamed(client, make_tenant, settings, worker):
    """The large-file path end to end: 202, the job checks, GET streams the contract's body."""
    runtime.init(replace(settings, csv_sync_check_rows=10))
    tenant = make_tenant(admin_email="boss@acme.com")
    text = staff_csv(40).replace("User1@Acme.com", "User3@Acme.com")  # row 2 takes row 4's email
    accepted = client.post(
        "/admin/users/csv/preview",
        json={"fileContent": _b64(text)},
        headers={**tenant.headers(), "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202
    worker()
    job = client.get(f"/jobs/{accepted.get_json()['job_id']}", headers=tenant.headers()).get_json()
    preview_id = job["result"]["previewId"]
    full = client.get(f"/admin/users/csv/preview/{preview_id}", headers=tenant.headers())
    assert full.status_code == 200 and full.is_streamed
    body = full.get_json()
    assert (body["totalRows"], body["validRows"], body["rowsWithErrors"]) == (40, 29, 11)
    assert body["summary"] == {"toCreate": 29, "toUpdate": 0, "errors": 11}
    rows = {r["rowNumber"]: r for r in body["preview"]}
    assert list(rows) == list(range(1, 41))
    assert rows[4]["errors"] == [f"{csv_import.DUPLICATE_IN_FILE} (first in row 2)"]
    assert all(rows[n]["errors"] == [csv_import.MANAGER_NOT_FOUND] for n in range(12, 22))  # user1's people
    assert rows[1] == {
        "rowNumber": 1,
        "name": "User 0",
        "email": "user0@acme.com",
        "department": "Dept 0",
        "position": "Title 0",
        "managerEmail": "boss@acme.com",
        "status": "valid",
        "errors": [],
        "action": "create",
    }
    assert rows[12] == {
        "rowNumber": 12,
        "name": "User 11",
        "email": "user11@acme.com",
        "department": "Dept 4",
        "position": "Title 11",
        "managerEmail": "user1@acme.com",
        "status": "error",
        "errors": [csv_import.MANAGER_NOT_FOUND],
    }


def test_invites_fan_out_in_file_order_while_the_created_ids_are_streamed(make_tenant, settings, monkeypatch):
    monkeypatch.setattr(csv_import, "INVITE_JOB_SIZE", 4)
    tenant = make_tenant(admin_email="boss@acme.com")
    with db.session_scope() as session:
        preview_id = csv_import.create_preview(
            session, tenant.company_id, tenant.admin_id, staff_csv(10).encode(), max_rows=100, check_up_to=100
        ).id
    with db.session_scope() as session:
        result = import_csv(_ctx(session, tenant.company_id), preview_id, send_invites=True)
    with db.session_scope() as session:
        emails = dict(session.execute(select(User.id, User.email)).tuples().all())
        jobs = [session.get_one(Job, job_id) for job_id in result["inviteJobIds"]]
        batches = [[emails[user_id] for user_id in job.args["user_ids"]] for job in jobs]
        stored = session.get_one(CsvImportPreview, preview_id).report
    assert {job.kind for job in jobs} == {csv_import.INVITE_KIND}
    assert batches == [
        [f"user{i}@acme.com" for i in range(0, 4)],
        [f"user{i}@acme.com" for i in range(4, 8)],
        ["user8@acme.com", "user9@acme.com"],
    ]
    assert stored == result  # a re-run answers the same body, invite jobs included


def test_a_long_loop_is_named_by_its_first_people_on_each_row(client, make_tenant):
    """The text is repeated on every member's row: a loop of 12 names 10 of them and its size."""
    tenant = make_tenant()
    rows = "".join(f"P {i},p{i}@x.com,p{(i + 1) % 12}@x.com\n" for i in range(12))
    body = {"fileContent": _b64("nome,email,email_gestor\n" + rows)}
    response = client.post("/admin/users/csv/preview", json=body, headers=tenant.headers())
    assert response.status_code == 200, response.get_json()
    names = " → ".join(f"p{i}@x.com" for i in range(10))
    expected = [f"{csv_import.MANAGER_CYCLE}: {names} → … (12 people) → p0@x.com"]
    assert [r["errors"] for r in response.get_json()["preview"]] == [expected] * 12
