"""The redemption state machine: which status may follow which, and for whom.

Product:  pending → processing → shipped → delivered   (an admin moves it forward, never back)
          pending | processing → cancelled              (cancel routes only: refund + restock)
Voucher:  processing → sent                             (the issue job, once the provider order is recorded)
          processing | sent → failed                    (final failure or a failed delivery: refund)
          sent stays sent when delivery is confirmed    (the UI knows no other voucher success state)

Every transition is one conditional UPDATE (`… WHERE status IN (allowed sources)`); the money it
moves is written in the same transaction only when a row changed (`flows.py`).
"""

from __future__ import annotations

from app.errors import Conflict, Invalid
from app.features.store.models import PrizeType, Status

PRODUCT_CHAIN = (Status.PENDING, Status.PROCESSING, Status.SHIPPED, Status.DELIVERED)
CANCELLABLE = (Status.PENDING, Status.PROCESSING)
VOUCHER_FAILABLE = (Status.PROCESSING, Status.SENT)
FINAL = (Status.DELIVERED, Status.CANCELLED, Status.REFUNDED, Status.FAILED)

# What the admin app and the dashboard send (any case); `completed` is the admin's `delivered`.
_ALIASES = {"completed": Status.DELIVERED, "canceled": Status.CANCELLED}


def parse_status(raw: str) -> str:
    value = raw.strip().lower()
    value = _ALIASES.get(value, value)
    if value not in Status.ALL:
        raise Invalid(f"Unknown status {raw!r}", details={"allowed": [*Status.ALL, "completed"]})
    return value


def statuses_for_filter(raw: str) -> list[str]:
    return [parse_status(raw)]


def admin_move_sources(kind: str, target: str) -> tuple[str, ...]:
    """The statuses from which an admin may set `target` on a redemption of this kind (the
    conditional UPDATE's allowed sources). Raises Conflict for a move the machine forbids."""
    if kind == PrizeType.VOUCHER:
        raise Conflict(
            "Voucher redemptions follow the provider; their status cannot be changed by hand",
            "VOUCHER_STATUS_MANAGED",
        )
    if target not in PRODUCT_CHAIN or target == Status.PENDING:
        raise Conflict(
            f"A product redemption cannot be set to {target} here"
            + (" (use the cancel action, which refunds)" if target == Status.CANCELLED else ""),
            "INVALID_TRANSITION",
        )
    return PRODUCT_CHAIN[: PRODUCT_CHAIN.index(target)]


def explain_refused(kind: str, current: str, target: str) -> Conflict:
    return Conflict(
        f"Cannot change a {kind} redemption from {current} to {target}",
        "INVALID_TRANSITION",
        {"from": current, "to": target},
    )
