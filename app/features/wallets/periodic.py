"""Periodic wallet work (issue 6): the weekly allowance reset, coin expiry and expiry notices.

Every function here is idempotent per period, however often and however concurrently it runs:

- weekly reset: one `weekly_resets` row per (company, week), inserted with ON CONFLICT DO NOTHING
  in the same transaction as the balances it resets. The run that inserts the row applies the
  reset; every other run (concurrent or later) inserts nothing and changes nothing. The week is
  identified by the date of the company's renewal day in its own time zone, and the reset is due
  from 00:00 local time on that day. Only the current week is ever applied: a run after several
  missed weeks resets once (for the current week), never once per missed week.
- expiry: a lot expires by having its `remaining_amount` set to 0 together with one EXPIRED row
  per wallet (`service.expire_redeemable`, under the wallet lock); a second run finds nothing.
- notices: one `expiry_notices` row per (credit lot, threshold) inserted in the same transaction
  as the email it records.

The reset is set-based SQL (one UPDATE … FROM and one INSERT … SELECT per company), so a company
of 100,000 users resets in seconds; `bench/weekly_reset.py` measures it against a bare UPDATE.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import db
from app.api import ApiError
from app.errors import RateLimited
from app.features.company.models import DEFAULT_RENEWAL_DAY, DEFAULT_WEEKLY_RENEWAL_AMOUNT, CompanySettings
from app.features.identity.models import DEFAULT_TIMEZONE, Company, User
from app.features.wallets import service
from app.features.wallets.models import Wallet, WalletTransaction
from app.features.wallets.periodic_models import ExpiryNotice, WeeklyReset
from app.ids import id_time_prefix

log = logging.getLogger(__name__)

WEEKLY_RESET_REASON = "Weekly reset"
NOTICE_THRESHOLDS = (30, 90)  # days before expiry; the smaller window is handled first
EXPIRY_NOTICE_TEMPLATE = "coins_expiring"  # notice_templates.COINS_EXPIRING


# --- weekly reset ---------------------------------------------------------------------------


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
    wallets_changed: int


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


# Wallets for active users who have none yet (users created outside the services), at 0: the reset
# below then gives them the allowance with its RESET row, like every other wallet.
_CREATE_MISSING_WALLETS = text(
    """
    INSERT INTO wallets (id, user_id, company_id, compliment_balance, redeemable_balance,
                         created_at, updated_at)
    SELECT :prefix || substr(replace(gen_random_uuid()::text, '-', ''), 1, 15),
           u.id, u.company_id, 0, 0, :now, :now
    FROM users u
    WHERE u.company_id = :company_id AND u.is_active
      AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.user_id = u.id)
    ORDER BY u.id
    ON CONFLICT (user_id) DO NOTHING
    """
)

# Lock the wallets that change (wallet id order, like every other multi-wallet lock), set them to
# the allowance and write one RESET row per changed wallet with its previous balance: one
# statement, two set-based writes. A wallet already at the allowance is left alone (no row).
_RESET_WALLETS = text(
    """
    WITH targets AS (
        SELECT w.id, w.compliment_balance AS previous
        FROM wallets w JOIN users u ON u.id = w.user_id
        WHERE w.company_id = :company_id AND u.is_active AND w.compliment_balance <> :amount
        ORDER BY w.id
        FOR UPDATE OF w
    ), changed AS (
        UPDATE wallets w SET compliment_balance = :amount, updated_at = :now
        FROM targets t
        WHERE w.id = t.id
        RETURNING w.id, w.company_id, t.previous
    )
    INSERT INTO wallet_transactions (id, wallet_id, company_id, transaction_type, balance_type, amount,
                                     previous_balance, new_balance, reason, metadata, created_at)
    SELECT :prefix || substr(replace(gen_random_uuid()::text, '-', ''), 1, 15),
           c.id, c.company_id, 'RESET', 'COMPLIMENT', :amount, c.previous, :amount, :reason,
           CAST(:metadata AS jsonb), :now
    FROM changed c
    """
)


def reset_company_week(
    session: Session,
    week: CompanyWeek,
    now: datetime,
    trigger: str,
    requested_by: str | None = None,
) -> ResetOutcome:
    """Apply `week`'s reset unless it already happened. Runs in the caller's transaction (the
    marker and the balances commit together); the caller commits."""
    outcome = ResetOutcome(week.company_id, week.name, week.weekly_amount, week.period_start, False, 0)
    # A reset recorded for a LATER renewal date means the renewal day was moved after this week's
    # reset: the week is done. (Not a concurrency guard; the unique constraint below is.)
    later = session.scalar(
        select(WeeklyReset.id).where(
            WeeklyReset.company_id == week.company_id, WeeklyReset.period_start > week.period_start
        )
    )
    if later is not None:
        return outcome
    marker_id = session.scalar(
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
        .returning(WeeklyReset.id)
    )
    if marker_id is None:  # this week's reset exists (or a concurrent run holds it and committed)
        return outcome
    params = {"company_id": week.company_id, "now": now, "prefix": id_time_prefix(now.timestamp())}
    session.execute(_CREATE_MISSING_WALLETS, params)
    metadata = {"weeklyResetId": marker_id, "periodStart": week.period_start.isoformat(), "trigger": trigger}
    changed = session.execute(
        _RESET_WALLETS,
        {
            **params,
            "amount": week.weekly_amount,
            "reason": WEEKLY_RESET_REASON,
            "metadata": json.dumps(metadata),
        },
    ).rowcount
    session.execute(
        WeeklyReset.__table__.update()
        .where(WeeklyReset.__table__.c.id == marker_id)
        .values(wallets_changed=changed)
    )
    outcome.applied, outcome.wallets_changed = True, int(changed)
    return outcome


def run_weekly_reset(
    now: datetime | None = None,
    *,
    trigger: str = "cron",
    company_id: str | None = None,
    requested_by: str | None = None,
) -> ResetSummary:
    """The current week's reset for every active company (or one), one transaction per company.

    A company that fails is logged and reported; the others still reset."""
    moment = now or db.utcnow()
    with db.session_scope() as session:
        weeks = company_weeks(session, moment, company_id)
    summary = ResetSummary()
    for week in weeks:
        try:
            with db.session_scope() as session:
                outcome = reset_company_week(session, week, moment, trigger, requested_by)
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
                },
            )
    return summary


def require_active_company(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise ApiError(404, "Company not found")
    if not company.is_active:
        raise ApiError(400, "Company is not active")
    return company


# --- expiry ---------------------------------------------------------------------------------


@dataclass
class UserExpiry:
    user_id: str
    user_name: str
    coins_expired: int
    transactions: int  # credit lots expired


@dataclass
class ExpiryReport:
    users: list[UserExpiry]
    dry_run: bool

    @property
    def users_affected(self) -> int:
        return len(self.users)

    @property
    def total_coins_expired(self) -> int:
        return sum(u.coins_expired for u in self.users)

    def as_summary(self) -> dict[str, Any]:
        return {
            "users_affected": self.users_affected,
            "coins_expired": self.total_coins_expired,
            "lots_expired": sum(u.transactions for u in self.users),
            "dry_run": self.dry_run,
        }

    def as_contract(self) -> dict[str, Any]:
        return {
            "usersAffected": self.users_affected,
            "totalCoinsExpired": self.total_coins_expired,
            "expirationsByUser": [
                {
                    "userId": u.user_id,
                    "userName": u.user_name,
                    "coinsExpired": u.coins_expired,
                    "transactions": u.transactions,
                }
                for u in self.users
            ],
            "dryRun": self.dry_run,
        }


def _expired_lots(now: datetime, company_id: str | None) -> Any:
    WT = WalletTransaction
    condition = and_(WT.remaining_amount > 0, WT.expires_at <= now)
    return and_(condition, WT.company_id == company_id) if company_id else condition


def expire_due_coins(
    now: datetime | None = None,
    *,
    company_id: str | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
) -> ExpiryReport:
    """Expire every lot whose `expires_at` has passed with coins left (all companies, or one).

    One transaction per batch of wallets, locked in wallet id order; each wallet gets one EXPIRED
    row for all its expired lots (`service.expire_redeemable`). A dry run only reports."""
    moment = now or db.utcnow()
    WT = WalletTransaction
    if dry_run:
        with db.session_scope() as session:
            rows = session.execute(
                select(User.id, User.name, func.sum(WT.remaining_amount), func.count())
                .join(Wallet, Wallet.id == WT.wallet_id)
                .join(User, User.id == Wallet.user_id)
                .where(_expired_lots(moment, company_id))
                .group_by(User.id, User.name)
                .order_by(User.id)
            ).all()
        return ExpiryReport([UserExpiry(r[0], r[1], int(r[2]), int(r[3])) for r in rows], dry_run=True)

    results: list[UserExpiry] = []
    seen: set[str] = set()
    while True:
        with db.session_scope() as session:
            wallet_ids = list(
                session.scalars(
                    select(WT.wallet_id)
                    .where(_expired_lots(moment, company_id))
                    .group_by(WT.wallet_id)
                    .order_by(WT.wallet_id)
                    .limit(batch_size)
                )
            )
            if not wallet_ids or seen.issuperset(wallet_ids):
                break
            seen.update(wallet_ids)
            wallets = session.scalars(
                select(Wallet)
                .where(Wallet.id.in_(wallet_ids))
                .order_by(Wallet.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            names = dict(
                session.execute(select(User.id, User.name).where(User.id.in_([w.user_id for w in wallets])))
                .tuples()
                .all()
            )
            for wallet in wallets:
                row = service.expire_redeemable(session, wallet, moment)
                if row is not None:  # None: a concurrent run expired them first
                    lots = len((row.metadata_ or {}).get("expiredCredits", []))
                    results.append(
                        UserExpiry(wallet.user_id, names.get(wallet.user_id, ""), row.amount, lots)
                    )
    results.sort(key=lambda u: u.user_id)
    return ExpiryReport(results, dry_run=False)


def expiration_report(
    session: Session, now: datetime | None = None, *, company_id: str | None, days: int = 90
) -> dict[str, Any]:
    """Coins about to expire: totals for the next 30 and 90 days, and per user within `days`
    (most coins first). Scoped to one company unless `company_id` is None."""
    moment = now or db.utcnow()
    WT = WalletTransaction
    horizon = max(days, 90)
    in30, in90, within = (moment + timedelta(days=d) for d in (30, 90, days))
    conditions = [
        WT.remaining_amount > 0,
        WT.expires_at > moment,
        WT.expires_at <= moment + timedelta(horizon),
    ]
    if company_id:
        conditions.append(WT.company_id == company_id)
    rows = session.execute(
        select(
            User.id,
            User.name,
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= in30), 0),
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= in90), 0),
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= within), 0),
            func.min(WT.expires_at),
        )
        .join(Wallet, Wallet.id == WT.wallet_id)
        .join(User, User.id == Wallet.user_id)
        .where(*conditions)
        .group_by(User.id, User.name)
    ).all()
    details = [
        {"userId": r[0], "userName": r[1], "coinsExpiring": int(r[4]), "earliestExpiration": r[5]}
        for r in rows
        if r[4] > 0
    ]
    details.sort(key=lambda d: (-d["coinsExpiring"], d["earliestExpiration"], d["userId"]))
    return {
        "next30Days": {"users": sum(1 for r in rows if r[2] > 0), "coins": sum(int(r[2]) for r in rows)},
        "next90Days": {"users": sum(1 for r in rows if r[3] > 0), "coins": sum(int(r[3]) for r in rows)},
        "details": details,
    }


# --- expiry notices -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lot:
    id: str
    user_id: str
    company_id: str
    email: str
    name: str
    company_name: str
    remaining: int
    expires_at: datetime


def _lots_to_notify(session: Session, now: datetime, threshold: int, lower: int, limit: int) -> list[_Lot]:
    """Open lots of active users expiring in (lower, threshold] days with no notice at `threshold`."""
    WT = WalletTransaction
    noticed = select(ExpiryNotice.id).where(
        ExpiryNotice.credit_transaction_id == WT.id, ExpiryNotice.threshold_days == threshold
    )
    rows = session.execute(
        select(
            WT.id,
            User.id,
            User.company_id,
            User.email,
            User.name,
            Company.name,
            WT.remaining_amount,
            WT.expires_at,
        )
        .join(Wallet, Wallet.id == WT.wallet_id)
        .join(User, User.id == Wallet.user_id)
        .join(Company, Company.id == User.company_id)
        .where(
            WT.remaining_amount > 0,
            WT.expires_at > now + timedelta(days=lower),
            WT.expires_at <= now + timedelta(days=threshold),
            User.is_active.is_(True),
            Company.is_active.is_(True),
            ~noticed.exists(),
        )
        .order_by(User.id, WT.expires_at, WT.seq)
        .limit(limit)
    ).all()
    return [_Lot(*row) for row in rows]


def _notice_context(lots: list[_Lot], threshold: int, now: datetime) -> dict[str, Any]:
    first = lots[0]
    earliest = min(lot.expires_at for lot in lots)
    return {
        "name": first.name,
        "company_name": first.company_name,
        "coins": sum(lot.remaining for lot in lots),
        "threshold_days": threshold,
        "days_left": max(0, (earliest - now).days),
        "earliest_expiration": earliest.astimezone(UTC).strftime("%d/%m/%Y"),
        "lots": [
            {"coins": lot.remaining, "expires_on": lot.expires_at.astimezone(UTC).strftime("%d/%m/%Y")}
            for lot in lots
        ],
    }


def _claim_notices(lots: list[_Lot], threshold: int, now: datetime) -> list[_Lot]:
    """Insert the notice rows and commit them: the lots this run may notify (at most once each;
    a concurrent run that claimed them first leaves us nothing)."""
    with db.session_scope() as session:
        inserted = set(
            session.scalars(
                insert(ExpiryNotice)
                .values(
                    [
                        {
                            "credit_transaction_id": lot.id,
                            "threshold_days": threshold,
                            "user_id": lot.user_id,
                            "company_id": lot.company_id,
                            "coins": lot.remaining,
                            "expires_at": lot.expires_at,
                            "sent_at": now,
                        }
                        for lot in lots
                    ]
                )
                .on_conflict_do_nothing(
                    index_elements=[ExpiryNotice.credit_transaction_id, ExpiryNotice.threshold_days]
                )
                .returning(ExpiryNotice.credit_transaction_id)
            )
        )
    return [lot for lot in lots if lot.id in inserted]


def _settle_notices(lots: list[_Lot], threshold: int, record_id: str | None, delivered: bool) -> None:
    """Link the claimed notices to their `sent_emails` record, or release them when the email
    failed so that the next run tries again."""
    table = ExpiryNotice.__table__
    where = and_(
        table.c.credit_transaction_id.in_([lot.id for lot in lots]), table.c.threshold_days == threshold
    )
    with db.engine().begin() as conn:
        if delivered:
            conn.execute(table.update().where(where).values(email_record_id=record_id))
        else:
            conn.execute(table.delete().where(where))


def send_expiry_notices(now: datetime | None = None, *, batch_size: int = 500) -> dict[str, Any]:
    """Email users whose coins expire within 30 and within 90 days, once per lot and threshold.

    Windows: (0, 30] days for the 30-day notice, (30, 90] for the 90-day one (a lot first seen
    inside 30 days gets only the 30-day notice). One email per user and threshold lists its lots.

    At least once, never twice for a delivered notice: one run at a time (an advisory lock); the
    notice rows are committed (claimed) before the email is handed to SMTP, and linked to its
    `sent_emails` record once delivered. A send that fails releases its claim (the next daily run
    retries). A claim still unlinked when a run starts was left by a run that died mid-send: it is
    released and sent again under the same send identity, so the email service resends it with the
    same Message-ID (or recognises it as delivered)."""
    with db.engine().connect() as lock:
        lock = lock.execution_options(isolation_level="AUTOCOMMIT")
        if not lock.execute(select(func.pg_try_advisory_lock(_NOTICE_RUN_LOCK))).scalar():
            return {"skipped": "another expiry-notices run is in progress"}
        try:
            with db.engine().begin() as conn:  # leftovers of a run that died between claim and settle
                conn.execute(ExpiryNotice.__table__.delete().where(ExpiryNotice.email_record_id.is_(None)))
            return _send_expiry_notices(now, batch_size)
        finally:
            lock.execute(select(func.pg_advisory_unlock(_NOTICE_RUN_LOCK)))


_NOTICE_RUN_LOCK = 0x7661_6C6F_6E6F_7469  # "valonoti"


def _send_expiry_notices(now: datetime | None, batch_size: int) -> dict[str, Any]:
    from app.features.emails import service as emails
    from app.features.wallets import notice_templates  # noqa: F401  (registers the template)

    moment = now or db.utcnow()
    summary: dict[str, Any] = {}
    lower = 0
    with emails.open_transport() as transport:  # one SMTP connection for the whole run
        for threshold in sorted(NOTICE_THRESHOLDS):
            sent = failed = lots_noticed = 0
            attempted: set[str] = set()
            while True:
                with db.session_scope() as session:
                    lots = [
                        lot
                        for lot in _lots_to_notify(
                            session, moment, threshold, lower, batch_size + len(attempted)
                        )
                        if lot.id not in attempted
                    ][:batch_size]
                if not lots:
                    break
                by_user: dict[str, list[_Lot]] = defaultdict(list)
                for lot in lots:
                    attempted.add(lot.id)
                    by_user[lot.user_id].append(lot)
                for user_lots in by_user.values():
                    claimed = _claim_notices(user_lots, threshold, moment)
                    if not claimed:
                        continue
                    first = claimed[0]
                    with db.session_scope() as session:
                        try:
                            outcome = emails.send_email(
                                session,
                                first.email,
                                EXPIRY_NOTICE_TEMPLATE,
                                _notice_context(claimed, threshold, moment),
                                company_id=first.company_id,
                                user_id=first.user_id,
                                # The send's identity: a resend after a crash is the same message.
                                run_id=f"expiry:{threshold}:{first.id}",
                                transport=transport,
                            )
                        except RateLimited as limited:  # the company's window is full: next run
                            outcome = emails.SendOutcome("failed", limited.message, transient=True)
                    delivered = outcome.sent or outcome.delivered
                    _settle_notices(claimed, threshold, outcome.record_id, delivered)
                    if delivered:
                        sent += 1
                        lots_noticed += len(claimed)
                    else:
                        failed += 1
                        log.warning(
                            "expiry notice not delivered; released for the next run",
                            extra={"user_id": first.user_id, "threshold": threshold, "error": outcome.error},
                        )
            summary[f"notices_{threshold}d"] = {
                "emails_sent": sent,
                "emails_failed": failed,
                "lots": lots_noticed,
            }
            lower = threshold
    return summary
