"""The three entry points as real processes: cron.py, worker.py, and their configuration."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from rq_scheduler import Scheduler
from sqlalchemy import select, text

from app import db, runtime
from app.config import ConfigError, load_settings
from app.cron import schedule
from app.cron.models import CronRun
from app.cron.scheduler import register_schedule, registered_ids
from app.jobs import enqueue
from app.jobs.models import Job
from app.jobs.rq_plumbing import JSONJob
from tests.conftest import ROOT, kill_tree, start_worker_process, subprocess_env, wait_for


def _cron(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cron.py"), *args],
        cwd=ROOT,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _runs() -> list[CronRun]:
    with db.session_scope() as session:
        return list(session.scalars(select(CronRun).order_by(CronRun.id)))


@pytest.mark.slow
def test_cron_run_reconcile_jobs_records_a_run_and_exits_0(settings):
    result = _cron("run", "reconcile-jobs")
    assert result.returncode == 0, result.stderr
    [run] = _runs()
    assert (run.task, run.trigger, run.outcome) == ("reconcile-jobs", "cli", "succeeded")
    assert run.summary == {"examined": 0, "republished": 0, "marked_queued": 0, "published_due": 0}
    assert run.finished_at is not None and run.finished_at >= run.started_at


@pytest.mark.slow
def test_cron_run_of_a_failing_task_exits_1_and_records_why(settings):
    result = _cron("run", "probe-fail")
    assert result.returncode == 1
    assert "probe cron failure" in result.stderr
    [run] = _runs()
    assert (run.outcome, run.error) == ("failed", "RuntimeError: probe cron failure")


@pytest.mark.slow
def test_cron_run_of_an_unknown_task_exits_2_naming_the_known_ones(settings):
    result = _cron("run", "no-such-task")
    assert result.returncode == 2
    assert "reconcile-jobs" in result.stderr and "prune-jobs" in result.stderr
    assert _runs() == []


@pytest.mark.slow
def test_cron_list_prints_the_schedule():
    result = _cron("list")
    assert result.returncode == 0
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert lines["reconcile-jobs"][:6] == ["*", "*", "*", "*", "*", "cron"]
    assert lines["prune-jobs"][:5] == ["17", "3", "*", "*", "*"]


@pytest.mark.slow
def test_serve_registers_each_task_once_even_when_started_twice(settings):
    for _ in range(2):
        result = _cron("serve", "--register-only")
        assert result.returncode == 0, result.stderr
    expected = sorted(f"cron-{task.name}" for task in schedule.all_tasks())  # every feature's tasks
    assert {"cron-prune-jobs", "cron-probe-fail", "cron-reconcile-jobs"} <= set(expected)
    assert registered_ids(runtime.redis()) == expected
    scheduled = runtime.redis().zrange("rq:scheduler:scheduled_jobs", 0, -1)
    assert sorted(s.decode() for s in scheduled) == expected


def test_a_scheduled_run_executes_in_the_worker_and_is_recorded(settings, worker):
    register_schedule(runtime.redis())
    scheduler = Scheduler(connection=runtime.redis(), queue_name="cron", job_class=JSONJob)
    scheduler.enqueue_job(JSONJob.fetch("cron-reconcile-jobs", connection=runtime.redis()))  # as if due now
    worker(queues=("cron",))
    [run] = _runs()
    assert (run.task, run.trigger, run.outcome) == ("reconcile-jobs", "scheduler", "succeeded")


@pytest.mark.slow
def test_prune_jobs_deletes_only_finished_jobs_past_retention(settings):
    with db.session_scope() as session:
        ids = [enqueue(session, "probe.effect")[0].id for _ in range(3)]
    old, recent, active = ids
    with db.engine().begin() as conn:
        conn.execute(
            text(
                "UPDATE jobs SET status = 'succeeded', finished_at = now() - make_interval(days => :d)"
                " WHERE id = :id"
            ),
            [{"d": settings.job_retention_days + 1, "id": old}, {"d": 1, "id": recent}],
        )
        conn.execute(
            text("UPDATE jobs SET created_at = now() - interval '1 year' WHERE id = :id"), {"id": active}
        )
    result = _cron("run", "prune-jobs")
    assert result.returncode == 0, result.stderr
    with db.session_scope() as session:
        assert set(session.scalars(select(Job.id))) == {recent, active}
    assert _runs()[-1].summary == {"jobs_deleted": 1, "cron_runs_deleted": 0}


def _status(job_id: str) -> str:
    with db.session_scope() as session:
        return session.get_one(Job, job_id).status


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish_before_the_worker_exits(settings, private_redis):
    with db.session_scope() as session:
        job, _ = enqueue(session, "probe.effect", {"seconds": 3})
    process = start_worker_process(REDIS_URL=private_redis.url)
    try:
        wait_for(lambda: _status(job.id) == "started", timeout=60)
        process.send_signal(signal.SIGTERM)  # what a redeploy sends first
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            kill_tree(process)
    with db.session_scope() as session:
        finished = session.get_one(Job, job.id)
    assert (finished.status, finished.attempts) == ("succeeded", 1)


# --- configuration -------------------------------------------------------------------------


BASE_ENV = {"APP_ENV": "test", "DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"}


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://h"}, "REDIS_URL"),
        ({"JOB_MAX_ATTEMPTS": "three"}, "JOB_MAX_ATTEMPTS"),
        ({"JOB_MAX_ATTEMPTS": "0"}, "JOB_MAX_ATTEMPTS"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"APP_ENV": "prod"}, "JWT_SECRET"),
        ({"APP_ENV": "prod", "JWT_SECRET": "s" * 40, "SMTP_URL": "sink"}, "SMTP_URL"),
    ],
)
def test_missing_or_malformed_setting_names_the_variable(overrides, variable):
    env = {**BASE_ENV, **overrides}
    with pytest.raises(ConfigError, match=variable):
        load_settings({k: v for k, v in env.items() if v is not None})


def test_profile_fills_unset_values_and_the_environment_wins():
    prod = {
        **BASE_ENV,
        "APP_ENV": "prod",
        "JWT_SECRET": "s" * 40,
        "SMTP_URL": "smtps://u:p@mail.example:465",
        "PUBLIC_API_URL": "https://api.example.com",
    }
    settings = load_settings(prod)
    assert settings.job_max_attempts == 5  # from .env-prod
    overridden = load_settings({**prod, "JOB_MAX_ATTEMPTS": "2"})
    assert overridden.job_max_attempts == 2
    assert settings.database_url == "postgresql+psycopg2://u@h/db"


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["worker.py", "cron.py run reconcile-jobs"])
def test_entry_points_refuse_to_start_on_a_bad_setting(settings, entry):  # settings: a full env
    env = subprocess_env(JOB_TIMEOUT_SECONDS="soon")
    result = subprocess.run(
        [sys.executable, *entry.split()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "JOB_TIMEOUT_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_company_command_prints_a_working_admin_token(app, client):
    result = app.test_cli_runner().invoke(
        args=[
            "create-company",
            "--name",
            "Acme",
            "--admin-email",
            "Boss@Acme.example",
            "--timezone",
            "Asia/Tokyo",
        ]
    )
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.output.strip().splitlines())
    response = client.get("/jobs", headers={"Authorization": f"Bearer {values['token']}"})
    assert response.status_code == 200
    from app.features.identity.models import Company, User

    with db.session_scope() as session:
        company = session.get_one(Company, values["company_id"])
        admin = session.get_one(User, values["admin_user_id"])
        assert (company.name, company.timezone, admin.email) == ("Acme", "Asia/Tokyo", "boss@acme.example")
        assert {role.name for role in admin.roles} == {"Company Admin"}
    operator = app.test_cli_runner().invoke(
        args=["create-company", "--name", "Ops", "--admin-email", "ops@ops.example", "--super-admin"]
    )
    assert operator.exit_code == 0, operator.output
    operator_id = dict(line.split("=", 1) for line in operator.output.strip().splitlines())["admin_user_id"]
    with db.session_scope() as session:
        assert {role.name for role in session.get_one(User, operator_id).roles} == {"Super Admin"}


def test_create_company_command_refuses_an_unknown_timezone(app):
    args = ["create-company", "--name", "Acme", "--admin-email", "a@acme.example"]
    args += ["--timezone", "Mars/Olympus"]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert "Mars/Olympus" in result.output


@pytest.mark.slow
def test_worker_logs_are_json_lines_carrying_job_id_and_worker(settings, private_redis, tmp_path):
    import json

    with db.session_scope() as session:
        job, _ = enqueue(session, "probe.effect", {"note": "logged"})
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "--burst", "--no-pump"],
            cwd=ROOT,
            env=subprocess_env(REDIS_URL=private_redis.url, LOG_LEVEL="INFO"),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        assert process.wait(timeout=60) == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("message") == "job succeeded"]
    assert len(finished) == 1
    assert finished[0]["job_id"] == job.id
    assert finished[0]["worker"] and finished[0]["service"] == "worker"
    assert finished[0]["level"] == "INFO"
    # Issue 15: every timestamp carries its offset, and RQ's own lines (the worker's and its
    # work-horse's) carry the job_id too.
    from datetime import datetime

    assert all(datetime.fromisoformat(line["ts"]).utcoffset() is not None for line in lines)
    about_the_job = [line for line in lines if line["logger"].startswith("rq.") and job.id in line["message"]]
    messages = " | ".join(line["message"] for line in about_the_job)
    assert f"default: probe.effect ({job.id})" in messages  # the worker's dequeue line
    assert "Job OK" in messages  # written by the work-horse
    assert all(line.get("job_id") == job.id for line in about_the_job), about_the_job
    idle = [line for line in lines if line["logger"].startswith("rq.") and "Listening on" in line["message"]]
    assert idle and all("job_id" not in line for line in idle)
