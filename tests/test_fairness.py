"""Isolation and fairness: bulk email never holds back interactive or scheduled work, and one
company's bulk backlog never holds back another company's. Orderings and counts, no durations."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from app import db, runtime
from app.cron.models import CronRun
from app.features.users.csv_import import INVITE_KIND
from app.jobs import enqueue
from app.jobs.fairness import release_turns
from app.jobs.models import Job
from app.jobs.reconciler import reconcile
from app.jobs.rq_plumbing import queue
from tests.conftest import kill_tree, start_worker_process, wait_for
from tests.email_helpers import make_users, smtp_server  # noqa: F401  (fixture)
from tests.test_import_csv import staff_csv

FAST_PUMP = {
    "RECONCILE_INTERVAL_SECONDS": "1",
    "RECONCILE_GRACE_SECONDS": "0",
    "JOB_PUMP_INTERVAL_SECONDS": "0.2",
}


def _jobs(*where: Any) -> list[Job]:
    with db.session_scope() as session:
        return list(session.scalars(select(Job).where(*where).order_by(Job.created_at)))


def _succeeded(*where: Any) -> list[Job]:
    return [job for job in _jobs(*where) if job.status == "succeeded"]


def _bulk(company_id: str, count: int) -> list[str]:
    with db.session_scope() as session:
        return [
            enqueue(session, "probe.bulk", {"note": str(i)}, company_id=company_id)[0].id
            for i in range(count)
        ]


def test_each_company_has_one_bulk_job_in_line_at_a_time(make_tenant, worker):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_ids = _bulk(acme.company_id, 5)
    globex_ids = _bulk(globex.company_id, 2)
    emails = queue("emails", runtime.redis())
    # One turn each is on Redis; the rest wait in Postgres, pending and held.
    assert emails.get_job_ids() == [acme_ids[0], globex_ids[0]]
    waiting = _jobs(Job.held.is_(True))
    assert {j.id for j in waiting} == set(acme_ids[1:] + globex_ids[1:])
    assert {j.status for j in waiting} == {"pending"}
    assert release_turns() == []  # no company has a free slot

    worker()
    done = sorted(_jobs(Job.id.in_(acme_ids + globex_ids)), key=lambda j: j.started_at)
    assert {j.status for j in done} == {"succeeded"}
    order = ["acme" if j.id in acme_ids else "globex" for j in done]
    # Turns alternate while both have work: globex never waits behind acme's whole backlog.
    assert order == ["acme", "globex", "acme", "globex", "acme", "acme", "acme"]


def test_held_jobs_are_not_mistaken_for_lost_ones(make_tenant):
    acme = make_tenant("Acme")
    ids = _bulk(acme.company_id, 3)
    report = reconcile()
    assert report.republished == []  # the held two are waiting by design, the first is on its queue
    assert queue("emails", runtime.redis()).get_job_ids() == ids[:1]


def test_a_failed_bulk_job_passes_the_turn_on(make_tenant, worker):
    acme = make_tenant("Acme")
    with db.session_scope() as session:
        doomed = enqueue(session, "probe.permanent_bulk", {}, company_id=acme.company_id)[0].id
    [after] = _bulk(acme.company_id, 1)
    worker()
    assert {j.id: j.status for j in _jobs(Job.id.in_([doomed, after]))} == {
        doomed: "failed",
        after: "succeeded",
    }


@pytest.mark.slow
def test_a_backlog_of_2000_invites_never_holds_back_another_companys_import_and_invites(
    client,
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
):
    """Acme has 2,000 invites queued (40 batches); Globex then imports 5 users through the real
    route without `Prefer: respond-async`, with the workers we ship (interactive and bulk groups).
    Globex gets its synchronous 200 with the report, its invites go out while Acme's backlog is
    still being worked, and the reconciler keeps its pace throughout."""
    runtime.init(
        replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=1_000_000, sync_wait_seconds=120)
    )
    smtp_server.handler.delay = 0.005  # a relay takes a few ms per message: the backlog lasts
    env = {**FAST_PUMP, "SMTP_URL": smtp_server.url, "EMAIL_RATE_PER_MINUTE": "1000000"}
    acme = make_tenant("Acme", admin_email="boss@acme.com")
    acme_users = make_users(acme.company_id, 2000)
    with db.session_scope() as session:
        acme_jobs = [
            enqueue(session, INVITE_KIND, {"user_ids": acme_users[i : i + 50]}, company_id=acme.company_id)[
                0
            ].id
            for i in range(0, 2000, 50)
        ]
    workers = [
        start_worker_process("--queues", "default,reports,cron", **env),
        start_worker_process("--queues", "emails", **env),
    ]
    try:
        wait_for(lambda: any(j.status == "succeeded" for j in _jobs(Job.id.in_(acme_jobs))), timeout=120)
        globex = make_tenant("Globex", admin_email="boss@globex.com")
        csv_text = (
            staff_csv(5, first_manager="boss@globex.com")
            .replace("@Acme.com", "@globex.com")
            .replace("@acme.com", "@globex.com")
        )
        preview = client.post(
            "/admin/users/csv/preview",
            json={"fileContent": base64.b64encode(csv_text.encode()).decode()},
            headers=globex.headers(),
        )
        assert preview.status_code == 200, preview.get_json()
        imported = client.post(
            "/admin/users/csv/import",
            json={"previewId": preview.get_json()["previewId"], "sendEmails": True},
            headers=globex.headers(),
        )
        assert imported.status_code == 200, imported.get_json()  # the synchronous report, not a 202
        assert imported.get_json()["report"]["created"] == 5
        invite_jobs = imported.get_json()["inviteJobIds"]
        invites = wait_for(
            lambda: len(done := _succeeded(Job.id.in_(invite_jobs))) == len(invite_jobs) and done
        )
        assert invites[0].result["summary"] == {"total": 5, "sent": 5, "failed": 0}
        assert {r.lower() for r in smtp_server.recipients()} >= {f"user{i}@globex.com" for i in range(5)}
        # When Globex's invites were done, Acme's backlog was still being worked on.
        done_at = max(job.finished_at for job in invites)
        acme_left = [
            j for j in _jobs(Job.id.in_(acme_jobs)) if j.finished_at is None or j.finished_at > done_at
        ]
        assert len(acme_left) >= 10
    finally:
        for process in workers:
            kill_tree(process)
    with db.session_scope() as session:
        first = session.scalar(select(func.min(Job.started_at)).where(Job.id.in_(acme_jobs)))
        reconciles = session.scalar(
            select(func.count())
            .select_from(CronRun)
            .where(CronRun.task == "reconcile-jobs", CronRun.started_at.between(first, done_at))
        )
    # The reconciler ran while the backlog was being worked (it runs in each worker's pump, so no
    # queue's backlog can delay it).
    assert reconciles >= 1


@pytest.mark.slow
def test_a_rate_limited_bulk_job_defers_and_another_companys_emails_go_meanwhile_on_the_same_worker(
    make_tenant,
    settings,
    smtp_server,  # noqa: F811
):
    """Acme may send 5 emails per window and has a bulk invite job of 12; Globex has one of 3,
    queued behind it. With one bulk worker process: Acme's job sends 5 and defers (it does not
    sleep), Globex's job runs to the end meanwhile, and Acme's job finishes later with every
    invite sent exactly once and no attempt spent. Orderings and counts, no durations."""
    rate = {"EMAIL_RATE_PER_MINUTE": "5", "EMAIL_RATE_WINDOW_SECONDS": "2"}
    runtime.init(
        replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=5, email_rate_window_seconds=2)
    )
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_users = make_users(acme.company_id, 12, prefix="acme")
    globex_users = make_users(globex.company_id, 3, prefix="globex")
    with db.session_scope() as session:
        acme_job = enqueue(session, INVITE_KIND, {"user_ids": acme_users}, company_id=acme.company_id)[0].id
        globex_job = enqueue(session, INVITE_KIND, {"user_ids": globex_users}, company_id=globex.company_id)[
            0
        ].id
    assert queue("emails", runtime.redis()).get_job_ids() == [acme_job, globex_job]
    process = start_worker_process("--group", "bulk", **FAST_PUMP, **rate, SMTP_URL=smtp_server.url)
    try:
        jobs = wait_for(
            lambda: len(done := _succeeded(Job.id.in_([acme_job, globex_job]))) == 2 and done, 120
        )
    finally:
        kill_tree(process)
    senders = [m.rcpt_tos[0].partition("@")[0].rstrip("0123456789") for m in smtp_server.messages]
    # Acme's first window, then all of Globex while Acme's job waited, then the rest of Acme's.
    assert senders == ["acme"] * 5 + ["globex"] * 3 + ["acme"] * 7
    by_id = {job.id: job for job in jobs}
    assert by_id[globex_job].finished_at < by_id[acme_job].finished_at
    assert by_id[acme_job].attempts == 1  # deferrals spend no attempt
    assert by_id[acme_job].result["summary"] == {"total": 12, "sent": 12, "failed": 0}
    message_ids = Counter(m.message["Message-ID"] for m in smtp_server.messages)
    assert len(message_ids) == 15 and set(message_ids.values()) == {1}  # each invite exactly once
    assert sorted(smtp_server.recipients()) == sorted(
        [f"acme{i}@acme.com" for i in range(12)] + [f"globex{i}@acme.com" for i in range(3)]
    )


def test_every_queue_a_job_can_land_on_is_served_by_a_shipped_worker_group(settings):
    """A task on a queue no worker group serves would wait forever: the groups cover every task and
    every scheduled task, and bulk queues stay out of the interactive group (and vice versa)."""
    from app.cron import schedule
    from app.jobs.registry import BULK_QUEUES, get_task, known_kinds
    from app.jobs.worker import GROUPS

    served = {name for queues in GROUPS.values() for name in queues}
    task_queues = {get_task(kind).queue for kind in known_kinds() if not kind.startswith("probe.")}
    task_queues |= {task.queue for task in schedule.all_tasks() if not task.name.startswith("probe")}
    assert task_queues <= served, task_queues - served
    assert set(GROUPS["bulk"]) == BULK_QUEUES
    assert not set(GROUPS["interactive"]) & BULK_QUEUES
    assert set(runtime.settings().rq_queues) == served  # a worker with no group serves them all
