"""The CSV import as a job, through real workers: 1000 rows, all or nothing, idempotent, crash-safe."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from sqlalchemy import func, select, text

from app import db, runtime
from app.features.identity.models import Department, JobTitle, Role, User, UserRole
from app.features.users.models import CsvImportPreview, UserManager
from app.features.wallets.models import Wallet, WalletTransaction
from app.jobs.models import Job
from app.jobs.reconciler import reconcile
from tests.conftest import kill_tree, start_worker_process, wait_for


def staff_csv(count: int, first_manager: str = "boss@acme.com") -> str:
    """`count` people in a tree: user0 reports to an existing user, user i to user (i-1)//10."""
    lines = ["nome,email,departamento,cargo,email_gestor"]
    for i in range(count):
        manager = first_manager if i == 0 else f"user{(i - 1) // 10}@acme.com"
        lines.append(f"User {i},User{i}@Acme.com,Dept {i % 7},Title {i % 13},{manager}")
    return "\r\n".join(lines) + "\r\n"


def preview_id_of(client, tenant, csv_text: str) -> str:
    response = client.post(
        "/admin/users/csv/preview",
        json={"fileContent": base64.b64encode(csv_text.encode()).decode()},
        headers=tenant.headers(),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["previewId"]


def _job(job_id: str) -> Job:
    with db.session_scope() as session:
        return session.get_one(Job, job_id)


def _count(model, *where) -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _assert_imported(company_id: str, count: int, admin_id: str) -> None:
    with db.session_scope() as session:
        emails = session.scalars(
            select(User.email).where(User.company_id == company_id, User.id != admin_id)
        ).all()
        assert len(emails) == count and len(set(emails)) == count
        assert set(emails) == {f"user{i}@acme.com" for i in range(count)}
        ids = select(User.id).where(User.company_id == company_id, User.id != admin_id)
        wallets = session.execute(
            select(Wallet.compliment_balance, Wallet.redeemable_balance).where(Wallet.user_id.in_(ids))
        ).all()
        assert len(wallets) == count and set(wallets) == {(100, 0)}
        ledger = session.scalar(
            select(func.count())
            .select_from(WalletTransaction)
            .join(Wallet, Wallet.id == WalletTransaction.wallet_id)
            .where(Wallet.user_id.in_(ids), WalletTransaction.transaction_type == "RESET")
        )
        assert ledger == count
        employees = session.scalar(
            select(func.count())
            .select_from(UserRole)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id.in_(ids), Role.name == "Employee")
        )
        assert employees == count
        by_email = dict(
            session.execute(select(User.email, User.id).where(User.company_id == company_id)).tuples().all()
        )
        links = dict(
            session.execute(
                select(UserManager.user_id, UserManager.manager_id).where(
                    UserManager.company_id == company_id
                )
            )
            .tuples()
            .all()
        )
        assert len(links) == count
        assert links[by_email["user0@acme.com"]] == admin_id
        assert links[by_email["user15@acme.com"]] == by_email["user1@acme.com"]
        assert links[by_email[f"user{count - 1}@acme.com"]] == by_email[f"user{(count - 2) // 10}@acme.com"]
        assert (
            session.scalar(
                select(func.count()).select_from(Department).where(Department.company_id == company_id)
            )
            == 7
        )
        assert (
            session.scalar(
                select(func.count()).select_from(JobTitle).where(JobTitle.company_id == company_id)
            )
            == 13
        )


@pytest.mark.slow
def test_a_1000_row_file_through_preview_and_import(client, make_tenant, settings):
    runtime.init(replace(settings, sync_wait_seconds=60, import_send_invites=False))
    tenant = make_tenant(admin_email="boss@acme.com")
    preview_id = preview_id_of(client, tenant, staff_csv(1000))
    process = start_worker_process()
    try:
        legacy = client.post(
            "/admin/users/csv/import", json={"previewId": preview_id}, headers=tenant.headers()
        )
        assert legacy.status_code == 200, legacy.get_json()
        body = legacy.get_json()
        assert body == {
            "status": "completed",
            "report": {"created": 1000, "updated": 0, "skipped": 0, "errors": []},
        }
        # The same import again (a double click), asking for the async answer: 202, the same job.
        again = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview_id},
            headers={**tenant.headers(), "Prefer": "respond-async"},
        )
        assert again.status_code == 202
        job_id = again.get_json()["job_id"]
        assert again.headers["Location"] == f"/jobs/{job_id}"
        job = client.get(f"/jobs/{job_id}", headers=tenant.headers()).get_json()
        assert (job["kind"], job["status"], job["progress"]) == ("users.import_csv", "succeeded", 100)
        assert job["result"] == body
    finally:
        kill_tree(process)
    _assert_imported(tenant.company_id, 1000, tenant.admin_id)
    with db.session_scope() as session:
        assert session.get_one(CsvImportPreview, preview_id).status == "consumed"


def test_a_respond_async_import_answers_202_and_the_result_is_at_jobs(client, make_tenant, settings, worker):
    runtime.init(replace(settings, import_send_invites=False))
    tenant = make_tenant(admin_email="boss@acme.com")
    preview_id = preview_id_of(client, tenant, staff_csv(30))
    accepted = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id},
        headers={**tenant.headers(), "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202 and accepted.headers["Preference-Applied"] == "respond-async"
    worker()
    job = client.get(f"/jobs/{accepted.get_json()['job_id']}", headers=tenant.headers()).get_json()
    assert (job["status"], job["progress"]) == ("succeeded", 100)
    assert job["result"] == {
        "status": "completed",
        "report": {"created": 30, "updated": 0, "skipped": 0, "errors": []},
    }
    # A re-run of the finished job (as after a lost acknowledgement) creates nothing twice.
    from app.features.users.tasks import import_csv
    from app.jobs import JobContext

    with db.session_scope() as session:
        ctx = JobContext(session, "rerun", "users.import_csv", tenant.company_id, None, 2, lambda p: None)
        assert import_csv(ctx, preview_id)["report"]["created"] == 30
    assert _count(User, User.company_id == tenant.company_id) == 31


@pytest.mark.slow
def test_one_bad_confirmed_row_imports_nothing_and_names_it(client, make_tenant, settings):
    runtime.init(replace(settings, sync_wait_seconds=60, import_send_invites=False))
    tenant = make_tenant(admin_email="boss@acme.com")
    rows = staff_csv(5).replace("User2@Acme.com", "user2-at-acme.com")
    preview_id = preview_id_of(client, tenant, rows)
    process = start_worker_process()
    try:
        failed = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview_id, "confirmedRows": [1, 2, 3, 4, 5]},
            headers=tenant.headers(),
        )
        assert failed.status_code == 422, failed.get_json()
        body = failed.get_json()
        assert body["status"] == "failed"
        assert body["report"]["created"] == 0
        assert body["report"]["errors"][0] == {
            "rowNumber": 3,
            "email": "user2-at-acme.com",
            "reason": "Invalid email",
        }
        assert "row 3" in body["message"] and body["error"]["code"] == "IMPORT_FAILED"
        assert _count(User, User.company_id == tenant.company_id) == 1  # only the admin
        assert _count(Department, Department.company_id == tenant.company_id) == 0

        # Someone creates user1 between preview and import: checked again, nothing imported.
        with db.session_scope() as session:
            session.add(User(company_id=tenant.company_id, email="user1@acme.com", name="Early Bird"))
        raced = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview_id, "confirmedRows": [1, 2]},
            headers=tenant.headers(),
        )
        assert raced.status_code == 422
        assert raced.get_json()["report"]["errors"] == [
            {"rowNumber": 2, "email": "user1@acme.com", "reason": "Email already exists in company"}
        ]
        assert _count(User, User.company_id == tenant.company_id) == 2

        # The preview is still usable for the rows that are fine.
        good = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview_id, "confirmedRows": [1]},
            headers=tenant.headers(),
        )
        assert good.status_code == 200, good.get_json()
        assert good.get_json()["report"] == {"created": 1, "updated": 0, "skipped": 4, "errors": []}
    finally:
        kill_tree(process)


@pytest.mark.slow
def test_killing_the_worker_mid_import_leaves_one_copy_of_each_user(client, make_tenant, settings, worker):
    runtime.init(replace(settings, import_send_invites=False))
    tenant = make_tenant(admin_email="boss@acme.com")
    preview_id = preview_id_of(client, tenant, staff_csv(1000))
    # Hold the Employee role row: the import blocks right after inserting its users (the role links
    # need a key-share lock on it), so the kill lands mid-transaction, deterministically.
    blocker = db.engine().connect()
    hold = blocker.begin()
    blocker.execute(
        text("SELECT id FROM roles WHERE company_id = :c AND name = 'Employee' FOR UPDATE"),
        {"c": tenant.company_id},
    )
    process = start_worker_process()
    try:
        accepted = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview_id},
            headers={**tenant.headers(), "Prefer": "respond-async"},
        )
        job_id = accepted.get_json()["job_id"]
        wait_for(lambda: _job(job_id).progress >= 60, timeout=60)  # users inserted, not committed
        assert _job(job_id).status == "started"
    finally:
        kill_tree(process)
        hold.rollback()
        blocker.close()
    assert _count(User, User.company_id == tenant.company_id) == 1  # the killed run left nothing
    assert wait_for(lambda: reconcile().republished, timeout=30) == [job_id]
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert job.result["report"]["created"] == 1000
    _assert_imported(tenant.company_id, 1000, tenant.admin_id)
