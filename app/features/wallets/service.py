"""Wallet balances and the ledger.

Rules every function here keeps:
- a balance changes only together with a `wallet_transactions` row, in the caller's transaction;
- the wallet row is locked (`SELECT … FOR UPDATE`) before its balance is read for a change, so the
  check and the write happen under the same lock; several wallets are always locked in wallet id
  order, so two transactions touching the same pair can never deadlock;
- every redeemable credit is a lot (`remaining_amount`, `expires_at` = 18 months later); spending
  draws the lots down, soonest-to-expire (= oldest) first, and never touches an expired lot;
- `redeemable_balance` always equals the sum of the wallet's lots' `remaining_amount`.

Functions take a Session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import db
from app.db import utcnow
from app.errors import Conflict, Invalid
from app.features.company.models import DEFAULT_WEEKLY_RENEWAL_AMOUNT, CompanySettings
from app.features.identity.models import User
from app.features.wallets.models import BalanceType, TransactionType, Wallet, WalletTransaction
from app.ids import sql_new_id

REDEEMABLE_LIFETIME_MONTHS = 18
URGENT_EXPIRATION_DAYS = 7
INITIAL_ALLOWANCE_REASON = "Initial weekly allowance"


class InsufficientBalance(Invalid):
    default_code = "INSUFFICIENT_BALANCE"


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` + `months` calendar months (the day is clamped to the target month's length)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --- creation ------------------------------------------------------------------------------


def initial_allowance(session: Session, company_id: str) -> int:
    """A new wallet starts with the company's weekly allowance (a RESET row records it)."""
    amount = session.scalar(
        select(CompanySettings.weekly_renewal_amount).where(CompanySettings.company_id == company_id)
    )
    return DEFAULT_WEEKLY_RENEWAL_AMOUNT if amount is None else int(amount)


def create_starting_wallets(
    session: Session, company_id: str, user_ids: Select[str], now: datetime | None = None
) -> int:
    """A wallet for each user `user_ids` selects (users of `company_id`; a user who has a wallet
    keeps it), starting at the company's weekly allowance with the RESET row that explains it.
    Set-based: one statement, however many users. Returns how many wallets were created."""
    moment = now or utcnow()
    allowance = initial_allowance(session, company_id)
    new_wallet_id = sql_new_id(moment)
    users = user_ids.subquery()
    created = (
        insert(Wallet)
        .from_select(
            [
                "id",
                "user_id",
                "company_id",
                "compliment_balance",
                "redeemable_balance",
                "created_at",
                "updated_at",
            ],
            select(
                new_wallet_id,
                users.c[0],
                literal(company_id),
                literal(allowance),
                literal(0),
                literal(moment),
                literal(moment),
            ),
        )
        .on_conflict_do_nothing(index_elements=[Wallet.user_id])
        .returning(Wallet.id)
    )
    if allowance == 0:
        return db.affected(session.execute(created))
    wallets = created.cte("created_wallets")
    ledger = insert(WalletTransaction).from_select(
        [
            "id",
            "wallet_id",
            "company_id",
            "transaction_type",
            "balance_type",
            "amount",
            "previous_balance",
            "new_balance",
            "reason",
            "created_at",
        ],
        select(
            sql_new_id(moment),
            wallets.c.id,
            literal(company_id),
            literal(TransactionType.RESET.value),
            literal(BalanceType.COMPLIMENT.value),
            literal(allowance),
            literal(0),
            literal(allowance),
            literal(INITIAL_ALLOWANCE_REASON),
            literal(moment),
        ),
    )
    return db.affected(session.execute(ledger))


def ensure_wallet(session: Session, user_id: str, company_id: str, now: datetime | None = None) -> bool:
    """Create the user's wallet unless it exists (safe under concurrency); True when created."""
    return create_starting_wallets(session, company_id, select(literal(user_id)), now) == 1


def create_wallet(session: Session, user: User, now: datetime | None = None) -> Wallet:
    """The wallet of a freshly created user (flushes the user first if needed)."""
    if user.id is None:
        session.flush()
    ensure_wallet(session, user.id, user.company_id, now)
    return session.scalars(select(Wallet).where(Wallet.user_id == user.id)).one()


# --- locking -------------------------------------------------------------------------------


def _lock(session: Session, wallet_id: str) -> Wallet:
    return session.scalars(
        select(Wallet)
        .where(Wallet.id == wallet_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def lock_wallets(session: Session, users: Iterable[tuple[str, str]]) -> dict[str, Wallet]:
    """Lock the wallets of (user_id, company_id) pairs, in wallet id order; user_id -> wallet.

    Missing wallets are created first (users created outside the services still get one)."""
    pairs = dict(users)
    existing = set(session.scalars(select(Wallet.user_id).where(Wallet.user_id.in_(pairs))))
    for user_id in sorted(set(pairs) - existing):  # inserts in one order too: no deadlock there either
        ensure_wallet(session, user_id, pairs[user_id])
    wallets = session.scalars(
        select(Wallet)
        .where(Wallet.user_id.in_(pairs))
        .order_by(Wallet.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {wallet.user_id: wallet for wallet in wallets}


def lock_wallet_of(session: Session, user_id: str, company_id: str) -> Wallet:
    return lock_wallets(session, [(user_id, company_id)])[user_id]


# --- ledger --------------------------------------------------------------------------------


def _record(
    session: Session,
    wallet: Wallet,
    transaction_type: TransactionType,
    balance_type: BalanceType,
    amount: int,
    previous: int,
    new: int,
    reason: str,
    metadata: dict[str, Any] | None,
    now: datetime | None,
    *,
    lot: bool = False,
    reference: str | None = None,
) -> WalletTransaction:
    moment = now or utcnow()
    row = WalletTransaction(
        reference=reference,
        wallet_id=wallet.id,
        company_id=wallet.company_id,
        transaction_type=transaction_type.value,
        balance_type=balance_type.value,
        amount=amount,
        previous_balance=previous,
        new_balance=new,
        reason=reason[:255],
        metadata_=metadata,
        created_at=moment,
        remaining_amount=amount if lot else None,
        expires_at=add_months(moment, REDEEMABLE_LIFETIME_MONTHS) if lot else None,
    )
    session.add(row)
    session.flush()
    return row


def _positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError(f"amount must be a positive integer, got {amount!r}")


def _set_compliment(
    session: Session,
    wallet: Wallet,
    amount: int,
    reason: str,
    metadata: dict[str, Any] | None,
    now: datetime | None,
) -> WalletTransaction:
    previous = wallet.compliment_balance
    wallet.compliment_balance = amount
    return _record(
        session,
        wallet,
        TransactionType.RESET,
        BalanceType.COMPLIMENT,
        amount,
        previous,
        amount,
        reason,
        metadata,
        now,
    )


def reset_compliment_balance(
    session: Session,
    wallet: Wallet,
    amount: int,
    reason: str = "Weekly reset",
    metadata: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> WalletTransaction:
    """Set the giving allowance to `amount` (RESET row; its `amount` is the new allowance)."""
    if amount < 0:
        raise ValueError("the allowance cannot be negative")
    return _set_compliment(session, _lock(session, wallet.id), amount, reason, metadata, now)


def debit_compliment(
    session: Session,
    wallet: Wallet,
    amount: int,
    reason: str,
    metadata: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> WalletTransaction:
    _positive(amount)
    wallet = _lock(session, wallet.id)
    previous = wallet.compliment_balance
    if previous < amount:
        raise InsufficientBalance(
            f"Insufficient compliment balance: {previous} coins available, {amount} required"
        )
    wallet.compliment_balance = previous - amount
    return _record(
        session,
        wallet,
        TransactionType.DEBIT,
        BalanceType.COMPLIMENT,
        amount,
        previous,
        previous - amount,
        reason,
        metadata,
        now,
    )


def credit_redeemable(
    session: Session,
    wallet: Wallet,
    amount: int,
    reason: str,
    metadata: dict[str, Any] | None = None,
    now: datetime | None = None,
    *,
    reference: str | None = None,
) -> WalletTransaction:
    """Coins received (compliments, refunds…): a new lot expiring 18 months after `now`."""
    _positive(amount)
    wallet = _lock(session, wallet.id)
    previous = wallet.redeemable_balance
    wallet.redeemable_balance = previous + amount
    return _record(
        session,
        wallet,
        TransactionType.CREDIT,
        BalanceType.REDEEMABLE,
        amount,
        previous,
        previous + amount,
        reason,
        metadata,
        now,
        lot=True,
        reference=reference,
    )


def _open_lots(wallet_id: str, now: datetime) -> Any:
    WT = WalletTransaction
    return and_(WT.wallet_id == wallet_id, WT.remaining_amount > 0, WT.expires_at > now)


def spendable_redeemable(session: Session, wallet_id: str, now: datetime | None = None) -> int:
    """Coins in unexpired lots (what can be spent now)."""
    total = session.scalar(
        select(func.coalesce(func.sum(WalletTransaction.remaining_amount), 0)).where(
            _open_lots(wallet_id, now or utcnow())
        )
    )
    return int(total or 0)


def spend_redeemable(
    session: Session,
    wallet: Wallet,
    amount: int,
    reason: str,
    metadata: dict[str, Any] | None = None,
    now: datetime | None = None,
    *,
    reference: str | None = None,
    insufficient: Callable[[str], Exception] | None = None,
) -> WalletTransaction:
    """Spend `amount` redeemable coins from the unexpired lots, soonest-to-expire first.

    The DEBIT row's metadata lists the lots drawn (`consumedCredits`), so a refund or an audit can
    trace every coin. Expired lots are never spent (they wait for `expire_redeemable`)."""
    _positive(amount)
    moment = now or utcnow()
    wallet = _lock(session, wallet.id)
    available = spendable_redeemable(session, wallet.id, moment)
    if available < amount:
        message = f"Insufficient redeemable balance: {available} unexpired coins available, {amount} required"
        raise (insufficient or InsufficientBalance)(message)
    WT = WalletTransaction
    lots = (
        select(
            WT.id.label("id"),
            WT.remaining_amount.label("remaining"),
            (
                func.sum(WT.remaining_amount).over(order_by=(WT.expires_at, WT.seq)) - WT.remaining_amount
            ).label("before"),
        )
        .where(_open_lots(wallet.id, moment))
        .cte("lots")
    )
    take = func.least(lots.c.remaining, amount - lots.c.before)
    consumed = session.execute(
        update(WT)
        .where(WT.id == lots.c.id, lots.c.before < amount)
        .values(remaining_amount=WT.remaining_amount - take)
        .returning(WT.id, (lots.c.remaining - WT.remaining_amount).label("taken"), WT.seq)
        .execution_options(synchronize_session=False)
    ).all()
    drawn = [
        {"transactionId": row.id, "amount": int(row.taken)} for row in sorted(consumed, key=lambda r: r.seq)
    ]
    if sum(item["amount"] for item in drawn) != amount:  # impossible while the wallet is locked
        raise RuntimeError("lot consumption does not match the amount spent")
    previous = wallet.redeemable_balance
    wallet.redeemable_balance = previous - amount
    return _record(
        session,
        wallet,
        TransactionType.DEBIT,
        BalanceType.REDEEMABLE,
        amount,
        previous,
        previous - amount,
        reason,
        {**(metadata or {}), "consumedCredits": drawn},
        moment,
        reference=reference,
    )


# --- payments by reference (the prize store) -----------------------------------------------


def movement_exists(session: Session, reference: str) -> bool:
    """Whether a ledger row with this business reference exists (committed or in this transaction)."""
    return (
        session.scalar(select(WalletTransaction.id).where(WalletTransaction.reference == reference))
        is not None
    )


def debit_redeemable(
    session: Session,
    user_id: str,
    company_id: str,
    amount: int,
    reference: str,
    reason: str,
    metadata: dict[str, Any] | None = None,
) -> WalletTransaction:
    """Pay `amount` redeemable coins for `reference` (e.g. `redemption:<id>:debit`): locks the
    wallet row, draws the unexpired lots soonest-to-expire first and writes the DEBIT row, in the
    caller's transaction. Raises `Invalid` (INSUFFICIENT_BALANCE) when the unexpired coins don't
    cover it, `Conflict` when the reference was already paid (a unique index backs the check)."""
    wallet = lock_wallet_of(session, user_id, company_id)
    if movement_exists(session, reference):
        raise Conflict(f"{reference} was already debited", "ALREADY_DEBITED")
    return spend_redeemable(
        session,
        wallet,
        amount,
        reason,
        metadata,
        reference=reference,
        insufficient=lambda message: Invalid(
            "Insufficient redeemable balance", "INSUFFICIENT_BALANCE", {"detail": message}
        ),
    )


def refund_redeemable(
    session: Session,
    user_id: str,
    company_id: str,
    amount: int,
    reference: str,
    reason: str,
    metadata: dict[str, Any] | None = None,
) -> WalletTransaction | None:
    """Give `amount` coins back for `reference` (e.g. `redemption:<id>:refund`) as a new FIFO lot
    (18 months), at most once: None when that reference was already refunded. Locks the wallet."""
    wallet = lock_wallet_of(session, user_id, company_id)
    if movement_exists(session, reference):
        return None
    return credit_redeemable(session, wallet, amount, reason, metadata, reference=reference)


def expire_redeemable(
    session: Session, wallet: Wallet, now: datetime | None = None
) -> WalletTransaction | None:
    """Remove the coins of every expired lot (one EXPIRED row); None when nothing expired."""
    moment = now or utcnow()
    wallet = _lock(session, wallet.id)
    WT = WalletTransaction
    expired = and_(WT.wallet_id == wallet.id, WT.remaining_amount > 0, WT.expires_at <= moment)
    amount = int(session.scalar(select(func.coalesce(func.sum(WT.remaining_amount), 0)).where(expired)) or 0)
    if amount == 0:
        return None
    lot_ids = list(session.scalars(select(WT.id).where(expired).order_by(WT.seq)))
    session.execute(
        update(WT)
        .where(WT.id.in_(lot_ids))
        .values(remaining_amount=0)
        .execution_options(synchronize_session=False)
    )
    previous = wallet.redeemable_balance
    wallet.redeemable_balance = previous - amount
    return _record(
        session,
        wallet,
        TransactionType.EXPIRED,
        BalanceType.REDEEMABLE,
        amount,
        previous,
        previous - amount,
        f"{amount} coins expired",
        {"expiredCredits": lot_ids},
        moment,
    )


# --- reads ---------------------------------------------------------------------------------


def wallet_of(session: Session, user_id: str) -> Wallet | None:
    return session.scalars(select(Wallet).where(Wallet.user_id == user_id)).first()


def get_wallet(session: Session, user_id: str, company_id: str) -> Wallet:
    """The user's wallet, created (not committed) when it is missing."""
    ensure_wallet(session, user_id, company_id)
    wallet = wallet_of(session, user_id)
    assert wallet is not None
    return wallet


def get_balances(session: Session, user_id: str) -> tuple[int, int]:
    """(compliment_balance, redeemable_balance) of a user; (0, 0) for an unknown user.

    A user without a wallet yet gets one (flushed, not committed: commit to keep it)."""
    wallet = wallet_of(session, user_id)
    if wallet is None:
        company_id = session.scalar(select(User.company_id).where(User.id == user_id))
        if company_id is None:
            return 0, 0
        wallet = get_wallet(session, user_id, company_id)
    return wallet.compliment_balance, wallet.redeemable_balance


@dataclass(frozen=True)
class ExpiringCoins:
    next30: int
    next90: int
    urgent: bool
    details: list[dict[str, Any]]


def expiring_coins(session: Session, wallet_id: str, now: datetime | None = None) -> ExpiringCoins:
    moment = now or utcnow()
    WT = WalletTransaction
    in30, in90 = moment + timedelta(days=30), moment + timedelta(days=90)
    urgent_until = moment + timedelta(days=URGENT_EXPIRATION_DAYS)
    sums = session.execute(
        select(
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= in30), 0),
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= in90), 0),
            func.coalesce(func.sum(WT.remaining_amount).filter(WT.expires_at <= urgent_until), 0),
        ).where(_open_lots(wallet_id, moment))
    ).one()
    lots = session.execute(
        select(WT.id, WT.remaining_amount, WT.expires_at, WT.reason)
        .where(_open_lots(wallet_id, moment), WT.expires_at <= in90)
        .order_by(WT.expires_at, WT.seq)
        .limit(100)
    ).all()
    details = []
    for lot in lots:
        days_left = max(0, (lot.expires_at - moment).days)
        details.append(
            {
                "amount": lot.remaining_amount,
                "expiresAt": lot.expires_at,
                "expirationDate": lot.expires_at,
                "daysLeft": days_left,
                "isUrgent": lot.expires_at <= urgent_until,
                "source": lot.reason,
            }
        )
    in_30, in_90, urgent = (int(total or 0) for total in sums)  # each is coalesced to 0
    return ExpiringCoins(in_30, in_90, urgent > 0, details)


def list_transactions(
    session: Session,
    wallet_id: str,
    *,
    limit: int,
    offset: int,
    balance_type: str | None = None,
    transaction_type: str | None = None,
    from_date: datetime | None = None,
    to_date: datetime | None = None,
) -> tuple[list[WalletTransaction], int]:
    """One page of the wallet's ledger, newest first, and the filtered total."""
    WT = WalletTransaction
    conditions = [WT.wallet_id == wallet_id]
    if balance_type:
        conditions.append(WT.balance_type == balance_type)
    if transaction_type:
        conditions.append(WT.transaction_type == transaction_type)
    if from_date:
        conditions.append(WT.created_at >= from_date)
    if to_date:
        conditions.append(WT.created_at <= to_date)
    total = session.scalar(select(func.count()).select_from(WT).where(*conditions)) or 0
    rows = session.scalars(
        select(WT)
        .where(*conditions)
        .order_by(WT.created_at.desc(), WT.seq.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)
