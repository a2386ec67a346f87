"""CSV user import (contract §7.2): previews kept in Postgres for 30 minutes, their checks, and the
import itself. Every step is a fixed number of statements, whatever the size of the file, and no
step holds the file's rows in Python:

- a preview's rows go to `csv_import_rows` with COPY while the file is parsed;
- the checks are SQL over a temporary staging table (`csv_stage`, dropped at commit): the per-row
  rules, duplicates in the file (a window), emails and managers already in the company (joins),
  the managers' tree (a recursive query; only rows it cannot reach, which lead into a loop, are
  walked in Python to name the loop) and rows whose manager's row is bad (another recursive
  query);
- the import stages the rows to import, checks them again (the company may have changed since the
  preview) and writes departments, job titles, users, Employee roles, wallets with their initial
  allowance and ledger rows (the onboarding flow) and manager links with INSERT … SELECT, all in
  the job's one transaction. The preview row is locked first and marked consumed in the same
  transaction: a second run (retry, double click, re-run after a crash) finds it consumed and
  answers the stored report, creating nothing twice. A bad row among the rows to import makes the
  whole import a no-op that names the row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import column, delete, exists, func, select, table, text
from sqlalchemy.orm import Session

from app import db
from app.api import format_utc
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.features.company.domains import list_domains
from app.features.identity.models import Department, JobTitle
from app.features.users import onboarding
from app.features.users.csv_parsing import CsvError, CsvFile, Record
from app.features.users.models import CsvImportPreview, PreviewStatus
from app.ids import SQL_RANDOM_PART, id_time_prefix
from app.jobs.models import ACTIVE_STATUSES, Job

PREVIEW_TTL = timedelta(minutes=30)
PREVIEW_NOT_FOUND = "Preview expired or not found"
IMPORT_KIND = "users.import_csv"
CHECK_KIND = "users.check_csv_preview"
INVITE_KIND = "users.send_welcome_emails_bulk"
INVITE_JOB_SIZE = 500  # users per invite job: big imports fan out over several workers
COPY_BATCH = 2000  # rows per chunk handed to COPY (what the parser holds at a time)
FETCH_BATCH = 2000  # rows per fetch when a preview's rows are read back
WORK_MEM = "64MB"  # Postgres memory per sort or hash while a file is checked and imported
LOOP_NAMES_SHOWN = 10  # a manager loop's error names this many of its people

# The email rule, applied in SQL (`~`): a lowercased address, at most 254 characters, no "..".
EMAIL_PATTERN = (
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
DEPARTMENT_TOO_LONG = "Department must have at most 100 characters"
TITLE_TOO_LONG = "Job title must have at most 100 characters"


# --- the file into Postgres -----------------------------------------------------------------


class _CopySource:
    """A file for COPY … FROM STDIN (CSV): made from `records` a batch at a time as COPY reads.
    A CsvError met while parsing is kept in `error` (psycopg2 reports only that read() failed)."""

    def __init__(self, preview_id: str, records: Iterator[Record]) -> None:
        self._rows = ((preview_id, *record) for record in records)
        self._buffer = io.StringIO()
        # Every cell quoted: a quoted empty cell is an empty string; FORCE_NULL makes the optional
        # columns' empty cells NULL (the parser gives None for a blank cell).
        self._writer = csv.writer(self._buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
        self.error: CsvError | None = None

    def read(self, size: int = -1) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        try:
            self._writer.writerows(islice(self._rows, COPY_BATCH))
        except CsvError as exc:
            self.error = exc
            raise
        return self._buffer.getvalue()


_COPY_ROWS = (
    "COPY csv_import_rows (preview_id, row_number, name, email, department, position, manager_email) "
    "FROM STDIN WITH (FORMAT csv, FORCE_NULL (department, position, manager_email))"
)


def _copy_rows(session: Session, preview_id: str, records: Iterator[Record]) -> int:
    """Stream the parsed rows into `csv_import_rows` in the session's transaction; the count."""
    source = _CopySource(preview_id, records)
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor:  # type: ignore[union-attr]
        try:
            cursor.copy_expert(_COPY_ROWS, source, size=64 * 1024)
        except Exception:
            if source.error is not None:
                raise Invalid(source.error.message, source.error.code) from None
            raise
        return int(cursor.rowcount)


def create_preview(
    session: Session, company_id: str, user_id: str, data: bytes, *, max_rows: int, check_up_to: int
) -> CsvImportPreview:
    """Store the file's rows (streamed, never all in memory); check them now when there are at
    most `check_up_to`, else leave the preview `checking` for a job. Invalid (400) for a file
    that cannot be used (empty, binary, no header, too many rows, broken CSV)."""
    try:
        opened = CsvFile(data, max_rows)
    except CsvError as exc:
        raise Invalid(exc.message, exc.code) from None
    preview = CsvImportPreview(
        company_id=company_id,
        created_by=user_id,
        status=PreviewStatus.CHECKING,
        total_rows=0,
        expires_at=utcnow() + PREVIEW_TTL,
    )
    session.add(preview)
    session.flush()
    preview.total_rows = _copy_rows(session, preview.id, opened.records())
    if preview.total_rows <= check_up_to:
        _check_preview(session, preview)
    session.flush()
    return preview


# --- checks ---------------------------------------------------------------------------------

# The staging table: the rows being checked (a preview's, or those to import), each with its
# errors, whether it can be someone's manager (`is_node`: a valid email's first row, not in the
# company yet), the row of its manager in the file (`manager_row`) and the id it gets if imported.
# The rows to check, first on their own (and analyzed) so the planner knows their number.
_PICK = """
CREATE TEMP TABLE csv_picked ON COMMIT DROP AS
SELECT r.row_number, r.name, r.email, r.department, r.position, r.manager_email
FROM csv_import_rows r
WHERE r.preview_id = :preview_id AND {selection}
"""
_STAGE = """
CREATE TEMP TABLE csv_stage ON COMMIT DROP AS
WITH picked AS (
    SELECT r.*,
           (char_length(r.email) <= 254 AND r.email ~ :pattern AND strpos(r.email, '..') = 0) AS email_ok,
           (char_length(r.manager_email) <= 254 AND r.manager_email ~ :pattern
            AND strpos(r.manager_email, '..') = 0) AS manager_ok
    FROM csv_picked r
), firsts AS (  -- each valid email's first row
    SELECT email, min(row_number) AS row_number FROM picked WHERE email_ok GROUP BY email
), taken AS (
    SELECT DISTINCT lower(u.email) AS email FROM users u WHERE u.company_id = :company_id
)
SELECT p.row_number, p.name, p.email, p.department, p.position, p.manager_email,
       (p.email_ok AND p.row_number = f.row_number AND t.email IS NULL) AS is_node,
       CASE WHEN tm.email IS NULL THEN fm.row_number END AS manager_row,
       :id_prefix || {random_part} AS user_id,
       array_remove(ARRAY[
           CASE WHEN char_length(p.name) < 2 THEN :name_too_short
                WHEN char_length(p.name) > 100 THEN :name_too_long END,
           CASE WHEN NOT p.email_ok THEN :invalid_email END,
           CASE WHEN p.email_ok AND cardinality(CAST(:domains AS text[])) > 0
                     AND split_part(p.email, '@', 2) <> ALL(CAST(:domains AS text[]))
                THEN 'Email domain @' || split_part(p.email, '@', 2) || :domain_suffix END,
           CASE WHEN p.email_ok AND p.row_number <> f.row_number
                THEN :duplicate || ' (first in row ' || f.row_number || ')' END,
           CASE WHEN p.email_ok AND t.email IS NOT NULL THEN :exists END,
           CASE WHEN char_length(p.department) > 100 THEN :department_too_long END,
           CASE WHEN char_length(p.position) > 100 THEN :title_too_long END,
           CASE WHEN p.manager_email IS NULL THEN NULL
                WHEN NOT p.manager_ok THEN :invalid_manager
                WHEN p.manager_email = p.email THEN :own_manager
                WHEN fm.row_number IS NULL AND tm.email IS NULL THEN :manager_not_found END
       ], NULL) AS errors
FROM picked p
LEFT JOIN firsts f ON f.email = p.email
LEFT JOIN taken t ON t.email = p.email
LEFT JOIN firsts fm ON fm.email = p.manager_email
LEFT JOIN taken tm ON tm.email = p.manager_email
"""

# Managers form a forest unless some chain loops: the nodes a walk down from the roots (nodes
# whose manager is outside the file, or none) never reaches are exactly those leading into a loop.
_UNREACHED = text(
    """
    WITH RECURSIVE reached AS (
        SELECT row_number FROM csv_stage
        WHERE is_node AND (manager_row IS NULL OR manager_row = row_number)
      UNION ALL
        SELECT s.row_number FROM csv_stage s JOIN reached r ON s.manager_row = r.row_number
        WHERE s.is_node AND s.manager_row <> s.row_number
    )
    SELECT s.row_number, s.email, s.manager_row
    FROM csv_stage s LEFT JOIN reached r ON r.row_number = s.row_number
    WHERE s.is_node AND r.row_number IS NULL
    ORDER BY s.row_number
    """
)

_APPEND_ERRORS = text(
    """
    UPDATE csv_stage s SET errors = s.errors || e.error
    FROM unnest(CAST(:rows AS int[]), CAST(:errors AS text[])) AS e(row_number, error)
    WHERE s.row_number = e.row_number
    """
)

# A clean row whose manager's row (in the file) has errors, or is itself such a row, is an error.
_PROPAGATE = text(
    """
    WITH RECURSIVE tainted AS (
        SELECT row_number FROM csv_stage WHERE is_node AND cardinality(errors) > 0
      UNION ALL
        SELECT s.row_number FROM csv_stage s JOIN tainted t ON s.manager_row = t.row_number
        WHERE s.manager_row <> s.row_number AND cardinality(s.errors) = 0
    )
    UPDATE csv_stage s SET errors = ARRAY['The manager''s row ' || s.manager_row || ' has errors']
    FROM tainted t
    WHERE s.row_number = t.row_number AND cardinality(s.errors) = 0
    """
)


def _stage(session: Session, preview: CsvImportPreview, selection: str, **params: Any) -> datetime:
    """(Re)create `csv_stage` with the preview's rows that `selection` keeps, checked; the moment
    its `user_id`s were made for."""
    now = utcnow()
    domains = sorted(d.domain for d in list_domains(session, preview.company_id))
    allowed = ", ".join(f"@{d}" for d in domains)
    # For the rest of this transaction: sorts and hashes of a whole file in memory, and no JIT
    # (compiling these one-off statements costs more than it saves).
    session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text("DROP TABLE IF EXISTS pg_temp.csv_picked, pg_temp.csv_stage"))
    session.execute(text(_PICK.format(selection=selection)), {"preview_id": preview.id, **params})
    session.execute(text("ANALYZE csv_picked"))  # a temp table has no statistics until told
    session.execute(
        text(_STAGE.format(random_part=SQL_RANDOM_PART)),
        {
            "company_id": preview.company_id,
            "pattern": EMAIL_PATTERN,
            "id_prefix": id_time_prefix(now.timestamp()),
            "domains": domains,
            "domain_suffix": f" is not one of the company's domains ({allowed})",
            "name_too_short": NAME_TOO_SHORT,
            "name_too_long": NAME_TOO_LONG,
            "invalid_email": INVALID_EMAIL,
            "duplicate": DUPLICATE_IN_FILE,
            "exists": EXISTS_IN_COMPANY,
            "department_too_long": DEPARTMENT_TOO_LONG,
            "title_too_long": TITLE_TOO_LONG,
            "invalid_manager": INVALID_MANAGER_EMAIL,
            "own_manager": OWN_MANAGER,
            "manager_not_found": MANAGER_NOT_FOUND,
        },
    )
    session.execute(text("ANALYZE csv_stage"))
    unreached = session.execute(_UNREACHED).tuples().all()
    if unreached:
        loops = _loops(unreached)
        session.execute(_APPEND_ERRORS, {"rows": list(loops), "errors": list(loops.values())})
    session.execute(_PROPAGATE)
    return now


def _loops(nodes: Iterable[tuple[int, str, int]]) -> dict[int, str]:
    """row -> error for the members of each manager loop, given the nodes that lead into one
    (row, email, manager's row), in row order. Each loop is named once, from where the walk from
    its lowest row first enters it."""
    email_of: dict[int, str] = {}
    manager_of: dict[int, int] = {}
    for row, email, manager in nodes:
        email_of[row], manager_of[row] = email, manager
    errors: dict[int, str] = {}
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    for start in email_of:
        path: list[int] = []
        current = start
        while current in email_of and not state.get(current):
            state[current] = 1
            path.append(current)
            current = manager_of[current]
        if state.get(current) == 1:  # looped back into the current path
            loop = path[path.index(current) :]
            names = [email_of[member] for member in loop[:LOOP_NAMES_SHOWN]]
            if len(loop) > LOOP_NAMES_SHOWN:  # the text is repeated on every member's row
                names.append(f"… ({len(loop)} people)")
            text = f"{MANAGER_CYCLE}: {' → '.join([*names, email_of[current]])}"
            for member in loop:
                errors[member] = text
        for member in path:
            state[member] = 2
    return errors


def _stage_counts(session: Session) -> tuple[int, int]:
    """(rows, valid rows) of the staging table."""
    total, valid = session.execute(
        text("SELECT count(*), count(*) FILTER (WHERE cardinality(errors) = 0) FROM csv_stage")
    ).one()
    return int(total), int(valid)


def _check_preview(session: Session, preview: CsvImportPreview) -> None:
    """Check every row of the preview and keep what was found (errors on the bad rows only)."""
    _stage(session, preview, "true")
    session.execute(
        text(
            """
            UPDATE csv_import_rows r SET errors = s.errors FROM csv_stage s
            WHERE r.preview_id = :preview_id AND r.row_number = s.row_number
              AND cardinality(s.errors) > 0
            """
        ),
        {"preview_id": preview.id},
    )
    preview.valid_rows = _stage_counts(session)[1]
    preview.status = PreviewStatus.READY


def run_preview_check(session: Session, preview_id: str, progress: Callable[[int], None]) -> dict[str, Any]:
    """The job behind a large preview: check the stored rows and mark the preview ready."""
    preview = session.scalars(
        select(CsvImportPreview).where(CsvImportPreview.id == preview_id).with_for_update()
    ).first()
    if preview is None:
        raise NotFound(PREVIEW_NOT_FOUND, "PREVIEW_NOT_FOUND")
    if preview.status == PreviewStatus.CHECKING:
        progress(10)
        _check_preview(session, preview)
        # The 30 minutes start when the preview can be seen.
        preview.expires_at = utcnow() + PREVIEW_TTL
        session.flush()
    return preview_counts(preview)


# --- previews -------------------------------------------------------------------------------


def preview_counts(preview: CsvImportPreview) -> dict[str, Any]:
    valid = preview.valid_rows or 0
    return {
        "previewId": preview.id,
        "totalRows": preview.total_rows,
        "validRows": valid,
        "rowsWithErrors": preview.total_rows - valid,
    }


# Each row as the contract's JSON, built by Postgres (blank optional cells and `action` on error
# rows are left out).
_ROWS_JSON = text(
    """
    SELECT json_strip_nulls(json_build_object(
        'action', CASE WHEN cardinality(errors) = 0 THEN 'create' END,
        'department', department,
        'email', email,
        'errors', errors,
        'managerEmail', manager_email,
        'name', name,
        'position', position,
        'rowNumber', row_number,
        'status', CASE WHEN cardinality(errors) = 0 THEN 'valid' ELSE 'error' END))::text
    FROM csv_import_rows WHERE preview_id = :preview_id ORDER BY row_number
    """
)


def preview_json(preview: CsvImportPreview) -> Iterator[str]:
    """The contract's preview body, as JSON text in pieces: the rows are read from Postgres a
    batch at a time (a server-side cursor), so a 100,000-row preview is never held whole. The
    rows are read in a session of its own (a streamed body is sent after the request's ended)."""
    counts = preview_counts(preview)
    head = {
        "expiresAt": format_utc(preview.expires_at),
        "previewId": counts["previewId"],
        "rowsWithErrors": counts["rowsWithErrors"],
        "summary": {"errors": counts["rowsWithErrors"], "toCreate": counts["validRows"], "toUpdate": 0},
        "totalRows": counts["totalRows"],
        "validRows": counts["validRows"],
    }
    return _preview_pieces(json.dumps(head)[:-1] + ', "preview": [', preview.id)


def _preview_pieces(head: str, preview_id: str) -> Iterator[str]:
    yield head
    with db.new_session() as session:
        rows = session.execute(
            _ROWS_JSON.execution_options(stream_results=True), {"preview_id": preview_id}
        ).scalars()
        separator = ""
        for batch in rows.partitions(FETCH_BATCH):
            yield separator + ",".join(batch)
            separator = ","
    yield "]}"


def get_preview(session: Session, company_id: str, preview_id: str, *, for_import: bool) -> CsvImportPreview:
    """The company's unexpired preview (one being imported stays, whatever its age). Not found:
    Invalid (400) for the import route, as the contract says; NotFound (404) for the others."""
    preview = session.get(CsvImportPreview, preview_id)
    if (
        preview is None
        or preview.company_id != company_id
        or (preview.expires_at <= utcnow() and preview.import_job_id is None)
    ):
        error = Invalid if for_import else NotFound
        raise error(PREVIEW_NOT_FOUND, "PREVIEW_NOT_FOUND")
    return preview


def prune_previews(session: Session) -> int:
    """Delete expired previews (their rows go with them) whose import is no longer running."""
    active_import = exists().where(Job.id == CsvImportPreview.import_job_id, Job.status.in_(ACTIVE_STATUSES))
    result = session.execute(
        delete(CsvImportPreview).where(CsvImportPreview.expires_at < utcnow(), ~active_import)
    )
    return db.affected(result)


# --- the import -----------------------------------------------------------------------------


def check_confirmed_rows(preview: CsvImportPreview, confirmed_rows: list[int] | None) -> None:
    """Invalid (400) when `confirmedRows` names rows the preview does not have."""
    unknown = sorted({n for n in confirmed_rows or () if not 1 <= n <= preview.total_rows})
    if unknown:
        shown = ", ".join(str(n) for n in unknown[:10])
        raise Invalid(f"confirmedRows has row numbers not in the preview: {shown}", "UNKNOWN_ROWS")


@dataclass
class ImportOutcome:
    body: dict[str, Any]
    created: int  # users created; their ids are in `csv_stage` until the transaction ends


def run_import(
    session: Session,
    preview_id: str,
    company_id: str,
    confirmed_rows: list[int] | None,
    progress: Callable[[int], None],
) -> ImportOutcome:
    """Import a preview in `session`'s transaction: every row (the confirmed ones, or every valid
    one) or none. Invalid (400, PREVIEW_NOT_FOUND) when the preview is gone."""
    preview = session.scalars(
        select(CsvImportPreview)
        .where(CsvImportPreview.id == preview_id, CsvImportPreview.company_id == company_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if preview is None:
        raise Invalid(PREVIEW_NOT_FOUND, "PREVIEW_NOT_FOUND")
    if preview.status == PreviewStatus.CONSUMED and preview.report is not None:
        return ImportOutcome(dict(preview.report), 0)  # already imported: the same answer again
    check_confirmed_rows(preview, confirmed_rows)
    progress(5)
    if confirmed_rows:
        wanted = sorted(set(confirmed_rows))
        now = _stage(session, preview, "r.row_number = ANY(:confirmed)", confirmed=wanted)
    else:
        now = _stage(session, preview, "r.errors = '{}'")
    selected, valid = _stage_counts(session)
    skipped = preview.total_rows - selected
    if valid != selected:
        return ImportOutcome(_failed(_stage_errors(session), skipped), 0)
    progress(15)
    try:
        with session.begin_nested():
            created = _write(session, company_id, selected, now, progress)
    except _Conflict as conflict:
        return ImportOutcome(_failed(conflict.errors, skipped), 0)
    body = {
        "status": "completed",
        "report": {"created": created, "updated": 0, "skipped": skipped, "errors": []},
    }
    preview.status = PreviewStatus.CONSUMED
    preview.consumed_at = utcnow()
    preview.report = body
    session.flush()
    progress(95)
    return ImportOutcome(body, created)


def created_user_ids(session: Session, size: int) -> Iterator[list[str]]:
    """The ids of the users the import just created (in `csv_stage`, in file order), `size` at a
    time (a server-side cursor)."""
    ids = session.execute(
        text("SELECT user_id FROM csv_stage ORDER BY row_number").execution_options(stream_results=True)
    ).scalars()
    for batch in ids.partitions(size):
        yield list(batch)


def remember_report(session: Session, preview_id: str, body: dict[str, Any]) -> None:
    preview = session.get_one(CsvImportPreview, preview_id)
    preview.report = body
    session.flush()


def _stage_errors(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT row_number, email, array_to_string(errors, '; ') FROM csv_stage "
            "WHERE cardinality(errors) > 0 ORDER BY row_number"
        )
    ).tuples()
    return [{"rowNumber": row, "email": email, "reason": reason} for row, email, reason in rows]


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


class _Conflict(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("conflict")
        self.errors = errors


# Departments and job titles named in the staged rows and missing in the company (matched without
# case), each created once with the spelling of its first row; a job title gets its first row's
# department.
_CREATE_DEPARTMENTS = """
INSERT INTO departments (id, company_id, name, created_at, updated_at)
SELECT :id_prefix || {random_part}, :company_id, d.department, :now, :now
FROM (SELECT DISTINCT ON (lower(department)) department FROM csv_stage
      WHERE department IS NOT NULL ORDER BY lower(department), row_number) d
WHERE NOT EXISTS (SELECT 1 FROM departments x
                  WHERE x.company_id = :company_id AND lower(x.name) = lower(d.department))
ON CONFLICT (company_id, name) DO NOTHING
"""
_CREATE_JOB_TITLES = """
INSERT INTO job_titles (id, company_id, department_id, name, created_at, updated_at)
SELECT :id_prefix || {random_part}, :company_id,
       (SELECT x.id FROM departments x
        WHERE x.company_id = :company_id AND lower(x.name) = lower(t.department)
        ORDER BY x.name, x.id LIMIT 1),
       t.position, :now, :now
FROM (SELECT DISTINCT ON (lower(position)) position, department FROM csv_stage
      WHERE position IS NOT NULL ORDER BY lower(position), row_number) t
WHERE NOT EXISTS (SELECT 1 FROM job_titles x
                  WHERE x.company_id = :company_id AND lower(x.name) = lower(t.position))
ON CONFLICT (company_id, name) DO NOTHING
"""
# Each manager is a user now: one created from the file (exact email) or one that was there.
_LINK_MANAGERS = text(
    """
    INSERT INTO user_managers (user_id, manager_id, company_id, created_at)
    SELECT s.user_id, m.id, :company_id, :now
    FROM csv_stage s
    JOIN (SELECT DISTINCT ON (lower(u.email)) lower(u.email) AS email, u.id FROM users u
          WHERE u.company_id = :company_id
            AND lower(u.email) IN (SELECT manager_email FROM csv_stage)
          ORDER BY lower(u.email), u.id) m ON m.email = s.manager_email
    """
)
_STAGE_TABLE = table(
    "csv_stage",
    column("row_number"),
    column("user_id"),
    column("email"),
    column("name"),
    column("department"),
    column("position"),
)


def _ids_by_name(model: type[Department] | type[JobTitle], company_id: str) -> Any:
    """lower(name) -> id of the company's departments or job titles (one per name)."""
    key = func.lower(model.name)
    return (
        select(key.label("key"), model.id.label("id"))
        .where(model.company_id == company_id)
        .distinct(key)
        .order_by(key, model.name, model.id)
        .subquery()
    )


def _write(
    session: Session, company_id: str, expected: int, now: datetime, progress: Callable[[int], None]
) -> int:
    params = {"company_id": company_id, "now": now, "id_prefix": id_time_prefix(now.timestamp())}
    session.execute(text(_CREATE_DEPARTMENTS.format(random_part=SQL_RANDOM_PART)), params)
    session.execute(text(_CREATE_JOB_TITLES.format(random_part=SQL_RANDOM_PART)), params)
    progress(25)

    stage = _STAGE_TABLE
    departments = _ids_by_name(Department, company_id)
    titles = _ids_by_name(JobTitle, company_id)
    people = (
        select(stage.c.user_id, stage.c.email, stage.c.name, departments.c.id, titles.c.id)
        .select_from(
            stage.outerjoin(departments, departments.c.key == func.lower(stage.c.department)).outerjoin(
                titles, titles.c.key == func.lower(stage.c.position)
            )
        )
        .order_by(stage.c.row_number)
    )
    steps = {"users": 60, "roles": 70, "wallets": 85}
    created = onboarding.create_users(
        session, company_id, people, expected, now=now, step=lambda name: progress(steps[name])
    )
    if created != expected:  # someone created one of these emails since the check
        raced = session.execute(
            text(
                "SELECT s.row_number, s.email FROM csv_stage s "
                "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id) ORDER BY s.row_number"
            )
        ).tuples()
        raise _Conflict(
            [{"rowNumber": row, "email": email, "reason": EXISTS_IN_COMPANY} for row, email in raced]
        )
    session.execute(_LINK_MANAGERS, params)
    progress(90)
    return created
