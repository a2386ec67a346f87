"""Welcome emails through a real SMTP server (aiosmtpd in the test process) and real workers."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text, update

from app import db, runtime
from app.errors import RateLimited
from app.features.auth.service import invite_links
from app.features.emails import ratelimit
from app.features.emails.models import EmailStatus, SentEmail
from app.features.emails.service import send_email, send_welcome_emails
from app.jobs import enqueue
from app.jobs.models import Job
from app.jobs.publish import push_to_rq
from app.jobs.reconciler import reconcile
from tests.conftest import kill_tree, start_worker_process, wait_for
from tests.email_helpers import make_users, smtp_server  # noqa: F401  (fixture)


def _job(job_id: str) -> Job:
    with db.session_scope() as session:
        return session.get_one(Job, job_id)


def _bulk_job(company_id: str, user_ids: list[str]) -> str:
    with db.session_scope() as session:
        return enqueue(
            session, "users.send_welcome_emails_bulk", {"user_ids": user_ids}, company_id=company_id
        )[0].id


def _sent_rows(**where: str) -> list[SentEmail]:
    with db.session_scope() as session:
        stmt = select(SentEmail)
        for key, value in where.items():
            stmt = stmt.where(getattr(SentEmail, key) == value)
        return list(session.scalars(stmt))


@pytest.fixture
def mail_settings(settings, smtp_server):  # noqa: F811
    return runtime.init(
        replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=100_000, email_batch_size=50)
    )


@pytest.mark.slow
def test_bulk_welcome_to_500_users_delivers_500_and_a_rerun_sends_none_twice(
    client,
    make_tenant,
    mail_settings,
    smtp_server,  # noqa: F811
    worker,
):
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 500)
    job_id = _bulk_job(tenant.company_id, ids)
    worker()
    job = _job(job_id)
    assert (job.status, job.progress) == ("succeeded", 100)
    assert job.result["summary"] == {"total": 500, "sent": 500, "failed": 0}
    assert job.result["message"] == "Sent 500 of 500 emails"
    recipients = smtp_server.recipients()
    assert len(recipients) == 500 and set(recipients) == {f"person{i}@acme.com" for i in range(500)}
    assert smtp_server.connections == 10  # one SMTP connection per batch of 50

    # The job runs again (as after a crash or a lost acknowledgement): nobody gets a second email.
    with db.engine().begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(status="queued", result=None))
    push_to_rq([_job(job_id)])
    worker()
    rerun = _job(job_id)
    assert (rerun.status, rerun.attempts) == ("succeeded", 2)
    assert rerun.result["summary"]["sent"] == 500  # reported as sent (by the first run)
    assert len(smtp_server.messages) == 500
    assert len(_sent_rows(run_id=job_id, status="sent")) == 500

    # The message: text and HTML parts in pt-BR, a one-time set-password link that works.
    message = next(m for m in smtp_server.messages if m.rcpt_tos == ["person7@acme.com"])
    assert "Bem-vindo(a)" in message.message["Subject"]
    body_text, body_html = message.part("plain"), message.part("html")
    link = re.search(r"http://localhost:8000/set-password\?token=([\w-]+)", body_text)
    assert link and link.group(0) in body_html
    answer = client.post("/auth/set-password", json={"token": link.group(1), "password": "a-good-password"})
    assert answer.status_code == 200
    again = client.post("/auth/set-password", json={"token": link.group(1), "password": "another-password"})
    assert again.status_code == 400


@pytest.mark.slow
def test_a_worker_killed_mid_bulk_run_delivers_to_everyone_and_twice_only_the_interrupted_one(
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
):
    """The worker dies while the SMTP server holds the 71st message in DATA (we can't know whether
    it left). The re-run sends it again with the same Message-ID, nobody else twice, nobody never."""
    runtime.init(replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=100_000))
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 120)
    release = smtp_server.hold("person70@acme.com")
    process = start_worker_process("--no-pump", SMTP_URL=smtp_server.url)
    try:
        job_id = _bulk_job(tenant.company_id, ids)
        assert smtp_server.stalled.wait(timeout=60)  # 70 delivered, the 71st in the middle of DATA
    finally:
        kill_tree(process)
        release.set()
    assert len(smtp_server.messages) == 70
    assert wait_for(lambda: reconcile().republished, timeout=30) == [job_id]
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert job.result["summary"] == {"total": 120, "sent": 120, "failed": 0}
    recipients = smtp_server.recipients()
    assert sorted(set(recipients)) == sorted(f"person{i}@acme.com" for i in range(120))
    assert len(recipients) == 120  # the held message never completed DATA: once, from the re-run
    resent = [m.message for m in smtp_server.messages if m.rcpt_tos == ["person70@acme.com"]]
    assert len(resent) == 1 and resent[0]["Message-ID"]


def test_an_interrupted_send_goes_out_again_with_the_same_message_id(
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
):
    """The crash window we cannot close: the server accepted the message, the process died before
    recording it. The re-run sends again, and the copy carries the first one's Message-ID."""
    runtime.init(replace(settings, smtp_url=smtp_server.url))
    tenant = make_tenant()
    [user_id] = make_users(tenant.company_id, 1)
    with db.session_scope() as session:
        [first] = send_welcome_emails(session, tenant.company_id, [user_id], "run-1", invite_links)
        session.execute(update(SentEmail).values(status=EmailStatus.SENDING, sent_at=None))  # "crash"
    with db.session_scope() as session:
        [second] = send_welcome_emails(session, tenant.company_id, [user_id], "run-1", invite_links)
        [third] = send_welcome_emails(session, tenant.company_id, [user_id], "run-1", invite_links)
    assert first.success and second.success and third.already_sent
    assert len(smtp_server.messages) == 2
    first_copy, second_copy = (m.message for m in smtp_server.messages)
    assert first_copy["Message-ID"] == second_copy["Message-ID"]
    with db.session_scope() as session:
        record = session.scalars(select(SentEmail)).one()
        assert (record.status, record.attempts) == (EmailStatus.SENT, 2)


@pytest.mark.slow
def test_at_most_three_welcome_emails_per_user(client, make_tenant, settings, smtp_server):  # noqa: F811
    runtime.init(replace(settings, sync_wait_seconds=60))
    tenant = make_tenant()
    [user_id, other_id] = make_users(tenant.company_id, 2)
    globex = make_tenant("Globex")
    [foreign_id] = make_users(globex.company_id, 1, prefix="foreign")
    process = start_worker_process(SMTP_URL=smtp_server.url)
    try:
        for count in (1, 2, 3):
            response = client.post(f"/admin/users/{user_id}/send-welcome-email", headers=tenant.headers())
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            assert body["message"] == "Welcome email sent"
            assert body["onboarding"]["emailSendCount"] == count
            assert body["onboarding"]["isConfirmed"] is False
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["onboarding"]["lastEmailSentAt"]
            )
        fourth = client.post(f"/admin/users/{user_id}/send-welcome-email", headers=tenant.headers())
        assert fourth.status_code == 409
        assert fourth.get_json()["error"]["code"] == "WELCOME_EMAIL_LIMIT"
        assert "at most 3" in fourth.get_json()["message"]

        bulk = client.post(
            "/admin/users/send-welcome-emails-bulk",
            json={"userIds": [user_id, other_id, "nobody", foreign_id]},
            headers=tenant.headers(),
        )
        assert bulk.status_code == 200, bulk.get_json()
        body = bulk.get_json()
        assert body["summary"] == {"total": 4, "sent": 1, "failed": 3}
        assert body["message"] == "Sent 1 of 4 emails"
        results = {r["userId"]: r for r in body["results"]}
        assert results[other_id] == {"userId": other_id, "success": True}
        assert results[user_id]["success"] is False and "at most 3" in results[user_id]["error"]
        assert results["nobody"]["error"] == "User not found"
        assert results[foreign_id]["error"] == "User not found"  # another company's user

        async_answer = client.post(
            "/admin/users/send-welcome-emails-bulk",
            json={"userIds": [other_id]},
            headers={**tenant.headers(), "Prefer": "respond-async"},
        )
        assert async_answer.status_code == 202
    finally:
        kill_tree(process)
    assert smtp_server.recipients().count("person0@acme.com") == 3
    # The users list carries the old API's extras: welcome emails sent and the last one's time.
    listed = client.get("/admin/users?limit=10", headers=tenant.headers()).get_json()["data"]
    by_id = {item["id"]: item for item in listed}
    assert by_id[user_id]["welcomeEmailSendCount"] == 3
    assert by_id[user_id]["lastWelcomeEmailSentAt"].endswith("Z")
    assert by_id[other_id]["welcomeEmailSendCount"] in (1, 2)  # the 202 bulk run may still be going
    assert by_id[tenant.admin_id]["welcomeEmailSendCount"] == 0
    assert "lastWelcomeEmailSentAt" not in by_id[tenant.admin_id]
    detail = client.get(f"/admin/users/{user_id}", headers=tenant.headers()).get_json()
    assert detail["welcomeEmailSendCount"] == 3
    other = make_tenant("Other")
    assert (
        client.post(f"/admin/users/{user_id}/send-welcome-email", headers=other.headers()).status_code == 404
    )
    assert (
        client.post(
            "/admin/users/send-welcome-emails-bulk", json={"userIds": []}, headers=tenant.headers()
        ).status_code
        == 400
    )


def test_transient_smtp_errors_are_retried_permanent_ones_are_not(
    make_tenant,
    mail_settings,
    smtp_server,  # noqa: F811
    worker,
):
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 4)
    smtp_server.refuse("person1@acme.com", (451, "greylisted, try again"))  # once: retried in place
    smtp_server.refuse("person2@acme.com", (550, "no such mailbox"))  # permanent: never retried
    smtp_server.refuse("person3@acme.com", *[(421, "busy")] * 4)  # outlasts the in-place retries
    job_id = _bulk_job(tenant.company_id, ids)
    worker()
    job = _job(job_id)
    assert job.status == "succeeded" and job.attempts == 2  # the job itself was retried for person3
    results = {r["userId"]: r for r in job.result["results"]}
    assert [results[i]["success"] for i in ids] == [True, True, False, True]
    assert "550" in results[ids[2]]["error"]
    assert sorted(smtp_server.recipients()) == [f"person{i}@acme.com" for i in (0, 1, 3)]
    [refused] = _sent_rows(user_id=ids[2])
    assert (refused.status, refused.transient) == ("failed", False)
    [late] = _sent_rows(user_id=ids[3])
    assert (late.status, late.attempts) == ("sent", 2)


def test_imported_users_get_their_invites(client, make_tenant, mail_settings, smtp_server, worker):  # noqa: F811
    from tests.test_import_csv import preview_id_of, staff_csv

    tenant = make_tenant(admin_email="boss@acme.com")
    preview_id = preview_id_of(client, tenant, staff_csv(30))
    accepted = client.post(
        "/admin/users/csv/import",
        json={"previewId": preview_id},  # no sendEmails: the IMPORT_SEND_INVITES default (true)
        headers={**tenant.headers(), "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202
    worker()
    job = _job(accepted.get_json()["job_id"])
    assert job.result["report"]["created"] == 30 and len(job.result["inviteJobIds"]) == 1
    assert _job(job.result["inviteJobIds"][0]).status == "succeeded"
    assert sorted(smtp_server.recipients()) == sorted(f"user{i}@acme.com" for i in range(30))


def test_send_email_service_to_the_dev_sink(make_tenant, settings, tmp_path):
    runtime.init(replace(settings, smtp_url=f"sink://{tmp_path}"))
    tenant = make_tenant()
    context = {
        "name": "Ana",
        "email": "ana@x.com",
        "company_name": "Acme",
        "link": "http://l",
        "link_valid_hours": 1,
    }
    with db.session_scope() as session:
        first = send_email(
            session, "ana@x.com", "welcome", context, company_id=tenant.company_id, run_id="run-1"
        )
        second = send_email(
            session, "ana@x.com", "welcome", context, company_id=tenant.company_id, run_id="run-1"
        )
    assert (first.status, second.status) == ("sent", "duplicate")
    [eml] = list(tmp_path.glob("*.eml"))
    assert b"Bem-vindo(a) ao Valorize, Ana!" in eml.read_bytes()
    [row] = _sent_rows(run_id="run-1")
    assert (row.to_email, row.template, row.status, row.sent_at is not None) == (
        "ana@x.com",
        "welcome",
        "sent",
        True,
    )
    with db.engine().connect() as conn:  # the record keeps who/what/when/outcome, never the body
        columns = set(conn.execute(text("SELECT * FROM sent_emails LIMIT 0")).keys())
    assert not columns & {"body", "html", "text", "content"}


def test_the_rate_limit_is_per_company_and_per_window(settings):
    runtime.init(replace(settings, email_rate_per_minute=3, email_rate_window_seconds=60))
    now = 1_000_000.0  # a window starts at 999_960
    assert ratelimit.take("acme", 2, now=now) == ratelimit.Grant(2, 0.0)
    partial = ratelimit.take("acme", 2, now=now)  # one slot left of the two asked for
    assert partial.granted == 1 and partial.retry_after == pytest.approx(20.0)
    assert ratelimit.take("acme", 1, now=now + 10).granted == 0
    assert ratelimit.take("globex", 3, now=now).granted == 3  # another company has its own budget
    assert ratelimit.take("acme", 3, now=now + 20).granted == 3  # the next window


def _forget_rate_windows() -> None:
    """What the window turning does: every company's counter starts again."""
    redis = runtime.redis()
    keys = list(redis.scan_iter("valorize:email-rate:*"))
    if keys:
        redis.delete(*keys)


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}s")


def test_nothing_sleeps_for_the_rate_limit_it_raises_and_a_rerun_carries_on(
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    monkeypatch,
):
    """Out of slots, a batch sends what the window allowed, records it and raises RateLimited (no
    sleep anywhere); the same run later sends the rest, nobody twice. A single send raises before
    claiming anything, and a duplicate takes no slot."""
    runtime.init(replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=2))
    monkeypatch.setattr(time, "sleep", _no_sleep)
    assert not hasattr(ratelimit, "acquire")
    assert "sleep" not in Path(ratelimit.__file__).read_text()
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 5)
    with db.session_scope() as session, pytest.raises(RateLimited) as limited:
        send_welcome_emails(session, tenant.company_id, ids, "run-1", invite_links, sleep=_no_sleep)
    assert 0 < limited.value.retry_after <= 60 and limited.value.code == "EMAIL_RATE_LIMITED"
    assert smtp_server.recipients() == ["person0@acme.com", "person1@acme.com"]
    assert sorted(r.status for r in _sent_rows(run_id="run-1")) == ["sent", "sent"]  # nothing left `sending`

    context = {"name": "Ana", "email": "a@x.com", "company_name": "Acme", "link": "l", "link_valid_hours": 1}
    with db.session_scope() as session, pytest.raises(RateLimited):
        send_email(session, "ana@acme.com", "welcome", context, company_id=tenant.company_id, run_id="r2")
    assert _sent_rows(run_id="r2") == []  # nothing claimed

    _forget_rate_windows()  # the next window: two more
    with db.session_scope() as session, pytest.raises(RateLimited):
        send_welcome_emails(session, tenant.company_id, ids, "run-1", invite_links, sleep=_no_sleep)
    _forget_rate_windows()  # and the last one
    with db.session_scope() as session:
        results = send_welcome_emails(session, tenant.company_id, ids, "run-1", invite_links, sleep=_no_sleep)
        assert [r.success for r in results] == [True] * 5
        assert [r.already_sent for r in results] == [True] * 4 + [False]
        first, again = (
            send_email(session, "ana@acme.com", "welcome", context, company_id=tenant.company_id, run_id="r2")
            for _ in range(2)
        )
    # The second found the window full (person4 and the first took it) but needed no slot.
    assert (first.status, again.status) == ("sent", "duplicate")
    expected = [f"person{i}@acme.com" for i in range(5)] + ["ana@acme.com"]
    assert sorted(smtp_server.recipients()) == sorted(expected)


def test_a_rate_limited_bulk_job_defers_without_spending_an_attempt(
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
    worker,
):
    runtime.init(replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=3))
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 5)
    job_id = _bulk_job(tenant.company_id, ids)
    worker()
    deferred = _job(job_id)
    assert (deferred.status, deferred.attempts) == ("queued", 0)
    assert deferred.next_attempt_at is not None and "rate limit" in (deferred.error or "")
    assert len(smtp_server.messages) == 3
    _forget_rate_windows()
    with db.engine().begin() as conn:  # the window turned: the deferral is due
        conn.execute(update(Job).where(Job.id == job_id).values(next_attempt_at=func.now()))
    worker()
    job = _job(job_id)
    assert (job.status, job.attempts) == ("succeeded", 1)
    assert job.result["summary"] == {"total": 5, "sent": 5, "failed": 0}
    assert sorted(smtp_server.recipients()) == [f"person{i}@acme.com" for i in range(5)]  # each once


def test_a_batch_claims_in_one_transaction_and_settles_every_send_before_it_ends(
    make_tenant,
    mail_settings,
    smtp_server,  # noqa: F811
):
    """Round trips: the claims of a batch of 50 are a few set-based statements in one transaction
    (not a transaction per email); the settler writes at most one statement per send (fewer when
    several are queued), and all of them before the call returns."""
    tenant = make_tenant()
    ids = make_users(tenant.company_id, 100)
    with db.session_scope() as session, StatementCounter() as counter:
        results = send_welcome_emails(session, tenant.company_id, ids, "run-1", invite_links)
    assert all(r.success for r in results) and smtp_server.connections == 2
    assert [r.status for r in _sent_rows(run_id="run-1")] == ["sent"] * 100
    # Besides at most one settlement per email: loading the users, and per batch the lock, the
    # read, the inserts of records and tokens.
    assert counter.statements <= 100 + 1 + 2 * 4, counter.statements
    assert counter.commits == 2  # one claim transaction per batch (settlements autocommit)


class StatementCounter:
    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0

    def __enter__(self) -> StatementCounter:
        event.listen(db.engine(), "before_cursor_execute", self._statement)
        event.listen(db.engine(), "commit", self._commit)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(db.engine(), "before_cursor_execute", self._statement)
        event.remove(db.engine(), "commit", self._commit)

    def _statement(self, *args: object) -> None:
        self.statements += 1

    def _commit(self, *args: object) -> None:
        self.commits += 1


def test_smtp_url_forms_and_error_classes():
    import smtplib

    from app.features.emails.transport import DEFAULT_SINK_DIR, classify, parse_smtp_url

    target = parse_smtp_url("smtps://mailer%40acme.com:p%40ss@smtp.acme.com")
    assert (target.scheme, target.host, target.port) == ("smtps", "smtp.acme.com", 465)
    assert (target.username, target.password) == ("mailer@acme.com", "p@ss")
    plain = parse_smtp_url("smtp://relay:2525?starttls=true")
    assert (plain.port, plain.starttls, plain.username) == (2525, True, None)
    assert parse_smtp_url("sink").sink_dir == DEFAULT_SINK_DIR
    assert str(parse_smtp_url("sink:///tmp/mail").sink_dir) == "/tmp/mail"
    assert classify(smtplib.SMTPResponseException(451, b"later")).transient
    assert not classify(smtplib.SMTPResponseException(554, b"rejected")).transient
    assert classify(smtplib.SMTPServerDisconnected("gone")).transient
    assert classify(ConnectionRefusedError()).transient
    assert not classify(smtplib.SMTPRecipientsRefused({"a@x": (550, b"unknown")})).transient
