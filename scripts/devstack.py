#!/usr/bin/env python3
"""Run the whole Valorize system locally for one person (what `scripts/run` starts).

Expects DATABASE_URL and REDIS_URL in the environment (scripts/with_services.py --mode run sets
them). Steps:

  1. alembic upgrade head
  2. flask --app app seed-local      (only if the app defines that command)
  3. four children, each in its own process group:
       api        gunicorn 'app:create_app()' --bind 127.0.0.1:$PORT --workers 2
       worker     python worker.py --group interactive   (imports, reports, scheduled tasks…)
       worker-bulk python worker.py --group bulk         (email; companies take turns)
       scheduler  python cron.py serve

Ctrl-C or SIGTERM stops all children (SIGTERM, then SIGKILL after a grace period; a second Ctrl-C
skips the grace period) and exits 0. If a child exits on its own, the others are stopped and the
exit status is non-zero. APP_ENV defaults to dev, PORT to 8000.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GRACE_SECONDS = 20.0
READY_TIMEOUT = 60.0

_stop_requests: list[int] = []


def log(message: str) -> None:
    print(f"[devstack] {message}", file=sys.stderr, flush=True)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    _stop_requests.append(signum)


def run_step(name: str, command: list[str], env: dict[str, str]) -> int:
    log(f"{name}: {' '.join(command)}")
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


def has_seed_local(env: dict[str, str]) -> bool:
    result = subprocess.run(
        [PYTHON, "-m", "flask", "--app", "app", "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        log(f"`flask --app app --help` failed (exit {result.returncode}), skipping seed-local: {tail}")
        return False
    return re.search(r"^\s+seed-local\b", result.stdout, re.MULTILINE) is not None


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> None:
        log(f"starting {name}: {' '.join(command)}")
        # Own process group: a Ctrl-C in the terminal reaches only us, and we stop the children in
        # order (one SIGTERM each) instead of them all getting SIGINT at once.
        self.children[name] = subprocess.Popen(command, env=self.env, cwd=ROOT, start_new_session=True)

    def exited(self) -> tuple[str, int] | None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is None:
                log(f"stopping {name} (pid {proc.pid})")
                _signal_leader(proc, signal.SIGTERM)
        seen = len(_stop_requests)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and len(_stop_requests) == seen:
            if all(proc.poll() is not None for proc in self.children.values()):
                break
            time.sleep(0.1)
        for name, proc in self.children.items():
            if proc.poll() is None:
                log(f"{name} did not stop in time; killing it")
            # Also removes anything the child left behind in its group (e.g. an RQ work horse).
            _kill_group(proc)
            proc.wait()


def _signal_leader(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    os.chdir(ROOT)
    env = dict(os.environ)
    env.setdefault("APP_ENV", "dev")
    env.setdefault("PYTHONUNBUFFERED", "1")
    bindir = str(Path(PYTHON).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not env.get(name)]
    if missing:
        log(f"{' and '.join(missing)} not set; start this through scripts/run (scripts/with_services.py)")
        return 2
    port = int(env.get("PORT") or 8000)
    env["PORT"] = str(port)
    if port_open(port):
        log(f"port {port} is already in use; stop what uses it or set PORT")
        return 2

    code = run_step("migrate", [PYTHON, "-m", "alembic", "upgrade", "head"], env)
    if code != 0:
        log(f"alembic upgrade head failed (exit {code})")
        return code
    if has_seed_local(env):
        code = run_step("seed", [PYTHON, "-m", "flask", "--app", "app", "seed-local"], env)
        if code != 0:
            log(f"flask seed-local failed (exit {code})")
            return code

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)

    stack = Stack(env)
    stack.start(
        "api",
        [PYTHON, "-m", "gunicorn", "app:create_app()", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
    )
    stack.start("worker", [PYTHON, "worker.py", "--group", "interactive"])
    stack.start("worker-bulk", [PYTHON, "worker.py", "--group", "bulk"])
    stack.start("scheduler", [PYTHON, "cron.py", "serve"])

    announced = False
    started = time.monotonic()
    result = 0
    try:
        while not _stop_requests:
            ended = stack.exited()
            if ended is not None:
                name, code = ended
                log(f"{name} exited with status {code}; stopping the others")
                result = code if code > 0 else 1
                break
            if not announced:
                if port_open(port):
                    print(f"API listening on http://127.0.0.1:{port} (docs at /docs)", flush=True)
                    announced = True
                elif time.monotonic() - started > READY_TIMEOUT:
                    log(f"api is not accepting connections on port {port} after {READY_TIMEOUT:.0f}s")
                    announced = True
            time.sleep(0.2)
        else:
            log(f"got {signal.Signals(_stop_requests[0]).name}; stopping")
    finally:
        stack.stop()
    return result


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C during migrate/seed (the children are not started yet)
        sys.exit(130)
