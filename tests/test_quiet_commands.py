"""Quiet, helpful commands: `flask --help` without a database, one line per configuration error
(flask, gunicorn, worker, cron, alembic). Log timestamps and RQ's job_id: tests/test_processes.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


@pytest.mark.slow
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
