"""Work that spans features: redeeming (coins from wallets, stock, the redemption, the voucher job),
cancelling and failing (the guarded transition with its refund and restock), admin sends (the
company's BRL fund) and voucher outcomes.

Exactly-once rules (contract §S9.7), each kept in one place:
- E2, one debit: the debit is written only inside the transaction that inserts the redemption, with
  the reference `redemption:<id>:debit` (unique in the ledger); the wallet row is locked first, so
  the same user's requests (and the same Idempotency-Key) run one after another.
- E3, one refund: every refund follows a conditional transition out of a non-final state
  (`redemptions.transition`) in the same transaction, under the reference `redemption:<id>:refund`
  (unique); only the payer is refunded (coins for employee redemptions, BRL for admin sends); the
  unit taken from stock goes back in the same transaction.
- E1, one voucher: one `voucher_redemptions` row per redemption (unique), issued by the
  `store.issue_voucher` job enqueued in the same transaction (`issuing.py`).

No network I/O happens in any of these functions; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import runtime
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.features.economy import service as economy
from app.features.identity.models import User
from app.features.store import addresses, catalogue, notifications, redemptions, states
from app.features.store.models import (
    Payer,
    Prize,
    PrizeType,
    Redemption,
    Status,
    VoucherProduct,
    VoucherRedemption,
    VoucherState,
)
from app.features.store.notifications import Event
from app.features.wallets import service as wallets
from app.ids import new_id
from app.jobs import enqueue

ISSUE_KIND = "store.issue_voucher"
RECEIVED_NOTE = "Resgate realizado com sucesso"


def debit_reference(redemption_id: str) -> str:
    return f"redemption:{redemption_id}:debit"


def refund_reference(redemption_id: str) -> str:
    return f"redemption:{redemption_id}:refund"


@dataclass(frozen=True)
class Redeemer:
    id: str
    company_id: str
    name: str
    email: str


@dataclass(frozen=True)
class RedeemRequest:
    prize_id: str
    variant_id: str | None = None
    address_id: str | None = None
    idempotency_key: str | None = None


def redeem(session: Session, user: Redeemer, req: RedeemRequest) -> tuple[Redemption, bool]:
    """One short transaction, no network: validate, lock the wallet, honour the idempotency key,
    debit FIFO, take one unit of stock, insert the redemption (with the address snapshot) and, for a
    voucher, its issuance row and job. Returns (redemption, created)."""
    prize = session.scalars(
        select(Prize).where(
            Prize.id == req.prize_id, catalogue.visible_to(user.company_id), Prize.is_active.is_(True)
        )
    ).first()
    if prize is None:
        raise NotFound("Prize not found or is not active", "PRIZE_NOT_FOUND")
    variant_id: str | None = None
    variant_label: str | None = None
    if catalogue.has_active_variants(session, prize.id):
        if not req.variant_id:
            raise Invalid("This prize has variants. You must select a variant to redeem", "VARIANT_REQUIRED")
        variant = catalogue.variant_of(session, prize.id, req.variant_id)
        variant_id, variant_label = variant.id, f"{variant.name}: {variant.value}"
    elif req.variant_id:
        raise Invalid("This prize does not have variants", "NO_VARIANTS")

    snapshot: dict[str, Any] | None = None
    address_id: str | None = None
    if prize.type == PrizeType.PRODUCT:
        if not req.address_id:
            raise Invalid("Address is required for product prizes", "ADDRESS_REQUIRED")
        try:
            address = addresses.get_address(session, user.id, req.address_id)
        except NotFound:
            raise Invalid("Address not found", "ADDRESS_NOT_FOUND") from None
        snapshot, address_id = addresses.snapshot(address), address.id

    product: VoucherProduct | None = None
    value_cents = economy.coins_to_cents(prize.coin_price)
    if prize.type == PrizeType.VOUCHER:
        product = session.get(VoucherProduct, prize.voucher_product_id) if prize.voucher_product_id else None
        if product is None or not product.is_active:
            raise Invalid("Prize is missing voucher configuration", "VOUCHER_NOT_CONFIGURED")
        value_cents = prize.voucher_value_cents or product.min_value_cents

    # The wallet lock comes first: it serialises this user's redemptions, so the key check below
    # sees a concurrent duplicate's committed row instead of racing it.
    wallets.lock_wallet_of(session, user.id, user.company_id)
    if req.idempotency_key:
        existing = redemptions.by_idempotency_key(session, user.id, req.idempotency_key)
        if existing is not None:
            return existing, False

    redemption_id = new_id()
    wallets.debit_redeemable(
        session,
        user.id,
        user.company_id,
        prize.coin_price,
        debit_reference(redemption_id),
        f"Prize redemption: {prize.name}",
        {
            "prizeId": prize.id,
            "prizeName": prize.name,
            "variantId": variant_id,
            "redemptionId": redemption_id,
        },
    )
    if not catalogue.take_stock(session, prize, variant_id):
        raise Conflict("Prize is out of stock", "OUT_OF_STOCK")

    is_voucher = prize.type == PrizeType.VOUCHER
    redemption = Redemption(
        id=redemption_id,
        company_id=user.company_id,
        user_id=user.id,
        prize_id=prize.id,
        variant_id=variant_id,
        address_id=address_id,
        address_snapshot=snapshot,
        kind=prize.type,
        status=Status.PROCESSING if is_voucher else Status.PENDING,
        paid_by=Payer.USER,
        coins_spent=prize.coin_price,
        value_cents=value_cents,
        stock_taken=variant_id is not None or not prize.unlimited_stock,
        idempotency_key=req.idempotency_key,
        redeemed_at=utcnow(),
    )
    session.add(redemption)
    session.flush()
    note = RECEIVED_NOTE + (f" ({variant_label})" if variant_label else "")
    redemptions.add_tracking(session, redemption.id, redemption.status, note, user.id)
    if is_voucher:
        assert product is not None
        _start_issue(session, redemption, product, value_cents, user.name, user.email, requested_by=user.id)
    else:
        notifications.notify(session, redemption, Event.RECEIVED)
        notifications.notify(session, redemption, Event.NEW_ORDER)
    return redemption, True


def _start_issue(
    session: Session,
    redemption: Redemption,
    product: VoucherProduct,
    amount_cents: int,
    recipient_name: str,
    recipient_email: str,
    *,
    requested_by: str | None,
    enqueue_job: bool = True,
) -> VoucherRedemption:
    voucher = VoucherRedemption(
        redemption_id=redemption.id,
        company_id=redemption.company_id,
        provider=product.provider,
        provider_product_id=product.external_id,
        amount_cents=amount_cents,
        currency=product.currency,
        recipient_name=recipient_name[:100],
        recipient_email=recipient_email,
        status=VoucherState.ISSUING,
    )
    session.add(voucher)
    session.flush()
    if enqueue_job:
        job, _ = enqueue(
            session,
            ISSUE_KIND,
            {"redemption_id": redemption.id},
            company_id=redemption.company_id,
            requested_by=requested_by,
        )
        voucher.issue_job_id = job.id
    return voucher


# --- cancel and refund ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelOutcome:
    redemption: Redemption
    coins_refunded: int
    budget_refunded_cents: int
    new_balance: int | None


def cancel_by_employee(session: Session, user: Redeemer, redemption_id: str, reason: str) -> CancelOutcome:
    row = redemptions.for_user(session, user.id, redemption_id)
    if row.kind == PrizeType.VOUCHER or row.status not in states.CANCELLABLE:
        raise Invalid("Cannot cancel order that has been shipped or delivered", "NOT_CANCELLABLE")
    window = timedelta(hours=runtime.settings().store_cancel_window_hours)
    if row.redeemed_at < utcnow() - window:
        hours = int(window.total_seconds() // 3600)
        limit = f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"
        raise Invalid(f"Cancellation period expired (max {limit})", "CANCEL_WINDOW_EXPIRED")
    outcome = _cancel(session, row, reason, actor=user.id, scope=Redemption.user_id == user.id)
    _, redeemable = wallets.get_balances(session, user.id)
    return CancelOutcome(
        outcome.redemption, outcome.coins_refunded, outcome.budget_refunded_cents, redeemable
    )


def cancel_by_admin(
    session: Session, company_id: str, actor_id: str, redemption_id: str, reason: str | None
) -> CancelOutcome:
    row = redemptions.for_company(session, company_id, redemption_id)
    if row.kind == PrizeType.VOUCHER:
        raise Invalid(
            "Voucher redemptions cannot be cancelled: the provider delivers them, "
            "and a failed one is refunded automatically",
            "NOT_CANCELLABLE",
        )
    if row.status not in states.CANCELLABLE:
        raise Invalid(f"Cannot cancel redemption with status: {row.status}", "NOT_CANCELLABLE")
    return _cancel(
        session,
        row,
        reason or "Cancelado pelo administrador",
        actor=actor_id,
        scope=Redemption.company_id == company_id,
    )


def _cancel(session: Session, row: Redemption, reason: str, *, actor: str, scope: Any) -> CancelOutcome:
    changed = redemptions.transition(
        session,
        row.id,
        states.CANCELLABLE,
        Status.CANCELLED,
        notes=f"Cancelado: {reason}",
        actor=actor,
        scope=scope,
        values={"cancel_reason": reason},
    )
    if changed is None:  # someone else moved it first (shipped, or cancelled concurrently)
        raise Conflict("This redemption can no longer be cancelled", "NOT_CANCELLABLE")
    coins, cents = _refund_and_restock(
        session, changed, f"Redemption cancelled: {_prize_name(session, changed)}"
    )
    notifications.notify(session, changed, Event.CANCELLED)
    return CancelOutcome(changed, coins, cents, None)


def _prize_name(session: Session, row: Redemption) -> str:
    prize = session.get(Prize, row.prize_id)
    return prize.name if prize else row.prize_id


def _refund_and_restock(session: Session, row: Redemption, reason: str) -> tuple[int, int]:
    """Refund the payer once and put the stock unit back. Call only after a transition that
    changed a row (E3). Returns (coins refunded, centavos refunded)."""
    coins = cents = 0
    if row.paid_by == Payer.USER and row.coins_spent > 0:
        entry = wallets.refund_redeemable(
            session,
            row.user_id,
            row.company_id,
            row.coins_spent,
            refund_reference(row.id),
            reason,
            {"redemptionId": row.id, "prizeId": row.prize_id},
        )
        coins = row.coins_spent if entry is not None else 0
    elif row.paid_by == Payer.COMPANY and row.value_cents > 0:
        entry2 = economy.refund(session, row.company_id, row.value_cents, refund_reference(row.id), reason)
        cents = row.value_cents if entry2 is not None else 0
    if row.stock_taken:
        catalogue.restock(session, row.prize_id, row.variant_id)
    return coins, cents


# --- admin status, tracking, notes -------------------------------------------------------------------


def admin_set_status(
    session: Session, company_id: str, actor_id: str, redemption_id: str, raw_status: str, notes: str | None
) -> Redemption:
    target = states.parse_status(raw_status)
    row = redemptions.for_company(session, company_id, redemption_id)
    if target == Status.CANCELLED:
        return cancel_by_admin(session, company_id, actor_id, redemption_id, notes).redemption
    sources = states.admin_move_sources(row.kind, target)
    if row.status == target:
        if notes:
            redemptions.add_tracking(session, row.id, row.status, notes, actor_id)
        return row
    changed = redemptions.transition(
        session,
        row.id,
        sources,
        target,
        notes=notes,
        actor=actor_id,
        scope=Redemption.company_id == company_id,
    )
    if changed is None:
        current = redemptions.for_company(session, company_id, redemption_id)
        raise states.explain_refused(current.kind, current.status, target)
    if target == Status.SHIPPED:
        notifications.notify(session, changed, Event.SHIPPED)
    elif target == Status.DELIVERED:
        notifications.notify(session, changed, Event.DELIVERED)
    return changed


def set_tracking(
    session: Session,
    company_id: str,
    actor_id: str,
    redemption_id: str,
    code: str,
    carrier: str | None,
    notes: str | None,
) -> Redemption:
    row = redemptions.for_company(session, company_id, redemption_id, lock=True)
    if row.kind == PrizeType.VOUCHER:
        raise Conflict("Voucher redemptions have no tracking code", "VOUCHER_NO_TRACKING")
    if row.status in (Status.CANCELLED, Status.REFUNDED, Status.FAILED):
        raise Conflict(f"Cannot add a tracking code to a {row.status} redemption", "INVALID_TRANSITION")
    row.tracking_code = code
    row.tracking_carrier = carrier
    text = f"[TRACKING] {carrier + ' - ' if carrier else ''}{code}" + (f" | {notes}" if notes else "")
    redemptions.add_tracking(session, row.id, row.status, text, actor_id)
    return row


def add_note(session: Session, company_id: str, actor_id: str, redemption_id: str, note: str) -> Redemption:
    row = redemptions.for_company(session, company_id, redemption_id)
    redemptions.add_tracking(session, row.id, row.status, f"[ADMIN NOTE] {note}", actor_id)
    return row


# --- voucher outcomes (issue job, webhooks, reconciliation) ------------------------------------------


def voucher_sent(
    session: Session,
    redemption_id: str,
    *,
    order_id: str,
    reward_id: str | None,
    link: str | None,
    code: str | None,
    delivered: bool,
) -> bool:
    """Record the provider's order and move the redemption to `sent` (once). False when the
    voucher was already recorded or is final."""
    voucher = redemptions.lock_voucher(session, redemption_id)
    if voucher is None or voucher.status not in (VoucherState.ISSUING, VoucherState.REVIEW):
        return False
    now = utcnow()
    voucher.provider_order_id = order_id
    voucher.provider_reward_id = reward_id
    voucher.voucher_link = link
    voucher.voucher_code = code
    voucher.completed_at = now
    voucher.error_message = None
    voucher.status = VoucherState.DELIVERED if delivered else VoucherState.SENT
    if delivered:
        voucher.delivered_at = now
    changed = redemptions.transition(
        session,
        redemption_id,
        (Status.PROCESSING,),
        Status.SENT,
        notes="Vale-presente emitido e enviado por e-mail",
    )
    session.flush()
    if changed is not None:
        notifications.notify(session, changed, Event.VOUCHER_SENT)
    return True


def voucher_delivered(session: Session, redemption_id: str) -> bool:
    """The provider confirmed delivery: note it; the status stays `sent` (contract §S9.7)."""
    voucher = redemptions.lock_voucher(session, redemption_id)
    if voucher is None or voucher.status != VoucherState.SENT:
        return False
    voucher.status = VoucherState.DELIVERED
    voucher.delivered_at = utcnow()
    redemptions.add_tracking(session, redemption_id, Status.SENT, "Entrega do vale-presente confirmada")
    return True


def voucher_failed(session: Session, redemption_id: str, error: str) -> bool:
    """Final failure: `processing|sent → failed`, refund the payer and restock, at most once.
    False when the redemption was already final (nothing moves)."""
    voucher = redemptions.lock_voucher(session, redemption_id)
    changed = redemptions.transition(
        session,
        redemption_id,
        states.VOUCHER_FAILABLE,
        Status.FAILED,
        notes=f"Falha no vale-presente: {error[:400]}",
    )
    if changed is None:
        return False
    if voucher is not None:
        voucher.status = VoucherState.FAILED
        voucher.failed_at = utcnow()
        voucher.error_message = error[:2000]
    _refund_and_restock(session, changed, f"Voucher failed: {_prize_name(session, changed)}")
    notifications.notify(session, changed, Event.VOUCHER_FAILED)
    return True


# --- admin sends (the company's fund pays) --------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str


def _recipients(session: Session, company_id: str, wanted: list[Recipient]) -> list[User]:
    ids = [r.user_id for r in wanted]
    users = {
        u.id: u for u in session.scalars(select(User).where(User.id.in_(ids), User.company_id == company_id))
    }
    mismatches = []
    for r in wanted:
        user = users.get(r.user_id)
        if user is None or not user.is_active:
            raise NotFound("Target user not found", "USER_NOT_FOUND", {"userId": r.user_id})
        if user.email.strip().lower() != r.email.strip().lower():
            mismatches.append({"userId": r.user_id, "email": r.email})
    if mismatches:
        raise Invalid("Email does not match the user", "EMAIL_MISMATCH", {"mismatches": mismatches})
    return [users[r.user_id] for r in wanted]


def active_recipients(session: Session, company_id: str) -> list[Recipient]:
    rows = session.execute(
        select(User.id, User.email)
        .where(User.company_id == company_id, User.is_active.is_(True))
        .order_by(User.email)
    ).all()
    return [Recipient(r[0], r[1]) for r in rows]


def _amount_cents(product: VoucherProduct, amount_brl: float) -> int:
    cents = round(amount_brl * 100)
    if not product.min_value_cents <= cents <= product.max_value_cents:
        low, high = product.min_value_cents / 100, product.max_value_cents / 100
        raise Invalid(f"Amount must be between {low:.2f} and {high:.2f} BRL", "AMOUNT_OUT_OF_RANGE")
    return cents


def ensure_global_prize(session: Session, product: VoucherProduct) -> Prize:
    """The product's global prize (the catalogue sync's), created when missing."""
    prize = session.scalars(
        select(Prize).where(Prize.voucher_product_id == product.id, Prize.company_id.is_(None))
    ).first()
    if prize is None:
        prize = Prize(
            company_id=None,
            name=product.name,
            description=product.description or product.name,
            type=PrizeType.VOUCHER,
            category="voucher",
            brand=product.brand,
            coin_price=economy.cents_to_coins(product.min_value_cents),
            stock=999,
            is_active=product.is_active,
            images=list(product.images or []),
            voucher_product_id=product.id,
            voucher_value_cents=product.min_value_cents,
        )
        session.add(prize)
        session.flush()
    return prize


@dataclass(frozen=True)
class SentVoucher:
    redemption: Redemption
    user: User
    job_id: str | None


def send_vouchers(
    session: Session,
    company_id: str,
    actor_id: str,
    product_or_prize_id: str,
    amount_brl: float,
    wanted: list[Recipient],
    *,
    enqueue_jobs: bool = True,
) -> list[SentVoucher]:
    """Admin sends: validate everyone, reserve the whole amount from the company's fund (one ledger
    row per recipient, nothing when the fund can't cover them all), create the redemptions and
    their issuance rows. With `enqueue_jobs`, one issue job per recipient in this transaction;
    without, the caller dispatches them (bulk)."""
    if not wanted:
        raise Invalid("Select at least one user", "NO_RECIPIENTS")
    if len({r.user_id for r in wanted}) != len(wanted):
        raise Invalid("A user appears more than once", "DUPLICATE_RECIPIENT")
    product = catalogue.resolve_voucher_product(session, company_id, product_or_prize_id)
    cents = _amount_cents(product, amount_brl)
    users = _recipients(session, company_id, wanted)
    prize = ensure_global_prize(session, product)
    ids = [new_id() for _ in users]
    economy.debit_many(
        session,
        company_id,
        [
            (debit_reference(rid), cents, f"Voucher {product.name} for {u.email}")
            for rid, u in zip(ids, users, strict=True)
        ],
        created_by=actor_id,
    )
    sent: list[SentVoucher] = []
    for rid, user in zip(ids, users, strict=True):
        row = Redemption(
            id=rid,
            company_id=company_id,
            user_id=user.id,
            prize_id=prize.id,
            kind=PrizeType.VOUCHER,
            status=Status.PROCESSING,
            paid_by=Payer.COMPANY,
            coins_spent=economy.cents_to_coins(cents),  # recorded for reports; nobody is charged coins
            value_cents=cents,
            stock_taken=False,
            requested_by=actor_id,
            redeemed_at=utcnow(),
        )
        session.add(row)
        session.flush()
        redemptions.add_tracking(
            session,
            rid,
            Status.PROCESSING,
            f"Vale-presente enviado pela empresa (R$ {cents / 100:.2f})",
            actor_id,
        )
        voucher = _start_issue(
            session,
            row,
            product,
            cents,
            user.name,
            user.email,
            requested_by=actor_id,
            enqueue_job=enqueue_jobs,
        )
        sent.append(SentVoucher(row, user, voucher.issue_job_id))
    return sent


def dispatch_issue_job(session: Session, redemption_id: str, requested_by: str | None) -> str | None:
    """Enqueue the issue job of a voucher that has none yet (bulk dispatch, reconciliation); the
    voucher row lock makes two dispatchers enqueue it once."""
    voucher = redemptions.lock_voucher(session, redemption_id)
    if voucher is None or voucher.status != VoucherState.ISSUING:
        return None
    if voucher.issue_job_id is None:
        job, _ = enqueue(
            session,
            ISSUE_KIND,
            {"redemption_id": redemption_id},
            company_id=voucher.company_id,
            requested_by=requested_by,
        )
        voucher.issue_job_id = job.id
    return voucher.issue_job_id


def set_issue_job(session: Session, redemption_id: str, job_id: str) -> None:
    voucher = redemptions.lock_voucher(session, redemption_id)
    if voucher is not None:
        voucher.issue_job_id = job_id
