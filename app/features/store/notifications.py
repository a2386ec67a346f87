"""Redemption e-mails (contract §S9.7 item 7), sent by the `store.notify_redemption` job through the
emails feature, at most once per (redemption, event): the send's `run_id` is
`<redemption id>:<event>`, and the emails feature records every send under a unique
(run_id, template, recipient) index, claimed before the message leaves."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.features.emails import service as emails
from app.features.emails.templates import register_template
from app.features.identity.models import Company, Permission, User, UserRole, role_permissions
from app.features.store.models import Prize, Redemption, VoucherRedemption
from app.jobs import enqueue

log = logging.getLogger(__name__)

KIND = "store.notify_redemption"


class Event:
    RECEIVED = "received"  # product redemption received (employee)
    NEW_ORDER = "new_order"  # a new product order (the company's redemption managers)
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"  # cancelled and refunded
    VOUCHER_SENT = "voucher_sent"
    VOUCHER_FAILED = "voucher_failed"  # failed and refunded
    ALL = (RECEIVED, NEW_ORDER, SHIPPED, DELIVERED, CANCELLED, VOUCHER_SENT, VOUCHER_FAILED)


def notify(session: Session, redemption: Redemption, event: str) -> None:
    """Enqueue the e-mail of `event` in the caller's transaction (it leaves only if that commits)."""
    enqueue(session, KIND, {"redemption_id": redemption.id, "event": event}, company_id=redemption.company_id)


def run_id(redemption_id: str, event: str) -> str:
    return f"{redemption_id}:{event}"


@dataclass
class NotifyOutcome:
    sent: int = 0
    duplicate: int = 0
    failed: int = 0
    transient: int = 0


def send(session: Session, redemption_id: str, event: str) -> NotifyOutcome:
    """Send the event's e-mail(s). Never raises for delivery problems; `transient` counts the
    sends worth retrying (an already-sent one answers `duplicate` on the retry). Raises
    RateLimited when the company's email window is used up (the job defers; sent ones stay sent)."""
    outcome = NotifyOutcome()
    row = session.get(Redemption, redemption_id)
    if row is None or event not in Event.ALL:
        return outcome
    prize = session.get(Prize, row.prize_id)
    user = session.get(User, row.user_id)
    company = session.get(Company, row.company_id)
    if prize is None or user is None or company is None:
        return outcome
    voucher = session.scalars(
        select(VoucherRedemption).where(VoucherRedemption.redemption_id == row.id)
    ).first()
    context: dict[str, Any] = {
        "name": user.name,
        "company_name": company.name,
        "prize_name": prize.name,
        "coins": row.coins_spent,
        "redemption_id": row.id,
        "tracking_code": row.tracking_code,
        "tracking_carrier": row.tracking_carrier,
        "voucher_code": voucher.voucher_code if voucher else None,
        "voucher_link": voucher.voucher_link if voucher else None,
        "paid_by_company": row.paid_by == "company",
        "employee_name": user.name,
    }
    recipients = _managers(session, row.company_id) if event == Event.NEW_ORDER else [(user.id, user.email)]
    for recipient_id, address in recipients:
        result = emails.send_email(
            session,
            address,
            f"redemption_{event}",
            context,
            company_id=row.company_id,
            user_id=recipient_id,
            run_id=run_id(row.id, event),
        )
        if result.status == "sent":
            outcome.sent += 1
        elif result.status == "duplicate":
            outcome.duplicate += 1
        else:
            outcome.failed += 1
            outcome.transient += int(result.transient)
    return outcome


def _managers(session: Session, company_id: str) -> list[tuple[str, str]]:
    """Active users of the company who manage redemptions (`redemptions:view_all`)."""
    rows = session.execute(
        select(User.id, User.email)
        .join(UserRole, UserRole.user_id == User.id)
        .join(role_permissions, role_permissions.c.role_id == UserRole.role_id)
        .join(Permission, Permission.id == role_permissions.c.permission_id)
        .where(
            User.company_id == company_id, User.is_active.is_(True), Permission.name == "redemptions:view_all"
        )
        .distinct()
        .order_by(User.email)
    ).all()
    return [(r[0], r[1]) for r in rows]


# --- templates (pt-BR) ---------------------------------------------------------------------------

_HTML = """<!doctype html>
<html lang="pt-BR"><body style="font-family: Arial, sans-serif; color: #1f2933;">
{body}
<p>Equipe Valorize</p>
</body></html>
"""


def _register(event: str, subject: str, text: str, html_body: str) -> None:
    register_template(
        f"redemption_{event}",
        subject=subject,
        text=text + "\nEquipe Valorize\n",
        html=_HTML.format(body=html_body),
    )


_register(
    Event.RECEIVED,
    "Recebemos seu resgate: {{ prize_name }}",
    """Olá, {{ name }}!

Recebemos o seu resgate de "{{ prize_name }}" por {{ coins }} moedas no Valorize da {{ company_name }}.
Avisaremos quando ele for despachado. Pedido: {{ redemption_id }}
""",
    "<p>Olá, {{ name }}!</p><p>Recebemos o seu resgate de <strong>{{ prize_name }}</strong> por"
    " {{ coins }} moedas. Avisaremos quando ele for despachado.</p><p>Pedido: {{ redemption_id }}</p>",
)
_register(
    Event.NEW_ORDER,
    "Novo pedido de prêmio: {{ prize_name }}",
    """Olá!

{{ employee_name }} resgatou "{{ prize_name }}" ({{ coins }} moedas) no Valorize da {{ company_name }}.
Acompanhe o pedido {{ redemption_id }} no painel administrativo, em Resgates.
""",
    "<p>Olá!</p><p>{{ employee_name }} resgatou <strong>{{ prize_name }}</strong> ({{ coins }} moedas)."
    " Acompanhe o pedido {{ redemption_id }} no painel administrativo, em Resgates.</p>",
)
_register(
    Event.SHIPPED,
    "Seu prêmio foi despachado: {{ prize_name }}",
    """Olá, {{ name }}!

Seu prêmio "{{ prize_name }}" foi despachado.
{% if tracking_code %}Código de rastreio: {{ tracking_code }}\
{% if tracking_carrier %} ({{ tracking_carrier }}){% endif %}
{% endif %}""",
    "<p>Olá, {{ name }}!</p><p>Seu prêmio <strong>{{ prize_name }}</strong> foi despachado.</p>"
    "{% if tracking_code %}<p>Código de rastreio: <strong>{{ tracking_code }}</strong>"
    "{% if tracking_carrier %} ({{ tracking_carrier }}){% endif %}</p>{% endif %}",
)
_register(
    Event.DELIVERED,
    "Prêmio entregue: {{ prize_name }}",
    """Olá, {{ name }}!

Seu prêmio "{{ prize_name }}" foi entregue. Aproveite!
""",
    "<p>Olá, {{ name }}!</p><p>Seu prêmio <strong>{{ prize_name }}</strong> foi entregue. Aproveite!</p>",
)
_register(
    Event.CANCELLED,
    "Resgate cancelado: {{ prize_name }}",
    """Olá, {{ name }}!

O resgate de "{{ prize_name }}" foi cancelado.
{% if not paid_by_company %}As {{ coins }} moedas voltaram para o seu saldo.
{% endif %}""",
    "<p>Olá, {{ name }}!</p><p>O resgate de <strong>{{ prize_name }}</strong> foi cancelado"
    "{% if not paid_by_company %} e as {{ coins }} moedas voltaram para o seu saldo{% endif %}.</p>",
)
_register(
    Event.VOUCHER_SENT,
    "Seu vale-presente {{ prize_name }} está a caminho",
    """Olá, {{ name }}!

Seu vale-presente "{{ prize_name }}" foi emitido.
{% if voucher_code %}Código: {{ voucher_code }}
{% else %}Ele chega em um e-mail separado do nosso parceiro de vales-presente.
{% endif %}{% if voucher_link %}Link: {{ voucher_link }}
{% endif %}""",
    "<p>Olá, {{ name }}!</p><p>Seu vale-presente <strong>{{ prize_name }}</strong> foi emitido.</p>"
    "{% if voucher_code %}<p>Código: <strong>{{ voucher_code }}</strong></p>{% else %}<p>Ele chega em um"
    " e-mail separado do nosso parceiro de vales-presente.</p>{% endif %}"
    '{% if voucher_link %}<p><a href="{{ voucher_link }}">Abrir o vale-presente</a></p>{% endif %}',
)
_register(
    Event.VOUCHER_FAILED,
    "Não foi possível emitir seu vale-presente {{ prize_name }}",
    """Olá, {{ name }}!

Não conseguimos emitir o vale-presente "{{ prize_name }}".
{% if not paid_by_company %}As {{ coins }} moedas voltaram para o seu saldo.
{% endif %}""",
    "<p>Olá, {{ name }}!</p><p>Não conseguimos emitir o vale-presente <strong>{{ prize_name }}</strong>"
    "{% if not paid_by_company %}; as {{ coins }} moedas voltaram para o seu saldo{% endif %}.</p>",
)
