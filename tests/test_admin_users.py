"""/admin/users (contract §7) and the §7.1 helpers: the users screens' calls replayed, validation
without side effects, CSV export neutralising formulas, tenancy and permissions."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from app import db
from app.features.audit.models import AuditLog
from app.features.auth import service as auth_service
from app.features.company import domains
from app.features.identity.models import Department, JobTitle, User, UserRole
from app.features.users.admin_service import safe_cell
from app.features.wallets.models import Wallet

LIST_ITEM = {"id", "name", "email", "avatar", "isActive", "createdAt", "lastLogin", "welcomeEmailSendCount"}


def _setup(make_tenant):
    tenant = make_tenant("Acme", "boss@acme.com")
    with db.session_scope() as session:
        domains.add_initial_domains(session, tenant.company_id, ["acme.com"])
        dept = Department(company_id=tenant.company_id, name="Engineering")
        session.add(dept)
        session.flush()
        title = JobTitle(company_id=tenant.company_id, name="Engineer", department_id=dept.id)
        session.add(title)
        session.flush()
        return tenant, dept.id, title.id


def _counts() -> tuple[int, int, int]:
    with db.session_scope() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(m)) or 0) for m in (User, Wallet, AuditLog)
        )  # type: ignore[return-value]


def test_users_screens_replay(client, make_tenant):
    tenant, dept, title = _setup(make_tenant)
    h = tenant.headers()
    created = client.post(
        "/admin/users",
        json={"name": "Ana Souza", "email": "Ana@Acme.com", "departmentId": dept, "jobTitleId": title,
              "isActive": True},
        headers=h,
    )  # fmt: skip
    assert created.status_code == 201, created.json
    assert {"id", "name", "email", "isActive", "createdAt"} <= set(created.json)
    assert created.json["email"] == "ana@acme.com" and created.json["createdAt"].endswith("Z")
    # The API's own set-password page (the frontend has none), on PUBLIC_API_URL.
    assert created.json["temporaryPasswordUrl"].startswith("http://localhost:8000/set-password?token=")
    user_id = created.json["id"]
    with db.session_scope() as session:
        assert session.scalar(select(Wallet.id).where(Wallet.user_id == user_id)) is not None
        assert (
            session.scalar(select(func.count()).select_from(UserRole).where(UserRole.user_id == user_id)) == 1
        )

    page = client.get("/admin/users?page=1&limit=20&search=ANA&status=active", headers=h)
    assert page.status_code == 200
    assert set(page.json) == {"data", "totalCount", "pageCount", "currentPage"}
    assert (page.json["totalCount"], page.json["pageCount"], page.json["currentPage"]) == (1, 1, 1)
    item = page.json["data"][0]
    assert set(item) == LIST_ITEM | {"department", "position"}
    assert item["department"] == {"id": dept, "name": "Engineering"}
    assert item["position"] == {"id": title, "name": "Engineer"}
    admin_item = client.get("/admin/users?search=boss", headers=h).json["data"][0]
    assert set(admin_item) == LIST_ITEM  # no department / position keys when the user has none
    assert client.get(f"/admin/users?jobTitleId={title}", headers=h).json["totalCount"] == 1
    assert client.get(f"/admin/users?departmentId={dept}", headers=h).json["totalCount"] == 1
    assert client.get("/admin/users?status=inactive", headers=h).json["totalCount"] == 0
    assert client.get("/admin/users?limit=1&page=2", headers=h).json["pageCount"] == 2

    detail = client.get(f"/admin/users/{user_id}", headers=h)
    assert detail.status_code == 200
    assert set(detail.json) == LIST_ITEM | {"department", "position", "updatedAt", "statistics"}
    assert detail.json["statistics"] == {
        "complimentsSent": 0, "complimentsReceived": 0, "totalCoins": 0, "redeemptions": 0,
    }  # fmt: skip

    patched = client.patch(
        f"/admin/users/{user_id}", json={"name": "Ana S.", "departmentId": None}, headers=h
    )
    assert patched.status_code == 200, patched.json
    assert set(patched.json) == {"id", "name", "email", "isActive", "updatedAt"}
    after = client.get(f"/admin/users/{user_id}", headers=h).json
    assert after["name"] == "Ana S." and "department" not in after and after["position"]["id"] == title

    exported = client.post(
        "/admin/users/bulk/actions", json={"userIds": [user_id], "action": "export"}, headers=h
    )
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    assert exported.headers["Content-Disposition"] == 'attachment; filename="users_export.csv"'
    lines = exported.get_data(as_text=True).split("\n")
    assert lines[0] == '"id","name","email","department","position","isActive","createdAt"'
    assert lines[1] == f'"{user_id}","Ana S.","ana@acme.com","","Engineer","true","{after["createdAt"]}"'

    bulk = client.post(
        "/admin/users/bulk/actions", json={"userIds": [user_id], "action": "deactivate"}, headers=h
    )
    assert bulk.json == {"updated": 1}
    bulk = client.post(
        "/admin/users/bulk/actions", json={"userIds": [user_id], "action": "activate"}, headers=h
    )
    assert bulk.json == {"updated": 1}

    reset = client.put(f"/admin/users/{user_id}/reset-password", headers=h)
    assert reset.status_code == 200
    assert set(reset.json) == {"message", "ticketUrl", "expiresIn"} and reset.json["expiresIn"] == "24 hours"
    token = reset.json["ticketUrl"].split("token=", 1)[1]
    with db.session_scope() as session:  # the link really sets the password, once
        auth_service.consume_password_setup_token(session, token, "a-Strong-passw0rd!")
    assert (
        client.post("/auth/set-password", json={"token": token, "password": "a-Strong-passw0rd!"}).status_code
        == 400
    )

    assert client.delete(f"/admin/users/{user_id}", headers=h).status_code == 204
    assert client.get(f"/admin/users/{user_id}", headers=h).json["isActive"] is False

    by_dept = client.get(f"/job-titles/by-department?departmentId={dept}", headers=h)
    assert by_dept.json == [{"id": title, "name": "Engineer", "userCount": 0}]
    assert client.get("/job-titles/by-department", headers=h).status_code == 400
    assert client.get("/job-titles/by-department?departmentId=nope", headers=h).status_code == 404

    with db.session_scope() as session:
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.entity_id == user_id)))
    assert {"user.create", "user.update", "user.reset_password", "user.delete"} <= actions


def test_csv_export_neutralises_formulas(client, make_tenant):
    tenant, _, _ = _setup(make_tenant)
    names = ["=cmd()", "+SUM(A1)", "-2+3", "@foo", "Plain"]
    ids = [
        client.post(
            "/admin/users", json={"name": n + "xx", "email": f"u{i}@acme.com"}, headers=tenant.headers()
        ).json["id"]
        for i, n in enumerate(names)
    ]
    body = client.post(
        "/admin/users/bulk/actions", json={"userIds": ids, "action": "export"}, headers=tenant.headers()
    ).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    got = {r[0]: r[1] for r in rows[1:]}
    assert [got[i] for i in ids] == ["'=cmd()xx", "'+SUM(A1)xx", "'-2+3xx", "'@fooxx", "Plainxx"]
    assert all(line.startswith('"') and line.endswith('"') for line in body.strip("\n").split("\n"))
    # Names are stripped on input, so tab / CR starts are checked on the cell function itself.
    assert [safe_cell(v) for v in ("\tx", "\rx", "x=1")] == ["'\tx", "'\rx", "x=1"]


def test_validation_failures_change_nothing(client, make_tenant):
    tenant, dept, _ = _setup(make_tenant)
    other, _, _ = _setup(lambda *a: make_tenant("Other", "boss@other.com"))
    with db.session_scope() as session:
        foreign_dept = Department(company_id=other.company_id, name="Foreign")
        session.add(foreign_dept)
        session.flush()
        foreign = foreign_dept.id
    client.post("/admin/users", json={"name": "Taken", "email": "taken@acme.com"}, headers=tenant.headers())
    before = _counts()
    cases = [
        ({"name": "X", "email": "x@acme.com"}, 400),
        ({"name": "Valid", "email": "not-an-email"}, 400),
        ({"name": "Valid", "email": "x@evil.com"}, 400),
        ({"name": "Valid", "email": "TAKEN@acme.com"}, 409),
        ({"name": "Valid", "email": "y@acme.com", "departmentId": foreign}, 400),
        ({"name": "Valid", "email": "y@acme.com", "jobTitleId": "nope"}, 400),
        ({"email": "y@acme.com"}, 400),
    ]
    for body, status in cases:
        response = client.post("/admin/users", json=body, headers=tenant.headers())
        assert response.status_code == status, (body, response.json)
        assert response.json["message"]
    admin = tenant.admin_id
    for path, method, body, status in [
        (f"/admin/users/{admin}", "patch", {"email": "taken@acme.com"}, 409),
        (f"/admin/users/{admin}", "patch", {"departmentId": foreign}, 400),
        (f"/admin/users/{admin}", "patch", {"isActive": False}, 400),
        (f"/admin/users/{admin}", "delete", None, 400),
        ("/admin/users/bulk/actions", "post", {"userIds": [], "action": "activate"}, 400),
        ("/admin/users/bulk/actions", "post", {"userIds": [admin], "action": "nuke"}, 400),
        ("/admin/users/bulk/actions", "post", {"userIds": [admin], "action": "deactivate"}, 400),
        ("/admin/users?page=0", "get", None, 400),
        ("/admin/users?limit=101", "get", None, 400),
    ]:
        response = getattr(client, method)(path, json=body, headers=tenant.headers())
        assert response.status_code == status, (path, body, response.json)
        assert response.json["message"]
    assert _counts() == before
    _ = dept


def test_send_email_queues_the_welcome_job(client, make_tenant):
    from app.jobs.models import Job
    from app.jobs.registry import get_task

    try:
        get_task("users.send_welcome_email")
    except LookupError:
        pytest.skip("the users.send_welcome_email task kind is not registered yet (issue 5)")
    tenant, _, _ = _setup(make_tenant)
    created = client.post(
        "/admin/users",
        json={"name": "Mail Me", "email": "mail@acme.com", "sendEmail": True},
        headers=tenant.headers(),
    )
    assert created.status_code == 201, created.json
    with db.session_scope() as session:
        job = session.get(Job, created.json["welcomeEmailJobId"])
        assert job.kind == "users.send_welcome_email" and job.args == {"user_id": created.json["id"]}


def test_tenancy_and_permissions(client, make_tenant, make_user):
    tenant, dept, _ = _setup(make_tenant)
    other = make_tenant("Other")
    theirs = other.admin_id
    h = tenant.headers()
    for method, path, body in [
        ("get", f"/admin/users/{theirs}", None),
        ("patch", f"/admin/users/{theirs}", {"name": "Hacked"}),
        ("delete", f"/admin/users/{theirs}", None),
        ("put", f"/admin/users/{theirs}/reset-password", None),
        ("post", "/admin/users/bulk/actions", {"userIds": [theirs], "action": "deactivate"}),
        ("post", "/admin/users/bulk/actions", {"userIds": [theirs], "action": "export"}),
    ]:
        assert getattr(client, method)(path, json=body, headers=h).status_code == 404, (method, path)
    assert all(u["id"] != theirs for u in client.get("/admin/users?limit=100", headers=h).json["data"])
    with db.session_scope() as session:
        assert session.get(User, theirs).is_active and session.get(User, theirs).name == "Admin"

    _, employee = make_user(tenant.company_id)
    eh = tenant.headers(employee)
    for method, path, body in [
        ("get", "/admin/users", None),
        ("get", f"/admin/users/{tenant.admin_id}", None),
        ("post", "/admin/users", {"name": "Nope", "email": "n@acme.com"}),
        ("patch", f"/admin/users/{tenant.admin_id}", {"name": "Nope"}),
        ("delete", f"/admin/users/{tenant.admin_id}", None),
        ("put", f"/admin/users/{tenant.admin_id}/reset-password", None),
        ("post", "/admin/users/bulk/actions", {"userIds": [tenant.admin_id], "action": "export"}),
        ("get", f"/job-titles/by-department?departmentId={dept}", None),
        ("get", "/admin/audit-log", None),
    ]:
        response = getattr(client, method)(path, json=body, headers=eh)
        assert response.status_code == 403, (method, path)
        assert response.json["message"]
