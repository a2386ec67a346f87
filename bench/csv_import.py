"""The CSV user import through the service path, against `COPY` of the same rows with the same effect.

    bench/run csv_import                      # 20,000 rows, 3 interleaved pairs
    python scripts/with_services.py --mode test -- .venv/bin/python bench/csv_import.py --rows 100000

The file: N valid rows (`nome,email,departamento,cargo,email_gestor`, 7 departments, 13 job titles,
a tree of managers 10 wide whose root reports to the company's admin). Each run imports it into a
company of its own (made before the clock starts).

1. Import. Timed, ours: what the API and the worker do for the file, as they do it: the preview
   request's work (`create_preview`: parse, COPY of the rows into `csv_import_rows`, the preview
   row; committed), the check job and then the import job, each run by the kernel's `run_job`
   as a worker runs it (lock, started row, the task, succeeded row, commit), no invites.
   Baseline: the csv module parses the same bytes, Python makes the ids, and `COPY` writes the
   same effect in one transaction: the departments and job titles, the users, their Employee
   roles, wallets at the weekly allowance, one RESET ledger row each, and the manager links.
2. Preview of a large file. Ours: `create_preview` + the check job + the body streamed out
   (`preview_json`, read to the end). Baseline: csv module parse + `COPY` of the rows into
   `csv_import_rows` + `json.dumps` of the rows (what a preview stores and answers, no checks).
3. Memory: the peak RSS of a fresh process running ours once (import, as in 1), at 20,000 and at
   N rows (or 100,000): bounded by a constant, not by the file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tracemalloc
from typing import Any

from common import ROOT, Row, bench_environment, compare, print_rows
from sqlalchemy import text

from app import db, runtime
from app.config import load_settings
from app.features.identity.catalogue import EMPLOYEE_KEY
from app.features.users import csv_import, onboarding
from app.features.users.models import CsvImportPreview
from app.features.wallets.service import INITIAL_ALLOWANCE_REASON
from app.ids import id_time_prefix
from app.jobs import enqueue
from app.jobs.registry import load_task_modules
from app.jobs.runner import run_job

PAIRS = 3
LIMITS = {"CSV_MAX_ROWS": "1000000", "CSV_MAX_BYTES": str(512 * 1024 * 1024)}


def staff_csv(count: int) -> bytes:
    lines = ["nome,email,departamento,cargo,email_gestor"]
    for i in range(count):
        manager = "boss@acme.com" if i == 0 else f"user{(i - 1) // 10}@acme.com"
        lines.append(f"User {i},user{i}@acme.com,Dept {i % 7},Title {i % 13},{manager}")
    return ("\n".join(lines) + "\n").encode()


_companies = 0


def new_company() -> tuple[str, str]:
    global _companies
    _companies += 1
    with db.session_scope() as session:
        company, admin = onboarding.create_company(session, f"Bench {_companies}", "boss@acme.com", "Boss")
        return company.id, admin.id


# --- ours ------------------------------------------------------------------------------------


def _run(job_id: str) -> dict[str, Any]:
    result = run_job(job_id)
    assert isinstance(result, dict) and "skipped" not in result, result
    return result


def ours_preview(company_id: str, admin_id: str, data: bytes) -> str:
    """The preview request's work (the check left to its job, as for any large file) + the job."""
    with db.session_scope() as session:
        preview = csv_import.create_preview(
            session, company_id, admin_id, data, max_rows=runtime.settings().csv_max_rows, check_up_to=0
        )
        job, _ = enqueue(
            session,
            csv_import.CHECK_KIND,
            {"preview_id": preview.id},
            company_id=company_id,
            requested_by=admin_id,
        )
        preview.check_job_id = job.id
        preview_id = preview.id
    _run(job.id)
    return preview_id


def ours_import(company_id: str, admin_id: str, data: bytes, rows: int) -> None:
    preview_id = ours_preview(company_id, admin_id, data)
    with db.session_scope() as session:
        job, _ = enqueue(
            session,
            csv_import.IMPORT_KIND,
            {"preview_id": preview_id, "confirmed_rows": None, "send_invites": False},
            company_id=company_id,
            requested_by=admin_id,
        )
        session.get_one(CsvImportPreview, preview_id).import_job_id = job.id
    result = _run(job.id)
    assert result["report"]["created"] == rows, result


def ours_preview_body(company_id: str, admin_id: str, data: bytes) -> int:
    preview_id = ours_preview(company_id, admin_id, data)
    with db.session_scope() as session:
        preview = csv_import.get_preview(session, company_id, preview_id, for_import=False)
        return sum(len(piece) for piece in csv_import.preview_json(preview))


# --- baselines -------------------------------------------------------------------------------


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)


def _parsed(data: bytes) -> list[list[str]]:
    """(name, email lowercased, department, job title, manager email lowercased) of each row."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    next(reader)
    return [
        [c[0].strip(), c[1].strip().lower(), c[2].strip(), c[3].strip(), c[4].strip().lower()] for c in reader
    ]


_USER = ("id", "company_id", "email", "name", "department_id", "job_title_id", "created_at", "updated_at")
_WALLET = ("id", "user_id", "company_id", "compliment_balance", "created_at", "updated_at")
_LEDGER = (
    *("id", "wallet_id", "company_id", "transaction_type", "balance_type", "amount"),
    *("previous_balance", "new_balance", "reason", "created_at"),
)


def baseline_import(company_id: str, _admin_id: str, data: bytes, rows: int) -> None:
    """The same effect as an import, written with COPY: no checks, no staging, ids from Python."""
    with db.engine().begin() as conn:
        now = conn.execute(text("SELECT now()")).scalar_one()
        allowance = 100
        role_id = conn.execute(
            text("SELECT id FROM roles WHERE company_id = :c AND key = :k"),
            {"c": company_id, "k": EMPLOYEE_KEY},
        ).scalar_one()
        boss = conn.execute(
            text("SELECT id FROM users WHERE company_id = :c AND email = 'boss@acme.com'"), {"c": company_id}
        ).scalar_one()
        prefix = id_time_prefix(now.timestamp())
        serial = iter(range(10**9))

        def new() -> str:
            return f"{prefix}{next(serial):015x}"

        parsed = _parsed(data)
        departments = {name: new() for name in dict.fromkeys(c[2] for c in parsed)}
        titles: dict[str, tuple[str, str]] = {}
        for c in parsed:
            if c[3] not in titles:
                titles[c[3]] = (new(), departments[c[2]])
        users = {c[1]: new() for c in parsed}
        wallets = [(new(), users[c[1]]) for c in parsed]
        managers = {**users, "boss@acme.com": boss}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        _copy(
            cursor,
            "departments",
            ("id", "company_id", "name", "created_at", "updated_at"),
            [(i, company_id, name, now, now) for name, i in departments.items()],
        )
        _copy(
            cursor,
            "job_titles",
            ("id", "company_id", "department_id", "name", "created_at", "updated_at"),
            [(i, company_id, d, name, now, now) for name, (i, d) in titles.items()],
        )
        _copy(
            cursor,
            "users",
            _USER,
            [
                (users[c[1]], company_id, c[1], c[0], departments[c[2]], titles[c[3]][0], now, now)
                for c in parsed
            ],
        )
        _copy(
            cursor,
            "user_roles",
            ("user_id", "role_id", "assigned_at"),
            [(users[c[1]], role_id, now) for c in parsed],
        )
        _copy(cursor, "wallets", _WALLET, [(w, u, company_id, allowance, now, now) for w, u in wallets])
        _copy(
            cursor,
            "wallet_transactions",
            _LEDGER,
            [
                (
                    new(),
                    w,
                    company_id,
                    "RESET",
                    "COMPLIMENT",
                    allowance,
                    0,
                    allowance,
                    INITIAL_ALLOWANCE_REASON,
                    now,
                )
                for w, _ in wallets
            ],
        )
        _copy(
            cursor,
            "user_managers",
            ("user_id", "manager_id", "company_id", "created_at"),
            [(users[c[1]], managers[c[4]], company_id, now) for c in parsed if c[4]],
        )
        assert cursor.rowcount == rows


def baseline_preview_body(company_id: str, admin_id: str, data: bytes) -> int:
    """Parse, store the rows with COPY, dump them as JSON: a preview without its checks."""
    with db.session_scope() as session:
        preview = CsvImportPreview(
            company_id=company_id, created_by=admin_id, total_rows=0, expires_at=db.utcnow()
        )
        session.add(preview)
        session.flush()
        parsed = _parsed(data)
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        _copy(
            cursor,
            "csv_import_rows",
            ("preview_id", "row_number", "name", "email", "department", "position", "manager_email"),
            [(preview.id, n, *c) for n, c in enumerate(parsed, 1)],
        )
        body = [
            {
                **dict(zip(("name", "email", "department", "position", "managerEmail"), c, strict=True)),
                **{"rowNumber": n, "status": "valid", "errors": [], "action": "create"},
            }
            for n, c in enumerate(parsed, 1)
        ]
        return len(json.dumps({"previewId": preview.id, "preview": body}))


# --- memory ----------------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc (ru_maxrss would carry the peak of
    the parent that forked it across exec)."""
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith(f"{field}:"))
    return int(kb) / 1024


def memory_probe(rows: int) -> None:
    """In a fresh process: RSS before one import of `rows` rows, the peak RSS after it, and the
    peak of Python's allocations during it (tracemalloc), as JSON on stdout."""
    runtime.init(load_settings({**os.environ, "LOG_LEVEL": "ERROR", **LIMITS}))
    load_task_modules()
    ours_import(*new_company(), staff_csv(10), 10)  # warm: first statements, first job
    company_id, admin_id = new_company()
    data = staff_csv(rows)
    before = _status_mb("VmRSS")
    tracemalloc.start()
    ours_import(company_id, admin_id, data, rows)
    python_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    peak = _status_mb("VmHWM")
    print(
        json.dumps(
            {"before_mb": before, "peak_mb": peak, "python_mb": python_peak, "file_mb": len(data) / 1e6}
        )
    )


def memory(rows: int) -> dict[str, Any]:
    probe = subprocess.run(
        [sys.executable, __file__, "--memory-probe", str(rows)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(probe.stdout.strip().splitlines()[-1])
    return result


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--memory-probe", type=int)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    rows = args.rows
    with bench_environment(**LIMITS):
        load_task_modules()
        data = staff_csv(rows)
        ours_import(*new_company(), staff_csv(10), 10)  # warm both sides' first statements
        baseline_import(*new_company(), staff_csv(10), 10)
        companies: list[tuple[str, str]] = []

        def fresh() -> None:
            companies.append(new_company())

        base, ours = compare(
            args.pairs,
            rows,
            lambda: baseline_import(*companies[-1], data, rows),
            lambda: ours_import(*companies[-1], data, rows),
            reset=fresh,
        )
        preview_base, preview_ours = compare(
            args.pairs,
            rows,
            lambda: baseline_preview_body(*companies[-1], data),
            lambda: ours_preview_body(*companies[-1], data),
            reset=fresh,
        )
        title = f"CSV import, {rows:,} valid rows ({len(data) / 1e6:.1f} MB), {args.pairs} interleaved pairs"
        print_rows(
            title,
            [
                Row(
                    "import: preview + check job + import job (service path, `run_job`)",
                    "rows/s",
                    "`COPY` of the same effect (users, roles, wallets, ledger, managers)",
                    base,
                    "ours",
                    ours,
                    "≥ 0.33x (at most 3x COPY's time)",
                ),
                Row(
                    "preview of the file: store + check + body",
                    "rows/s",
                    "csv parse + `COPY` of the rows + `json.dumps`",
                    preview_base,
                    "ours",
                    preview_ours,
                    "",
                ),
            ],
        )
        sizes = sorted({20_000, max(rows, 100_000)})
        print(
            "\n| one import (ours), fresh process | file | RSS before | peak RSS | Python allocations, peak |"
        )
        print("|---|---|---|---|---|")
        for size in sizes:
            m = memory(size)
            print(
                f"| {size:,} rows | {m['file_mb']:.1f} MB | {m['before_mb']:.0f} MB | {m['peak_mb']:.0f} MB "
                f"| {m['python_mb']:.1f} MB |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
