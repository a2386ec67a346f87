"""Who gets an invite after a CSV import (`sendEmails`, then the company's default, then
IMPORT_SEND_INVITES), the /admin/company/import-settings routes, and the per-company email rate
limit on the real send path (a worker, aiosmtpd), proven on a controlled clock: a job out of its
company's window defers, it never sleeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app import db, runtime
from app.config import Settings
from app.features.audit.models import AuditLog
from app.features.company import import_settings
from app.features.emails import ratelimit
from app.features.emails.models import SentEmail
from app.features.identity.models import User
from app.features.users import csv_import
from app.jobs.models import Job
from tests.email_helpers import SmtpServer, make_users, smtp_server  # noqa: F401  (fixture)
from tests.test_import_csv import preview_id_of, staff_csv

SETTINGS_URL = "/admin/company/import-settings"
ASYNC = {"Prefer": "respond-async"}


def _mail(settings: Settings, smtp: SmtpServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"smtp_url": smtp.url, "email_rate_per_minute": 100_000, **overrides}
    return runtime.init(replace(settings, **values))


def _job(job_id: str) -> Job:
    with db.session_scope() as session:
        return session.get_one(Job, job_id)


def _count(model: Any, *where: Any) -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _set_company_default(company_id: str, value: bool | None) -> None:
    with db.session_scope() as session:
        import_settings.update_import_settings(session, company_id, value, None)


def _import(client, tenant, count: int, **body: Any) -> str:
    """Preview and import `count` staff rows (respond-async); the import job's id."""
    preview_id = preview_id_of(client, tenant, staff_csv(count))
    accepted = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id, **body},
        headers={**tenant.headers(), **ASYNC},
    )
    assert accepted.status_code == 202, accepted.get_json()
    return accepted.get_json()["job_id"]


def _assert_imported_without_invites(job_id: str, company_id: str, count: int, smtp: SmtpServer) -> None:
    job = _job(job_id)
    assert job.status == "succeeded" and job.result["report"]["created"] == count
    assert job.args["send_invites"] is False
    assert "inviteJobIds" not in job.result
    assert _count(User, User.company_id == company_id) == count + 1  # and the admin
    assert _count(Job, Job.kind == csv_import.INVITE_KIND) == 0
    assert _count(SentEmail) == 0
    assert smtp.messages == []


def _assert_imported_with_invites(job_id: str, count: int, smtp: SmtpServer) -> None:
    job = _job(job_id)
    assert job.status == "succeeded" and job.result["report"]["created"] == count
    assert job.args["send_invites"] is True
    [invite_job_id] = job.result["inviteJobIds"]
    assert _job(invite_job_id).status == "succeeded"
    assert sorted(smtp.recipients()) == sorted(f"user{i}@acme.com" for i in range(count))


# --- sendEmails, the company's default, IMPORT_SEND_INVITES ------------------------------------


@pytest.mark.parametrize("company_default", [None, True])
def test_send_emails_false_imports_and_sends_nothing_although_the_defaults_say_invite(
    client,
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
    company_default,
):
    _mail(settings, smtp_server, import_send_invites=True)
    tenant = make_tenant(admin_email="boss@acme.com")
    _set_company_default(tenant.company_id, company_default)
    job_id = _import(client, tenant, 6, sendEmails=False)
    worker()
    _assert_imported_without_invites(job_id, tenant.company_id, 6, smtp_server)


@pytest.mark.parametrize("company_default", [None, False])
def test_send_emails_true_invites_although_the_defaults_say_not_to(
    client,
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
    company_default,
):
    _mail(settings, smtp_server, import_send_invites=False)
    tenant = make_tenant(admin_email="boss@acme.com")
    _set_company_default(tenant.company_id, company_default)
    job_id = _import(client, tenant, 6, sendEmails=True)
    worker()
    _assert_imported_with_invites(job_id, 6, smtp_server)


def test_without_send_emails_the_company_default_false_beats_the_app_default_true(
    client,
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
):
    _mail(settings, smtp_server, import_send_invites=True)
    tenant = make_tenant(admin_email="boss@acme.com")
    patched = client.patch(SETTINGS_URL, json={"sendInvitesOnImport": False}, headers=tenant.headers())
    assert patched.status_code == 200, patched.get_json()
    job_id = _import(client, tenant, 6)  # what the frontend sends: no sendEmails
    worker()
    _assert_imported_without_invites(job_id, tenant.company_id, 6, smtp_server)


def test_without_send_emails_the_company_default_true_beats_the_app_default_false(
    client,
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
):
    _mail(settings, smtp_server, import_send_invites=False)
    tenant = make_tenant(admin_email="boss@acme.com")
    patched = client.patch(SETTINGS_URL, json={"sendInvitesOnImport": True}, headers=tenant.headers())
    assert patched.status_code == 200, patched.get_json()
    job_id = _import(client, tenant, 6, sendEmails=None)  # null is "not said", like absent
    worker()
    _assert_imported_with_invites(job_id, 6, smtp_server)


def test_the_whole_rule_table(make_tenant, settings):
    """sendEmails when given; else the company's setting when not null; else IMPORT_SEND_INVITES."""
    tenant = make_tenant()
    for app_default in (True, False):
        runtime.init(replace(settings, import_send_invites=app_default))
        for company_default in (None, True, False):
            _set_company_default(tenant.company_id, company_default)
            for send_emails in (None, True, False):
                expected = next(v for v in (send_emails, company_default, app_default) if v is not None)
                with db.session_scope() as session:
                    got = import_settings.resolve_send_invites(session, tenant.company_id, send_emails)
                assert got is expected, (app_default, company_default, send_emails)


def test_a_company_without_a_settings_row_follows_the_app_default(make_tenant, settings):
    tenant = make_tenant()
    for app_default in (True, False):
        runtime.init(replace(settings, import_send_invites=app_default))
        with db.session_scope() as session:
            assert import_settings.company_default(session, tenant.company_id) is None
            assert import_settings.resolve_send_invites(session, tenant.company_id, None) is app_default


# --- /admin/company/import-settings -----------------------------------------------------------


def _audit_entries(company_id: str) -> list[AuditLog]:
    with db.session_scope() as session:
        return list(
            session.scalars(
                select(AuditLog)
                .where(AuditLog.company_id == company_id, AuditLog.action == import_settings.AUDIT_ACTION)
                .order_by(AuditLog.created_at)
            )
        )


def test_import_settings_read_and_change(client, make_tenant, settings):
    runtime.init(replace(settings, import_send_invites=True))
    tenant = make_tenant()
    globex = make_tenant("Globex")
    h = tenant.headers()

    first = client.get(SETTINGS_URL, headers=h)
    assert first.status_code == 200
    assert first.get_json() == {"sendInvitesOnImport": None, "effective": True}

    off = client.patch(SETTINGS_URL, json={"sendInvitesOnImport": False, "extra": 1}, headers=h)
    assert off.status_code == 200, off.get_json()
    assert off.get_json() == {"sendInvitesOnImport": False, "effective": False}
    assert client.get(SETTINGS_URL, headers=h).get_json() == off.get_json()

    again = client.patch(SETTINGS_URL, json={"sendInvitesOnImport": False}, headers=h)
    assert again.status_code == 200 and again.get_json() == off.get_json()

    # Another company is not affected, and its change does not reach this one.
    assert client.get(SETTINGS_URL, headers=globex.headers()).get_json() == {
        "sendInvitesOnImport": None,
        "effective": True,
    }
    on = client.patch(SETTINGS_URL, json={"sendInvitesOnImport": True}, headers=globex.headers())
    assert on.get_json() == {"sendInvitesOnImport": True, "effective": True}
    assert client.get(SETTINGS_URL, headers=h).get_json() == {
        "sendInvitesOnImport": False,
        "effective": False,
    }

    # null clears it: the app-wide default applies again (and `effective` follows that default).
    cleared = client.patch(SETTINGS_URL, json={"sendInvitesOnImport": None}, headers=h)
    assert cleared.get_json() == {"sendInvitesOnImport": None, "effective": True}
    runtime.init(replace(settings, import_send_invites=False))
    assert client.get(SETTINGS_URL, headers=h).get_json() == {"sendInvitesOnImport": None, "effective": False}

    # Audited like other company changes: one entry per actual change, none for a no-op.
    entries = _audit_entries(tenant.company_id)
    assert [e.changes for e in entries] == [
        {"sendInvitesOnImport": {"from": None, "to": False}},
        {"sendInvitesOnImport": {"from": False, "to": None}},
    ]
    assert {(e.actor_id, e.entity_type, e.entity_id) for e in entries} == {
        (tenant.admin_id, "company_settings", tenant.company_id)
    }
    [globex_entry] = _audit_entries(globex.company_id)
    assert globex_entry.actor_id == globex.admin_id

    # The coin economy settings sharing the row are untouched.
    economy = client.get("/admin/company/coin-economy", headers=h).get_json()
    assert (economy["weekly_renewal_amount"], economy["renewal_day"]) == (100, 1)


def test_import_settings_permissions(client, make_tenant, make_user, settings):
    runtime.init(replace(settings, import_send_invites=True))
    tenant = make_tenant()
    _, employee = make_user(tenant.company_id, "Employee")
    _, hr_manager = make_user(tenant.company_id, "HR Manager")  # users:import_csv only

    for method in ("get", "patch"):
        refused = getattr(client, method)(
            SETTINGS_URL, json={"sendInvitesOnImport": False}, headers=tenant.headers(employee)
        )
        assert refused.status_code == 403, (method, refused.get_json())
        assert refused.get_json()["error"]["code"] == "INSUFFICIENT_PERMISSION"
        assert refused.get_json()["message"]
    assert client.get(SETTINGS_URL).status_code == 401

    read = client.get(SETTINGS_URL, headers=tenant.headers(hr_manager))
    assert read.status_code == 200 and read.get_json() == {"sendInvitesOnImport": None, "effective": True}
    write = client.patch(
        SETTINGS_URL, json={"sendInvitesOnImport": False}, headers=tenant.headers(hr_manager)
    )
    assert write.status_code == 403
    assert client.get(SETTINGS_URL, headers=tenant.headers()).get_json()["sendInvitesOnImport"] is None
    assert _audit_entries(tenant.company_id) == []


@pytest.mark.parametrize("body", [{"sendInvitesOnImport": v} for v in ("yes", "true", 1, 0, [], {})] + [{}])
def test_import_settings_refuse_anything_but_a_boolean_or_null(client, make_tenant, settings, body):
    tenant = make_tenant()
    client.patch(SETTINGS_URL, json={"sendInvitesOnImport": True}, headers=tenant.headers())
    answer = client.patch(SETTINGS_URL, json=body, headers=tenant.headers())
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]["code"] == "VALIDATION_ERROR"
    assert "sendInvitesOnImport" in answer.get_json()["message"]
    assert client.get(SETTINGS_URL, headers=tenant.headers()).get_json()["sendInvitesOnImport"] is True
    assert len(_audit_entries(tenant.company_id)) == 1


# --- the per-company email rate limit, on the real send path -----------------------------------


@dataclass
class _Clock:
    """The limiter's clock: time stands still until the test turns the window. No wall-clock
    waits, no timing thresholds."""

    now: float

    def time(self) -> float:
        return self.now

    def next_window(self) -> None:
        """Jump to the next window, and make the jobs that deferred for it due (their
        `next_attempt_at` is on the database's clock, which this one does not move)."""
        self.now = (self.now // 60 + 1) * 60
        with db.engine().begin() as conn:
            conn.execute(
                update(Job)
                .where(Job.status == "queued", Job.next_attempt_at.is_not(None))
                .values(next_attempt_at=func.now())
            )


@pytest.fixture
def limiter_clock(monkeypatch) -> _Clock:
    clock = _Clock(now=60 * 30_000_000 + 1.0)  # one second into a window
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=clock.time))
    return clock


def _deferred(job_id: str) -> bool:
    """The job ran out of its company's window: back in line for later, no attempt spent."""
    job = _job(job_id)
    return (job.status, job.attempts) == ("queued", 0) and job.next_attempt_at is not None


def _stamp_deliveries(monkeypatch, smtp: SmtpServer, clock: _Clock) -> list[tuple[int, str]]:
    """(limiter window, recipient) of every message the SMTP server accepts, in order."""
    stamps: list[tuple[int, str]] = []
    original: Callable[..., Any] = smtp.handler.handle_DATA

    async def handle_data(server: Any, session: Any, envelope: Any) -> str:
        reply = await original(server, session, envelope)
        if reply.startswith("250"):
            stamps.extend((int(clock.now // 60), r.lower()) for r in envelope.rcpt_tos)
        return reply

    monkeypatch.setattr(smtp.handler, "handle_DATA", handle_data)
    return stamps


def _bulk_welcome(client, tenant, user_ids: list[str]) -> str:
    accepted = client.post(
        "/admin/users/send-welcome-emails-bulk",
        json={"userIds": user_ids},
        headers={**tenant.headers(), **ASYNC},
    )
    assert accepted.status_code == 202, accepted.get_json()
    return accepted.get_json()["job_id"]


def _per_window(stamps: list[tuple[int, str]], prefix: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for window, recipient in stamps:
        if recipient.startswith(prefix):
            counts[window] = counts.get(window, 0) + 1
    return counts


def test_a_bulk_welcome_sends_at_most_the_company_limit_per_minute(
    client,
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
    limiter_clock,
    monkeypatch,
):
    _mail(settings, smtp_server, email_rate_per_minute=5, email_batch_size=50)
    stamps = _stamp_deliveries(monkeypatch, smtp_server, limiter_clock)
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 8, prefix="acme")
    job_id = _bulk_welcome(client, tenant, ids)
    worker()
    assert _deferred(job_id)  # five sent, the rest waits for the next window (no worker waits)
    limiter_clock.next_window()
    worker()

    job = _job(job_id)
    assert job.status == "succeeded" and job.result["summary"] == {"total": 8, "sent": 8, "failed": 0}
    assert sorted(r for _, r in stamps) == sorted(f"acme{i}@acme.com" for i in range(8))
    first = int((60 * 30_000_000 + 1.0) // 60)
    # Five in the first minute (the whole budget), the other three only once the next one began.
    assert _per_window(stamps, "acme") == {first: 5, first + 1: 3}
    assert job.attempts == 1


def test_another_company_is_not_held_back_by_an_exhausted_window(
    client,
    make_tenant,
    make_user,
    settings,
    smtp_server,  # noqa: F811
    worker,
    limiter_clock,
    monkeypatch,
):
    _mail(settings, smtp_server, email_rate_per_minute=5, email_batch_size=50)
    stamps = _stamp_deliveries(monkeypatch, smtp_server, limiter_clock)
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_ids = make_users(acme.company_id, 6, prefix="acme")
    globex_ids = make_users(globex.company_id, 4, prefix="globex")
    first = int(limiter_clock.now // 60)

    first_job = _bulk_welcome(client, acme, acme_ids[:5])  # Acme uses its whole budget for this minute
    worker()
    assert _per_window(stamps, "acme") == {first: 5} and _job(first_job).status == "succeeded"

    globex_job = _bulk_welcome(client, globex, globex_ids)  # Globex has its own budget: nobody waits
    worker()
    assert _per_window(stamps, "globex") == {first: 4} and _job(globex_job).status == "succeeded"

    late = _bulk_welcome(client, acme, acme_ids[5:])  # Acme's sixth waits for the next minute
    worker()
    assert _deferred(late)
    limiter_clock.next_window()
    worker()
    assert _per_window(stamps, "acme") == {first: 5, first + 1: 1} and _job(late).status == "succeeded"
    assert len(smtp_server.messages) == 10
