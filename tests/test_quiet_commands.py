"""Quiet, helpful commands: `flask --help` without a database, one line per configuration error
(flask, gunicorn, worker, cron), log timestamps with their offset, RQ's own lines with job_id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest

from app import db
from app.jobs import enqueue
from tests.conftest import ROOT, subprocess_env

PYTHON_BIN = os.path.dirname(sys.executable)
NO_CONFIG = {
    "PATH": f"{PYTHON_BIN}:{os.environ['PATH']}",
    "HOME": os.environ.get("HOME", "/tmp"),
    "PYTHONPATH": str(ROOT),
    "APP_ENV": "prod",  # no DATABASE_URL, REDIS_URL or JWT_SECRET anywhere
}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_flask_help_lists_the_project_commands_without_any_configuration() -> None:
    result = _run([f"{PYTHON_BIN}/flask", "--app", "app", "--help"], NO_CONFIG)
    assert result.returncode == 0, result.stderr
    for command in ("create-company", "set-password", "seed-local", "seed-demo"):
        assert command in result.stdout
    assert result.stderr == ""


COMMANDS = {
    "flask": [
        f"{PYTHON_BIN}/flask",
        "--app",
        "app",
        "create-company",
        "--name",
        "X",
        "--admin-email",
        "a@x.io",
    ],
    "gunicorn": [f"{PYTHON_BIN}/gunicorn", "app:create_app()", "--bind", "127.0.0.1:0"],
    "worker": [sys.executable, "worker.py", "--burst"],
    "cron": [sys.executable, "cron.py", "run", "prune-jobs"],
    "alembic": [sys.executable, "-m", "alembic", "upgrade", "head"],
}


@pytest.mark.slow
@pytest.mark.parametrize("process", sorted(COMMANDS))
def test_a_configuration_error_is_one_line_naming_the_variable(process) -> None:
    variable = "DATABASE_URL"  # the first setting every one of them reads
    result = _run(COMMANDS[process], NO_CONFIG)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    [line] = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert line.startswith(f"{process}: configuration error:") and f'"{variable}"' in line
    noise = [
        ln for ln in result.stderr.splitlines() if ln != line and "[INFO]" not in ln
    ]  # gunicorn's banner
    assert noise == []


@pytest.mark.slow
@pytest.mark.parametrize("process", ["worker", "cron", "gunicorn"])
def test_a_malformed_optional_setting_is_one_line_too(settings, process) -> None:
    result = _run(COMMANDS[process], subprocess_env(JOB_TIMEOUT_SECONDS="soon"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert [ln for ln in result.stderr.splitlines() if "JOB_TIMEOUT_SECONDS" in ln] != []


@pytest.mark.slow
def test_worker_log_lines_carry_their_timezone_and_rq_lines_the_job_id(settings, private_redis, tmp_path):
    with db.session_scope() as session:
        job, _ = enqueue(session, "probe.effect", {"note": "logged"})
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # a forking worker: RQ's lines come from the worker and its horse
            [sys.executable, str(ROOT / "worker.py"), "--burst", "--no-scheduler"],
            cwd=ROOT,
            env=subprocess_env(REDIS_URL=private_redis.url, LOG_LEVEL="INFO"),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        assert process.wait(timeout=60) == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert lines
    for line in lines:
        stamp = datetime.fromisoformat(line["ts"])
        assert stamp.utcoffset() is not None, line["ts"]
    about_the_job = [line for line in lines if line["logger"].startswith("rq.") and job.id in line["message"]]
    messages = " | ".join(line["message"] for line in about_the_job)
    assert "Job OK" in messages  # written by the work-horse
    assert f"default: probe.effect ({job.id})" in messages  # the worker's dequeue line
    assert all(line.get("job_id") == job.id for line in about_the_job), about_the_job
    idle = [line for line in lines if line["logger"].startswith("rq.") and "Listening on" in line["message"]]
    assert idle and all("job_id" not in line for line in idle)
