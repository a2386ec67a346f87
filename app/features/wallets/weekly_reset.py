"""The weekly allowance reset (issue 6; chunked in issue 11): once per company and week.

- Once per week: one `weekly_resets` row per (company, week), inserted with ON CONFLICT DO NOTHING.
  The week is identified by the date of the company's renewal day in its own time zone, and the
  reset is due from 00:00 local time on that day. Only the current week is ever applied: a run
  after several missed weeks resets once (for the current week), never once per missed week.
- In chunks: the company's wallets are walked in id order (keyset: `id > cursor`, at most
  WEEKLY_RESET_CHUNK_SIZE per chunk), each chunk in its own short transaction that locks its
  wallets in id order, sets them to the allowance with one RESET row per changed wallet
  (UPDATE … FROM + INSERT … SELECT) and advances the marker's `cursor` in the same commit. So no
  wallet row stays locked for longer than one chunk, and a compliment waits at most that long.
- Exactly once per wallet: a chunk reads the cursor under the marker's row lock and moves it in
  the transaction that writes its rows, so a run killed between chunks leaves a cursor that the
  next run resumes from, and no wallet is ever reset twice in a week. A wallet spent before its
  chunk is reset from the spent balance; one spent after its chunk keeps the spending.
- One run per company at a time: a session advisory lock per company (released by Postgres when
  the holder's connection dies). A concurrent run waits for it, then finds the week done.
"""

from __future__ import annotations

import json
import logging
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import db, runtime
from app.errors import Invalid, NotFound
from app.features.company.models import DEFAULT_RENEWAL_DAY, DEFAULT_WEEKLY_RENEWAL_AMOUNT, CompanySettings
from app.features.identity.models import DEFAULT_TIMEZONE, Company
from app.features.wallets.models import WeeklyReset
from app.ids import SQL_RANDOM_PART, id_time_prefix

log = logging.getLogger(__name__)

WEEKLY_RESET_REASON = "Weekly reset"
# pg_advisory_lock(classid, objid) key space of the reset: objid is hashtext(company_id). A hash
# collision only makes two companies' resets take turns.
_LOCK_CLASS = 0x72657365  # "rese"


@dataclass(frozen=True)
class CompanyWeek:
    """A company's economy settings and its current renewal week."""

    company_id: str
    name: str
    timezone: str
    renewal_day: int
    weekly_amount: int
    period_start: date  # the renewal day's local date
    due_at: datetime  # 00:00 local on that day, in UTC


@dataclass
class ResetOutcome:
    company_id: str
    company_name: str
    weekly_amount: int
    period_start: date
    applied: bool  # False: this week's reset had already happened
    wallets_changed: int  # by this run (a resumed reset counts only what it did itself)
    chunks: int = 0
    # The longest chunk transaction (begin to commit): no wallet row stays locked longer.
    longest_chunk_seconds: float = 0.0


@dataclass
class ResetSummary:
    outcomes: list[ResetOutcome] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def companies_reset(self) -> int:
        return sum(1 for o in self.outcomes if o.applied)

    @property
    def wallets_changed(self) -> int:
        return sum(o.wallets_changed for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "companies_checked": len(self.outcomes) + len(self.failed),
            "companies_reset": self.companies_reset,
            "companies_already_reset": sum(1 for o in self.outcomes if not o.applied),
            "wallets_changed": self.wallets_changed,
            "companies_failed": len(self.failed),
        }


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown company time zone, using the default", extra={"timezone": name})
        return ZoneInfo(DEFAULT_TIMEZONE)


def current_period(now: datetime, timezone: str | None, renewal_day: int) -> tuple[date, datetime]:
    """(the local date of the latest renewal day at `now`, 00:00 local of that day in UTC).

    `renewal_day` is ISO: 1 = Monday … 7 = Sunday. The renewal day itself counts from 00:00 local."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    start = local.date() - timedelta(days=(local.isoweekday() - renewal_day) % 7)
    return start, datetime.combine(start, time(0), tzinfo=tz).astimezone(UTC)


def company_weeks(session: Session, now: datetime, company_id: str | None = None) -> list[CompanyWeek]:
    """Every active company (or just `company_id`, if active) with its current renewal week."""
    stmt = (
        select(
            Company.id,
            Company.name,
            Company.timezone,
            func.coalesce(CompanySettings.renewal_day, DEFAULT_RENEWAL_DAY),
            func.coalesce(CompanySettings.weekly_renewal_amount, DEFAULT_WEEKLY_RENEWAL_AMOUNT),
        )
        .outerjoin(CompanySettings, CompanySettings.company_id == Company.id)
        .where(Company.is_active.is_(True))
        .order_by(Company.id)
    )
    if company_id is not None:
        stmt = stmt.where(Company.id == company_id)
    weeks = []
    for cid, name, tz, renewal_day, amount in session.execute(stmt):
        start, due = current_period(now, tz, int(renewal_day))
        weeks.append(CompanyWeek(cid, name, tz, int(renewal_day), int(amount), start, due))
    return weeks


def require_active_company(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("Company not found")
    if not company.is_active:
        raise Invalid("Company is not active")
    return company


# Wallets for active users who have none yet (users created outside the services), at 0: the
# chunks then give them the allowance with its RESET row, like every other wallet. At most :size
# per statement (the caller repeats until fewer come back).
_CREATE_MISSING_WALLETS = text(
    f"""
    INSERT INTO wallets (id, user_id, company_id, compliment_balance, redeemable_balance,
                         created_at, updated_at)
    SELECT :prefix || {SQL_RANDOM_PART},
           u.id, u.company_id, 0, 0, :now, :now
    FROM users u
    WHERE u.company_id = :company_id AND u.is_active
      AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.user_id = u.id)
    ORDER BY u.id
    LIMIT :size
    ON CONFLICT (user_id) DO NOTHING
    """
)

# The next chunk's bounds: (its last wallet id, how many wallets it has), at most :size wallets of
# the company after :after in id order (an index-only scan of (company_id, id)).
_NEXT_CHUNK = text(
    """
    SELECT max(id) AS last_id, count(*) AS wallets FROM (
        SELECT id FROM wallets
        WHERE company_id = :company_id AND id > :after
        ORDER BY id
        LIMIT :size
    ) chunk
    """
)

# One chunk, the company's wallets in (:after, :last]: those of active users not at the allowance
# are locked (id order, like every other multi-wallet lock), set to it, and given one RESET row
# with their previous balance. A wallet a compliment holds is waited for and read after its
# commit, so its RESET row starts from the spent balance. Every lookup is by index: the range
# (not a list of ids) uses (company_id, id), and the user is looked up per wallet (a join would
# let the planner hash the company's every user for each chunk).
_RESET_CHUNK = text(
    f"""
    WITH targets AS (
        SELECT w.id, w.compliment_balance AS previous
        FROM wallets w
        WHERE w.company_id = :company_id AND w.id > :after AND w.id <= :last
          AND w.compliment_balance <> :amount
          AND (SELECT u.is_active FROM users u WHERE u.id = w.user_id)
        ORDER BY w.id
        FOR UPDATE OF w
    ), changed AS (
        UPDATE wallets w SET compliment_balance = :amount, updated_at = :now
        FROM targets t
        WHERE w.id = t.id AND w.company_id = :company_id AND w.id > :after AND w.id <= :last
        RETURNING w.id, w.company_id, t.previous
    )
    INSERT INTO wallet_transactions (id, wallet_id, company_id, transaction_type, balance_type,
                                     amount, previous_balance, new_balance, reason, metadata,
                                     created_at)
    SELECT :prefix || {SQL_RANDOM_PART},
           c.id, c.company_id, 'RESET', 'COMPLIMENT', :amount, c.previous, :amount, :reason,
           CAST(:metadata AS jsonb), :now
    FROM changed c
    """
)


@dataclass(frozen=True)
class _Marker:
    id: int
    weekly_amount: int
    trigger: str
    cursor: str | None


def _claim_week(
    conn: Connection, week: CompanyWeek, now: datetime, trigger: str, requested_by: str | None
) -> _Marker | None:
    """The week's marker, inserted now or left unfinished by a run that died; None when the week
    is done (or superseded by a later renewal date). Commits."""
    with conn.begin():
        # A reset recorded for a LATER renewal date means the renewal day was moved after this
        # week's reset: the week is done. (Not a concurrency guard; the unique constraint is.)
        later = conn.scalar(
            select(WeeklyReset.id).where(
                WeeklyReset.company_id == week.company_id, WeeklyReset.period_start > week.period_start
            )
        )
        if later is not None:
            return None
        conn.execute(
            insert(WeeklyReset)
            .values(
                company_id=week.company_id,
                period_start=week.period_start,
                due_at=week.due_at,
                reset_at=now,
                weekly_amount=week.weekly_amount,
                wallets_changed=0,
                trigger=trigger,
                requested_by=requested_by,
            )
            .on_conflict_do_nothing(index_elements=[WeeklyReset.company_id, WeeklyReset.period_start])
        )
        row = conn.execute(
            select(
                WeeklyReset.id,
                WeeklyReset.weekly_amount,
                WeeklyReset.trigger,
                WeeklyReset.cursor,
                WeeklyReset.completed_at,
            ).where(WeeklyReset.company_id == week.company_id, WeeklyReset.period_start == week.period_start)
        ).one()
    if row.completed_at is not None:
        return None
    return _Marker(row.id, row.weekly_amount, row.trigger, row.cursor)


def _create_missing_wallets(conn: Connection, company_id: str, size: int) -> None:
    while True:
        moment = db.utcnow()
        with conn.begin():
            created = db.affected(
                conn.execute(
                    _CREATE_MISSING_WALLETS,
                    {
                        "company_id": company_id,
                        "now": moment,
                        "prefix": id_time_prefix(moment.timestamp()),
                        "size": size,
                    },
                )
            )
        if created < size:
            return


def _reset_chunk(conn: Connection, marker: _Marker, params: dict[str, Any], size: int) -> tuple[int, bool]:
    """One chunk in one transaction: (wallets changed, whether the week is now complete)."""
    moment = db.utcnow()
    with conn.begin():
        # The marker's row lock orders chunks; its cursor is read under it, so a chunk can never
        # cover wallets another committed chunk covered.
        state = conn.execute(
            select(WeeklyReset.cursor, WeeklyReset.completed_at)
            .where(WeeklyReset.id == marker.id)
            .with_for_update()
        ).one()
        if state.completed_at is not None:
            return 0, True
        after = state.cursor or ""
        bounds = conn.execute(
            _NEXT_CHUNK, {"company_id": params["company_id"], "after": after, "size": size}
        ).one()
        changed = 0
        if bounds.last_id is not None:
            changed = db.affected(
                conn.execute(
                    _RESET_CHUNK,
                    {
                        **params,
                        "after": after,
                        "last": bounds.last_id,
                        "now": moment,
                        "prefix": id_time_prefix(moment.timestamp()),
                    },
                )
            )
        done = int(bounds.wallets) < size
        conn.execute(
            update(WeeklyReset)
            .where(WeeklyReset.id == marker.id)
            .values(
                cursor=bounds.last_id or state.cursor,
                wallets_changed=WeeklyReset.wallets_changed + changed,
                completed_at=moment if done else None,
            )
        )
    return changed, done


def reset_company_week(
    week: CompanyWeek,
    now: datetime,
    trigger: str,
    requested_by: str | None = None,
    *,
    chunk_size: int | None = None,
) -> ResetOutcome:
    """Apply `week`'s reset unless it already happened, resuming one a killed run left unfinished.
    Commits chunk by chunk on a connection of its own."""
    size = chunk_size or runtime.settings().weekly_reset_chunk_size
    outcome = ResetOutcome(week.company_id, week.name, week.weekly_amount, week.period_start, False, 0)
    lock_key = {"cls": _LOCK_CLASS, "company_id": week.company_id}
    with db.engine().connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:cls, hashtext(:company_id))"), lock_key)
        conn.commit()
        try:
            _apply(conn, week, now, trigger, requested_by, size, outcome)
        except BaseException:
            # Drop the connection rather than pool it: that ends its transaction and its lock.
            conn.invalidate()
            raise
        conn.execute(text("SELECT pg_advisory_unlock(:cls, hashtext(:company_id))"), lock_key)
        conn.commit()
    return outcome


def _apply(
    conn: Connection,
    week: CompanyWeek,
    now: datetime,
    trigger: str,
    requested_by: str | None,
    size: int,
    outcome: ResetOutcome,
) -> None:
    marker = _claim_week(conn, week, now, trigger, requested_by)
    if marker is None:
        return
    if marker.cursor is None:  # no chunk committed yet: every wallet still lies ahead
        _create_missing_wallets(conn, week.company_id, size)
    # The same metadata on every RESET row of the week, whichever run writes it.
    metadata = {
        "weeklyResetId": marker.id,
        "periodStart": week.period_start.isoformat(),
        "trigger": marker.trigger,
    }
    params = {
        "company_id": week.company_id,
        "amount": marker.weekly_amount,
        "reason": WEEKLY_RESET_REASON,
        "metadata": json.dumps(metadata),
    }
    outcome.applied, outcome.weekly_amount = True, marker.weekly_amount
    done = False
    while not done:
        started = clock.perf_counter()
        changed, done = _reset_chunk(conn, marker, params, size)
        outcome.longest_chunk_seconds = max(outcome.longest_chunk_seconds, clock.perf_counter() - started)
        outcome.wallets_changed += changed
        outcome.chunks += 1


def run_weekly_reset(
    now: datetime | None = None,
    *,
    trigger: str = "cron",
    company_id: str | None = None,
    requested_by: str | None = None,
) -> ResetSummary:
    """The current week's reset for every active company (or one), company after company.

    A company that fails is logged and reported; the others still reset. A `company_id` that is
    not (or no longer) an active company raises NotFound / Invalid."""
    moment = now or db.utcnow()
    with db.session_scope() as session:
        if company_id is not None:
            require_active_company(session, company_id)
        weeks = company_weeks(session, moment, company_id)
    summary = ResetSummary()
    for week in weeks:
        try:
            outcome = reset_company_week(week, moment, trigger, requested_by)
        except Exception as exc:  # one broken company must not block the others
            log.exception("weekly reset failed", extra={"company_id": week.company_id})
            summary.failed[week.company_id] = f"{type(exc).__name__}: {exc}"
            continue
        summary.outcomes.append(outcome)
        if outcome.applied:
            log.info(
                "weekly reset applied",
                extra={
                    "company_id": week.company_id,
                    "period_start": week.period_start.isoformat(),
                    "wallets_changed": outcome.wallets_changed,
                    "chunks": outcome.chunks,
                    "longest_chunk_ms": round(outcome.longest_chunk_seconds * 1000),
                },
            )
    return summary
