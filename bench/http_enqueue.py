"""A job-creating POST through gunicorn, against the least a Flask route can do for the same effect.

    bench/run http_enqueue      (needs wrk: apt-get install -y wrk)

Ours: `POST /admin/cron/prune-jobs/run` with `Prefer: respond-async` on the real app (bearer auth,
permission check, the audited job row, publish after commit, 202 + Location). Baseline
(bench/http_baseline.py): a route that INSERTs a row and calls `Queue.enqueue`. Both under
gunicorn with the same worker count, driven by wrk with the same connections, interleaved pairs.
Rate limits are off on both sides (the baseline has none).
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Row, bench_environment, print_rows
from sqlalchemy import text

from app import db
from app.auth import issue_access_token
from app.features.users import onboarding

WORKERS = "2"
CONNECTIONS = "8"
SECONDS = "8"
PAIRS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "-w",
            WORKERS,
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "error",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"bench: {app} did not start")


def _wrk(url: str, headers: dict[str, str]) -> tuple[float, float]:
    """(requests/s, p50 latency in ms) of a wrk run POSTing to `url`."""
    lines = ['wrk.method = "POST"', 'wrk.body = "{}"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"bench: {non_2xx.group(1)} failed requests at {url}")
    return rate, float(p50) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    if not Path("/usr/bin/wrk").exists():
        print("\nbench/http_enqueue: skipped (install wrk: apt-get install -y wrk)")
        return
    with bench_environment() as settings:
        with db.session_scope() as session:
            company, operator = onboarding.create_company(
                session, "Bench", "ops@bench.example", "Operator", super_admin=True
            )
            token = issue_access_token(operator.id, company.id, ttl_seconds=3600)
        with db.engine().begin() as conn:
            conn.execute(text("CREATE TABLE bench_http_rows (id bigserial PRIMARY KEY, payload text)"))
        env = {
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": settings.database_url,
            "BENCH_BASELINE_DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "LOG_LEVEL": "ERROR",
            "RATE_LIMITS_ENABLED": "false",
            "PYTHONPATH": str(ROOT),
        }
        ours_port, base_port = _free_port(), _free_port()
        servers = [
            _serve("app:create_app()", ours_port, env),
            _serve("bench.http_baseline:app", base_port, env),
        ]
        try:
            ours_url = f"http://127.0.0.1:{ours_port}/admin/cron/prune-jobs/run"
            ours_headers = {"Authorization": f"Bearer {token}", "Prefer": "respond-async"}
            base_url = f"http://127.0.0.1:{base_port}/enqueue"
            _wrk(ours_url, ours_headers)  # warm both (imports, pools) before measuring
            _wrk(base_url, {})
            base_rates, our_rates, base_p50, our_p50 = [], [], [], []
            for index in range(PAIRS):
                runs = [("base", base_url, {}), ("ours", ours_url, ours_headers)]
                for side, url, headers in runs if index % 2 == 0 else reversed(runs):
                    rate, p50 = _wrk(url, headers)
                    (base_rates if side == "base" else our_rates).append(rate)
                    (base_p50 if side == "base" else our_p50).append(p50)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    print_rows(
        f"Job-creating POST through gunicorn ({WORKERS} workers, wrk {CONNECTIONS} connections)",
        [
            Row(
                "202 + job id",
                "req/s",
                "Flask route: INSERT + `Queue.enqueue`",
                base_rates,
                "POST /admin/cron/<task>/run (auth, audited job row, publish)",
                our_rates,
                "≥ 0.8x",
            )
        ],
    )
    base_ms, our_ms = statistics.median(base_p50), statistics.median(our_p50)
    print(f"\np50 latency: baseline {base_ms:.1f} ms, ours {our_ms:.1f} ms")


if __name__ == "__main__":
    main()
