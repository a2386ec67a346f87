"""The coin expiry notice email (registered with the emails feature's template registry)."""

from __future__ import annotations

from app.features.emails.templates import register_template

COINS_EXPIRING = "coins_expiring"

register_template(
    COINS_EXPIRING,
    subject="{{ coins }} moedas do Valorize expiram em até {{ threshold_days }} dias",
    text="""Olá, {{ name }}!

Você tem {{ coins }} moedas no Valorize da {{ company_name }} que expiram nos próximos
{{ threshold_days }} dias (a primeira parte em {{ earliest_expiration }}).

{% for lot in lots %}- {{ lot.coins }} moedas expiram em {{ lot.expires_on }}
{% endfor %}
Moedas recebidas valem por 18 meses. Use-as antes que expirem.

Equipe Valorize
""",
    html="""<!doctype html>
<html lang="pt-BR"><body style="font-family: Arial, sans-serif; color: #1f2933;">
<p>Olá, {{ name }}!</p>
<p>Você tem <strong>{{ coins }} moedas</strong> no Valorize da {{ company_name }} que expiram nos
próximos {{ threshold_days }} dias (a primeira parte em {{ earliest_expiration }}).</p>
<ul>
{% for lot in lots %}<li>{{ lot.coins }} moedas expiram em {{ lot.expires_on }}</li>
{% endfor %}</ul>
<p>Moedas recebidas valem por 18 meses. Use-as antes que expirem.</p>
<p>Equipe Valorize</p>
</body></html>
""",
)
