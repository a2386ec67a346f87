"""The operator console at /admin/rq over HTTP: login, who gets in, read-only, CSRF, the schedule.

The same flows in a real browser are in tests/test_ops_console_browser.py."""

from __future__ import annotations

import logging
from datetime import timedelta

import time_machine
from flask.testing import FlaskClient
from rq import Worker

from app import db, runtime
from app.auth import issue_access_token
from app.cron import runner, schedule
from app.features.identity.models import User
from app.features.ops import console
from app.jobs import enqueue
from app.jobs.rq_plumbing import JSONJob, queue
from tests.console_helpers import company_admin, csrf, log_in, operator, read_only_operator

P = console.PREFIX
EMPTY_DEFAULT = f"{P}/queue/default/queued/empty"
JOBS_PAGE = f"{P}/0/view/jobs/default/queued/8/asc/1"


def _queued(count: int = 2) -> list[str]:
    with db.session_scope() as session:
        return [enqueue(session, "probe.effect")[0].id for _ in range(count)]


def _depth() -> int:
    return queue("default", runtime.redis()).count


def test_anonymous_visits_are_sent_to_the_login_and_calls_refused(client: FlaskClient) -> None:
    _queued()
    page = client.get(f"{P}/")
    assert page.status_code == 302
    assert page.headers["Location"] == f"{P}/login?next={P}/"
    assert client.get(f"{P}/schedule").status_code == 302
    assert client.get(f"{P}/0/data/queues.json").status_code == 401
    assert client.post(EMPTY_DEFAULT).status_code == 401
    assert client.get(f"{P}/requeue/default").status_code == 302  # a link: to the login, nothing done
    assert _depth() == 2
    forged = client.get(f"{P}/", headers={"Cookie": f"{console.SESSION_COOKIE}=forged.value"})
    assert forged.status_code == 302


def test_an_operator_logs_in_and_sees_the_queues_and_the_schedule(client, make_tenant) -> None:
    person = operator(make_tenant)
    _queued(3)
    runner.run_task("prune-jobs", trigger="cli")

    response = client.post(
        f"{P}/login", data={"email": person.email, "password": person.password, "next": f"{P}/schedule"}
    )
    assert response.status_code == 303 and response.headers["Location"] == f"{P}/schedule"
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    session_cookie = cookies[console.SESSION_COOKIE]
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    assert f"Path={P}" in session_cookie and "Max-Age=1800" in session_cookie
    assert "HttpOnly" not in cookies[console.CSRF_COOKIE]  # rq-dashboard's JavaScript reads it

    dashboard = client.get(f"{P}/")
    assert dashboard.status_code == 200 and "Queues" in dashboard.get_data(as_text=True)
    assert dashboard.headers["Cache-Control"] == "no-store"
    assert "Scheduled tasks" in dashboard.get_data(as_text=True)  # our footer links the schedule
    queues = {q["name"]: q for q in client.get(f"{P}/0/data/queues.json").json["queues"]}
    assert queues["default"]["count"] == 3

    page = client.get(f"{P}/schedule").get_data(as_text=True)
    for task in schedule.all_tasks():
        assert f'data-task="{task.name}"' in page and f"<code>{task.cron}</code>" in page
    prune = page.split('data-task="prune-jobs"', 1)[1].split("</tr>", 1)[0]
    assert "succeeded" in prune and "(cli)" in prune and "UTC" in prune
    reconcile = page.split('data-task="reconcile-jobs"', 1)[1].split("</tr>", 1)[0]
    assert "never ran" in reconcile
    assert "next-run" in reconcile


def test_a_company_admin_is_refused_at_login_and_with_a_minted_cookie(client, make_tenant) -> None:
    admin = company_admin(make_tenant)
    refused = client.post(f"{P}/login", data={"email": admin.email, "password": admin.password})
    assert refused.status_code == 403
    assert "platform operators" in refused.get_data(as_text=True)
    assert client.get_cookie(console.SESSION_COOKIE, path=P) is None
    _, cookie = console.new_session(admin.user_id)  # as if the admin had lost the role after login
    client.set_cookie(console.SESSION_COOKIE, cookie, path=P)
    page = client.get(f"{P}/")
    assert page.status_code == 403 and "platform operators" in page.get_data(as_text=True)


def test_wrong_password_and_open_redirects_are_refused(client, make_tenant) -> None:
    person = operator(make_tenant)
    wrong = client.post(f"{P}/login", data={"email": person.email, "password": "not-it-at-all"})
    assert wrong.status_code == 401 and "Invalid email or password" in wrong.get_data(as_text=True)
    for target in ("https://evil.example/", "//evil.example/x", "/jobs"):
        response = client.post(
            f"{P}/login", data={"email": person.email, "password": person.password, "next": target}
        )
        assert response.headers["Location"] == f"{P}/"
    cross_site = client.post(
        f"{P}/login",
        data={"email": person.email, "password": person.password},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403


def test_a_read_only_operator_cannot_change_the_queues(client, make_tenant) -> None:
    ops = make_tenant("Ops", super_admin=True)
    observer = read_only_operator(ops.company_id)
    job_ids = _queued(2)
    token = log_in(client, observer)
    headers = {console.CSRF_HEADER: token}

    assert client.get(f"{P}/0/data/queues.json").status_code == 200
    page = client.get(JOBS_PAGE).get_data(as_text=True)
    assert 'id="empty-btn"' not in page and 'data-role="delete-job-btn"' not in page
    assert "(read-only)" in page
    for url in (
        EMPTY_DEFAULT,
        f"{P}/job/{job_ids[0]}/delete",
        f"{P}/job/{job_ids[0]}/requeue",
        f"{P}/requeue/default",
        f"{P}/queue/default/compact",
    ):
        response = client.post(url, headers=headers)
        assert response.status_code == 403, url
        assert "jobs:operate_queues" in response.json["message"]
    assert _depth() == 2


def test_an_operator_changes_the_queues_only_with_the_csrf_token(client, make_tenant) -> None:
    person = operator(make_tenant)
    _queued(2)
    token = log_in(client, person)
    assert 'id="empty-btn"' in client.get(JOBS_PAGE).get_data(as_text=True)

    assert client.post(EMPTY_DEFAULT).status_code == 403  # no token
    assert client.post(EMPTY_DEFAULT, headers={console.CSRF_HEADER: "0" * 64}).status_code == 403
    cross_site = {console.CSRF_HEADER: token, "Origin": "https://evil.example"}
    assert client.post(EMPTY_DEFAULT, headers=cross_site).status_code == 403
    assert client.get(f"{P}/requeue/default").status_code == 405  # upstream also answers GET
    assert _depth() == 2

    done = client.post(EMPTY_DEFAULT, headers={console.CSRF_HEADER: token, "Origin": "http://localhost"})
    assert done.status_code == 200 and done.json["status"] == "OK"
    assert _depth() == 0


def test_token_login_logs_neither_the_token_nor_puts_it_in_a_url(client, make_tenant, caplog) -> None:
    person = operator(make_tenant)
    token = issue_access_token(person.user_id, person.company_id)
    with caplog.at_level(logging.DEBUG):
        response = client.post(f"{P}/login", data={"token": token, "next": f"{P}/"})
        assert response.status_code == 303 and token not in response.headers["Location"]
        assert client.get(f"{P}/").status_code == 200
    assert token not in caplog.text
    assert all(token not in c for c in response.headers.getlist("Set-Cookie"))
    assert client.post(f"{P}/login", data={"token": "not.a.token"}).status_code == 401


def test_the_session_is_short_lived_and_follows_the_user(client, make_tenant) -> None:
    person = operator(make_tenant)
    log_in(client, person)
    assert client.get(f"{P}/").status_code == 200
    with time_machine.travel(timedelta(seconds=runtime.settings().ops_session_ttl_seconds + 5), tick=False):
        assert client.get(f"{P}/").status_code == 302
    with db.session_scope() as session:
        session.get_one(User, person.user_id).is_active = False
    assert client.get(f"{P}/").status_code == 302


def test_logout_needs_the_token_and_ends_the_session(client, make_tenant) -> None:
    person = operator(make_tenant)
    token = log_in(client, person)
    assert client.post(f"{P}/logout").status_code == 403
    out = client.post(f"{P}/logout", data={"csrf_token": csrf(client)})
    assert out.status_code == 303 and token
    assert client.get_cookie(console.SESSION_COOKIE, path=P) is None
    assert client.get(f"{P}/").status_code == 302


def test_failed_jobs_and_busy_workers_read_with_the_json_serializer(client, make_tenant, worker) -> None:
    person = operator(make_tenant)
    with db.session_scope() as session:
        job = enqueue(session, "probe.permanent")[0]
    worker()  # fails at once: RQ's failed registry holds it
    token = log_in(client, person)
    failed = client.get(f"{P}/0/data/jobs/default/failed/8/asc/1.json").json["jobs"]
    assert [j["id"] for j in failed] == [job.id]
    assert client.get(f"{P}/0/data/job/{job.id}.json").json["status"] == "failed"
    requeued = client.post(f"{P}/job/{job.id}/requeue", headers={console.CSRF_HEADER: token})
    assert requeued.status_code == 200 and _depth() == 1

    busy = Worker([queue("default", runtime.redis())], connection=runtime.redis(), job_class=JSONJob)
    busy.register_birth()
    busy.prepare_execution(JSONJob.fetch(job.id, connection=runtime.redis()))  # as while it runs the job
    workers = client.get(f"{P}/0/data/workers.json")
    assert workers.status_code == 200
    [listed] = workers.json["workers"]
    assert listed["current_job"]["job_id"] == job.id
    assert client.get(f"{P}/0/view/workers").status_code == 200
