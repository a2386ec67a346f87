"""CSV user import (contract §7.2): row checks, previews kept in Postgres for 30 minutes, and the
import itself.

The import runs as a job and writes everything in the job's one transaction (departments, job
titles, users, Employee roles, wallets with their initial allowance, manager links) with set-based
INSERTs, so 1000s of rows take a handful of statements. The preview row is locked first and marked
consumed in the same transaction: a second run (retry, double click, re-run after a crash) finds
it consumed and answers the stored report, creating nothing twice. A bad row among the rows to
import (checked again at import time) makes the whole import a no-op that names the row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from app.api import ApiError, format_utc
from app.db import utcnow
from app.features.company.domains import list_domains
from app.features.identity.catalogue import EMPLOYEE_KEY
from app.features.identity.models import Department, JobTitle, User, UserRole
from app.features.identity.service import default_role_id
from app.features.users.csv_parsing import CsvRow
from app.features.users.import_models import CsvImportPreview, PreviewStatus, UserManager
from app.features.wallets.models import BalanceType, TransactionType, Wallet, WalletTransaction
from app.features.wallets.service import INITIAL_ALLOWANCE_REASON, initial_allowance
from app.ids import new_id
from app.jobs.models import ACTIVE_STATUSES, Job

PREVIEW_TTL = timedelta(minutes=30)
PREVIEW_NOT_FOUND = "Preview expired or not found"
IMPORT_KIND = "users.import_csv"
CHECK_KIND = "users.check_csv_preview"
INVITE_KIND = "users.send_welcome_emails_bulk"
INVITE_JOB_SIZE = 500  # users per invite job: big imports fan out over several workers
_CHUNK = 1000  # rows per INSERT statement

_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)

# Error texts (the old API's where it had one).
NAME_TOO_SHORT = "Name must have at least 2 characters"
NAME_TOO_LONG = "Name must have at most 100 characters"
INVALID_EMAIL = "Invalid email"
DUPLICATE_IN_FILE = "Duplicate email in file"
EXISTS_IN_COMPANY = "Email already exists in company"
INVALID_MANAGER_EMAIL = "Invalid manager email"
OWN_MANAGER = "A person cannot be their own manager"
MANAGER_NOT_FOUND = "Manager email not found in the file or the company"
MANAGER_CYCLE = "Manager cycle"


def valid_email(email: str) -> bool:
    return len(email) <= 254 and "@" in email and bool(_EMAIL.match(email)) and ".." not in email


def row_to_dict(row: CsvRow) -> dict[str, Any]:
    return {
        "rowNumber": row.row_number,
        "name": row.name,
        "email": row.email,
        "department": row.department,
        "position": row.job_title,
        "managerEmail": row.manager_email,
        "status": "valid",
        "errors": [],
    }


# --- checks --------------------------------------------------------------------------------


def check_rows(session: Session, company_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set `status` and `errors` on each row (in place, and returned). A handful of queries for
    any number of rows: the company's domains, and which emails of the file already exist."""
    for row in rows:
        row["errors"] = []
    domains = {d.domain for d in list_domains(session, company_id)}
    emails = {row["email"] for row in rows} | {row["managerEmail"] for row in rows if row.get("managerEmail")}
    existing = _existing_emails(session, company_id, emails)

    first_row: dict[str, int] = {}
    for row in rows:
        errors: list[str] = row["errors"]
        name = (row.get("name") or "").strip()
        if len(name) < 2:
            errors.append(NAME_TOO_SHORT)
        elif len(name) > 100:
            errors.append(NAME_TOO_LONG)
        email = row["email"]
        if not valid_email(email):
            errors.append(INVALID_EMAIL)
        else:
            domain = email.rpartition("@")[2]
            if domains and domain not in domains:
                allowed = ", ".join(f"@{d}" for d in sorted(domains))
                errors.append(f"Email domain @{domain} is not one of the company's domains ({allowed})")
            if email in first_row:
                errors.append(f"{DUPLICATE_IN_FILE} (first in row {first_row[email]})")
            else:
                first_row[email] = row["rowNumber"]
            if email in existing:
                errors.append(EXISTS_IN_COMPANY)
        for key, label in (("department", "Department"), ("position", "Job title")):
            if row.get(key) and len(row[key]) > 100:
                errors.append(f"{label} must have at most 100 characters")

    # Managers are resolved to an existing user first, else to the email's first row in the file.
    by_email = {
        row["email"]: row
        for row in rows
        if first_row.get(row["email"]) == row["rowNumber"] and row["email"] not in existing
    }
    for row in rows:
        manager = row.get("managerEmail")
        if not manager:
            continue
        if not valid_email(manager):
            row["errors"].append(INVALID_MANAGER_EMAIL)
        elif manager == row["email"]:
            row["errors"].append(OWN_MANAGER)
        elif manager not in by_email and manager not in existing:
            row["errors"].append(MANAGER_NOT_FOUND)
    _mark_cycles(rows, by_email)
    _propagate_manager_errors(rows, by_email)
    for row in rows:
        row["status"] = "error" if row["errors"] else "valid"
    return rows


def _existing_emails(session: Session, company_id: str, emails: set[str]) -> set[str]:
    found: set[str] = set()
    listed = sorted(emails)
    for start in range(0, len(listed), 5000):
        found.update(
            session.scalars(
                select(func.lower(User.email)).where(
                    User.company_id == company_id, func.lower(User.email).in_(listed[start : start + 5000])
                )
            )
        )
    return found


def _mark_cycles(rows: list[dict[str, Any]], by_email: dict[str, dict[str, Any]]) -> None:
    """Rows whose chain of managers inside the file loops back (a → b → a) are errors."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in by_email:
        if state.get(start):
            continue
        path: list[str] = []
        email: str | None = start
        while email is not None and email in by_email and not state.get(email):
            state[email] = 1
            path.append(email)
            manager = by_email[email].get("managerEmail")
            email = manager if manager and manager != email else None
        if email is not None and state.get(email) == 1:  # looped back into the current path
            loop = path[path.index(email) :]
            text = f"{MANAGER_CYCLE}: {' → '.join([*loop, email])}"
            for member in loop:
                by_email[member]["errors"].append(text)
        for member in path:
            state[member] = 2


def _propagate_manager_errors(rows: list[dict[str, Any]], by_email: dict[str, dict[str, Any]]) -> None:
    """A row whose manager's row (in the file) has errors cannot be imported with its manager."""
    changed = True
    while changed:
        changed = False
        for row in rows:
            manager = row.get("managerEmail")
            target = by_email.get(manager) if manager else None
            if target is None or target is row or row["errors"] or not target["errors"]:
                continue
            row["errors"].append(f"The manager's row {target['rowNumber']} has errors")
            changed = True


# --- previews ------------------------------------------------------------------------------


def create_preview(
    session: Session, company_id: str, user_id: str, rows: list[CsvRow], *, check_now: bool
) -> CsvImportPreview:
    """Store the parsed rows; check them now (small files) or leave them for a job."""
    data = [row_to_dict(row) for row in rows]
    if check_now:
        check_rows(session, company_id, data)
    preview = CsvImportPreview(
        company_id=company_id,
        created_by=user_id,
        status=PreviewStatus.READY if check_now else PreviewStatus.CHECKING,
        total_rows=len(data),
        rows=data,  # type: ignore[arg-type]
        expires_at=utcnow() + PREVIEW_TTL,
    )
    session.add(preview)
    session.flush()
    return preview


def run_preview_check(session: Session, preview_id: str, progress: Callable[[int], None]) -> dict[str, Any]:
    """The job behind a large preview: check the stored rows and mark the preview ready."""
    preview = session.scalars(
        select(CsvImportPreview).where(CsvImportPreview.id == preview_id).with_for_update()
    ).first()
    if preview is None:
        raise LookupError(PREVIEW_NOT_FOUND)
    if preview.status == PreviewStatus.CHECKING:
        rows = [dict(r) for r in preview.rows]  # type: ignore[attr-defined]  # new objects: a real change
        progress(10)
        check_rows(session, preview.company_id, rows)
        preview.rows = rows  # type: ignore[assignment]
        flag_modified(preview, "rows")
        preview.status = PreviewStatus.READY
        # The 30 minutes start when the preview can be seen.
        preview.expires_at = utcnow() + PREVIEW_TTL
        session.flush()
    return preview_counts(preview)


def preview_counts(preview: CsvImportPreview) -> dict[str, Any]:
    rows: list[dict[str, Any]] = preview.rows  # type: ignore[assignment]
    valid = sum(1 for r in rows if r["status"] == "valid")
    return {
        "previewId": preview.id,
        "totalRows": len(rows),
        "validRows": valid,
        "rowsWithErrors": len(rows) - valid,
    }


def preview_response(preview: CsvImportPreview) -> dict[str, Any]:
    """The contract's preview body."""
    rows: list[dict[str, Any]] = preview.rows  # type: ignore[assignment]
    counts = preview_counts(preview)
    return {
        **counts,
        "preview": [_public_row(r) for r in rows],
        "summary": {"toCreate": counts["validRows"], "toUpdate": 0, "errors": counts["rowsWithErrors"]},
        "expiresAt": format_utc(preview.expires_at),
    }


def _public_row(row: dict[str, Any]) -> dict[str, Any]:
    body = {
        "rowNumber": row["rowNumber"],
        "name": row["name"],
        "email": row["email"],
        "status": row["status"],
        "errors": row["errors"],
    }
    for key in ("department", "position", "managerEmail"):
        if row.get(key):
            body[key] = row[key]
    if row["status"] == "valid":
        body["action"] = "create"
    return body


def get_preview(session: Session, company_id: str, preview_id: str, *, for_import: bool) -> CsvImportPreview:
    preview = session.get(CsvImportPreview, preview_id)
    if preview is None or preview.company_id != company_id:
        raise ApiError(400 if for_import else 404, PREVIEW_NOT_FOUND, "PREVIEW_NOT_FOUND")
    if preview.expires_at <= utcnow() and preview.import_job_id is None:
        raise ApiError(400 if for_import else 404, PREVIEW_NOT_FOUND, "PREVIEW_NOT_FOUND")
    return preview


def prune_previews(session: Session) -> int:
    """Delete expired previews whose import (if any) is no longer running."""
    active_import = exists().where(Job.id == CsvImportPreview.import_job_id, Job.status.in_(ACTIVE_STATUSES))
    result = session.execute(
        delete(CsvImportPreview).where(CsvImportPreview.expires_at < utcnow(), ~active_import)
    )
    return int(result.rowcount or 0)


# --- the import ----------------------------------------------------------------------------


def select_rows(preview: CsvImportPreview, confirmed_rows: list[int] | None) -> list[dict[str, Any]]:
    """The rows to import: those confirmed (rowNumbers), or every row that was valid."""
    rows: list[dict[str, Any]] = preview.rows  # type: ignore[assignment]
    if not confirmed_rows:
        return [dict(r) for r in rows if r["status"] == "valid"]
    wanted = set(confirmed_rows)
    known = {r["rowNumber"] for r in rows}
    unknown = sorted(wanted - known)
    if unknown:
        shown = ", ".join(str(n) for n in unknown[:10])
        raise ApiError(400, f"confirmedRows has row numbers not in the preview: {shown}", "UNKNOWN_ROWS")
    return [dict(r) for r in rows if r["rowNumber"] in wanted]


class _Conflict(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("conflict")
        self.errors = errors


@dataclass
class ImportOutcome:
    body: dict[str, Any]
    created_user_ids: list[str]


def run_import(
    session: Session,
    preview_id: str,
    company_id: str,
    confirmed_rows: list[int] | None,
    progress: Callable[[int], None],
) -> ImportOutcome:
    """Import a preview in `session`'s transaction: every row or none."""
    preview = session.scalars(
        select(CsvImportPreview)
        .where(CsvImportPreview.id == preview_id, CsvImportPreview.company_id == company_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if preview is None:
        raise LookupError(PREVIEW_NOT_FOUND)
    if preview.status == PreviewStatus.CONSUMED and preview.report is not None:
        return ImportOutcome(dict(preview.report), [])  # already imported: the same answer again
    all_rows: list[dict[str, Any]] = preview.rows  # type: ignore[assignment]
    selected = select_rows(preview, confirmed_rows)
    skipped = len(all_rows) - len(selected)
    progress(5)
    check_rows(session, company_id, selected)  # again: the company may have changed since
    bad = [r for r in selected if r["errors"]]
    if bad:
        return ImportOutcome(_failed(bad_errors(bad), skipped), [])
    progress(15)
    try:
        with session.begin_nested():
            created = _write(session, company_id, selected, progress)
    except _Conflict as conflict:
        return ImportOutcome(_failed(conflict.errors, skipped), [])
    body = {
        "status": "completed",
        "report": {"created": len(created), "updated": 0, "skipped": skipped, "errors": []},
    }
    preview.status = PreviewStatus.CONSUMED
    preview.consumed_at = utcnow()
    preview.report = body
    session.flush()
    progress(95)
    return ImportOutcome(body, created)


def remember_report(session: Session, preview_id: str, body: dict[str, Any]) -> None:
    preview = session.get_one(CsvImportPreview, preview_id)
    preview.report = body
    session.flush()


def bad_errors(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"rowNumber": r["rowNumber"], "email": r["email"], "reason": "; ".join(r["errors"])} for r in rows
    ]


def _failed(errors: list[dict[str, Any]], skipped: int) -> dict[str, Any]:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return {
        "status": "failed",
        "message": (
            f"Nothing was imported: row {first['rowNumber']} ({first['email']}): {first['reason']}{more}"
        ),
        "report": {"created": 0, "updated": 0, "skipped": skipped, "errors": errors},
    }


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _upsert_named(
    session: Session,
    model: type[Department] | type[JobTitle],
    company_id: str,
    names: dict[str, dict[str, Any]],
) -> dict[str, str]:
    """lower(name) -> id, creating the missing ones (matched case-insensitively)."""
    if not names:
        return {}
    keys = list(names)
    ids = dict(
        session.execute(
            select(func.lower(model.name), model.id).where(
                model.company_id == company_id, func.lower(model.name).in_(keys)
            )
        )
        .tuples()
        .all()
    )
    missing = [{"id": new_id(), "company_id": company_id, **names[k]} for k in keys if k not in ids]
    for chunk in _chunks(missing):
        session.execute(
            insert(model.__table__)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["company_id", "name"])
        )
    if missing:
        ids = dict(
            session.execute(
                select(func.lower(model.name), model.id).where(
                    model.company_id == company_id, func.lower(model.name).in_(keys)
                )
            )
            .tuples()
            .all()
        )
    return ids


def _write(
    session: Session, company_id: str, rows: list[dict[str, Any]], progress: Callable[[int], None]
) -> list[str]:
    now = utcnow()
    departments: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("department"):
            departments.setdefault(row["department"].lower(), {"name": row["department"]})
    department_ids = _upsert_named(session, Department, company_id, departments)
    titles: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("position"):
            department = row.get("department")
            titles.setdefault(
                row["position"].lower(),
                {
                    "name": row["position"],
                    "department_id": department_ids.get(department.lower()) if department else None,
                },
            )
    title_ids = _upsert_named(session, JobTitle, company_id, titles)
    progress(25)

    users = [
        {
            "id": new_id(),
            "company_id": company_id,
            "email": row["email"],
            "name": row["name"].strip(),
            "department_id": department_ids.get(row["department"].lower()) if row.get("department") else None,
            "job_title_id": title_ids.get(row["position"].lower()) if row.get("position") else None,
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    created: dict[str, str] = {}
    for index, chunk in enumerate(_chunks(users)):
        returned = (
            session.execute(
                insert(User.__table__)
                .values(chunk)
                .on_conflict_do_nothing(index_elements=["company_id", "email"])
                .returning(User.__table__.c.email, User.__table__.c.id)
            )
            .tuples()
            .all()
        )
        created.update(dict(returned))
        progress(25 + 35 * (index + 1) * _CHUNK // max(len(users), 1))
    if len(created) != len(users):  # someone created one of these emails since the check
        raced = [r for r in rows if r["email"] not in created]
        raise _Conflict(
            [{"rowNumber": r["rowNumber"], "email": r["email"], "reason": EXISTS_IN_COMPANY} for r in raced]
        )
    user_ids = [u["id"] for u in users]

    role_id = default_role_id(session, company_id, EMPLOYEE_KEY)  # by key: a renamed Employee still works
    for chunk in _chunks(user_ids):
        session.execute(
            insert(UserRole.__table__).values(
                [{"user_id": uid, "role_id": role_id, "assigned_at": now} for uid in chunk]
            )
        )
    progress(70)

    allowance = initial_allowance(session, company_id)
    wallets = [
        {
            "id": new_id(),
            "user_id": uid,
            "company_id": company_id,
            "compliment_balance": allowance,
            "redeemable_balance": 0,
            "created_at": now,
            "updated_at": now,
        }
        for uid in user_ids
    ]
    for chunk in _chunks(wallets):
        session.execute(insert(Wallet.__table__).values(chunk))
    if allowance > 0:  # the ledger row that explains the starting balance (as ensure_wallet writes)
        ledger = [
            {
                "id": new_id(),
                "wallet_id": w["id"],
                "company_id": company_id,
                "transaction_type": TransactionType.RESET.value,
                "balance_type": BalanceType.COMPLIMENT.value,
                "amount": allowance,
                "previous_balance": 0,
                "new_balance": allowance,
                "reason": INITIAL_ALLOWANCE_REASON,
                "created_at": now,
            }
            for w in wallets
        ]
        for chunk in _chunks(ledger):
            session.execute(insert(WalletTransaction.__table__).values(chunk))
    progress(85)

    managers = {r["email"]: r["managerEmail"] for r in rows if r.get("managerEmail")}
    if managers:
        outside = set(managers.values()) - set(created)
        ids_by_email = dict(created)
        if outside:
            ids_by_email.update(
                session.execute(
                    select(func.lower(User.email), User.id).where(
                        User.company_id == company_id, func.lower(User.email).in_(sorted(outside))
                    )
                )
                .tuples()
                .all()
            )
        links = [
            {
                "user_id": created[email],
                "manager_id": ids_by_email[manager],
                "company_id": company_id,
                "created_at": now,
            }
            for email, manager in managers.items()
        ]
        for chunk in _chunks(links):
            session.execute(insert(UserManager.__table__).values(chunk))
    progress(90)
    return user_ids
