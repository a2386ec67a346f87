"""Email templates: subject, text and HTML parts per (name, locale), rendered with Jinja2.

Templates are registered in code (so they ship inside the package with no data-file config).
Other features add their own with `register_template(...)` at import time; pt-BR is the default
locale and the fallback when a template has no version in the requested locale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, StrictUndefined, Template, select_autoescape

DEFAULT_LOCALE = "pt-BR"

_text_env = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_html_env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined)


@dataclass(frozen=True)
class EmailTemplate:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


_TEMPLATES: dict[tuple[str, str], EmailTemplate] = {}


def register_template(name: str, subject: str, text: str, html: str, locale: str = DEFAULT_LOCALE) -> None:
    _TEMPLATES[(name, locale)] = EmailTemplate(subject, text, html)


def has_template(name: str) -> bool:
    return any(key[0] == name for key in _TEMPLATES)


def render(name: str, context: dict[str, Any], locale: str | None = None) -> RenderedEmail:
    template = _TEMPLATES.get((name, locale or DEFAULT_LOCALE)) or _TEMPLATES.get((name, DEFAULT_LOCALE))
    if template is None:
        raise LookupError(f"unknown email template {name!r}")
    subject = _compiled("text", template.subject).render(context).strip().replace("\n", " ")
    return RenderedEmail(
        subject=subject,
        text=_compiled("text", template.text).render(context),
        html=_compiled("html", template.html).render(context),
    )


@cache
def _compiled(kind: str, source: str) -> Template:
    return (_html_env if kind == "html" else _text_env).from_string(source)


WELCOME = "welcome"

register_template(
    WELCOME,
    subject="Bem-vindo(a) ao Valorize, {{ name }}!",
    text="""Olá, {{ name }}!

Você foi convidado(a) para o Valorize da {{ company_name }}, onde colegas reconhecem o trabalho uns
dos outros.

Para entrar, defina sua senha neste link (válido por {{ link_valid_hours }} horas, uso único):

{{ link }}

Seu login é este endereço de email: {{ email }}

Se você não esperava este convite, ignore esta mensagem.

Equipe Valorize
""",
    html="""<!doctype html>
<html lang="pt-BR"><body style="font-family: Arial, sans-serif; color: #1f2933;">
<p>Olá, {{ name }}!</p>
<p>Você foi convidado(a) para o Valorize da <strong>{{ company_name }}</strong>, onde colegas
reconhecem o trabalho uns dos outros.</p>
<p><a href="{{ link }}" style="background:#6d28d9;color:#fff;padding:10px 18px;border-radius:6px;
text-decoration:none;">Definir minha senha</a></p>
<p style="font-size:13px;color:#52606d;">O link vale por {{ link_valid_hours }} horas e pode ser usado
uma vez. Seu login é <strong>{{ email }}</strong>.</p>
<p style="font-size:13px;color:#52606d;">Se você não esperava este convite, ignore esta mensagem.</p>
<p>Equipe Valorize</p>
</body></html>
""",
)

register_template(
    WELCOME,
    locale="en",
    subject="Welcome to Valorize, {{ name }}!",
    text="""Hi {{ name }},

You have been invited to {{ company_name }}'s Valorize, where colleagues recognise each other's work.

Set your password with this link (valid for {{ link_valid_hours }} hours, single use):

{{ link }}

Your login is this email address: {{ email }}

If you did not expect this invitation, ignore this message.

The Valorize team
""",
    html="""<!doctype html>
<html lang="en"><body style="font-family: Arial, sans-serif; color: #1f2933;">
<p>Hi {{ name }},</p>
<p>You have been invited to <strong>{{ company_name }}</strong>'s Valorize.</p>
<p><a href="{{ link }}">Set my password</a></p>
<p style="font-size:13px;color:#52606d;">The link is valid for {{ link_valid_hours }} hours and works
once. Your login is <strong>{{ email }}</strong>.</p>
<p>The Valorize team</p>
</body></html>
""",
)


# The AI report (reports feature): summary, insights, KPIs and each chart as a small table (email
# clients run no chart code). Every value is the report's own text: the HTML part autoescapes it.
REPORT = "report"

register_template(
    REPORT,
    subject="{{ subject }}",
    text="""{{ message }}

{{ title }}

Resumo
{{ summary }}
{% if insights %}
Insights
{% for insight in insights %}- {{ insight }}
{% endfor %}{% endif %}{% if kpis %}
Indicadores
{% for kpi in kpis %}- {{ kpi.label }}: {{ kpi.unit }} {{ kpi.value }}
{% endfor %}{% endif %}{% for chart in charts %}
{{ chart.title }}
{{ chart.columns | join(" | ") }}
{% for row in chart.rows %}{{ row | join(" | ") }}
{% endfor %}{% endfor %}{% if warnings %}
Avisos
{% for warning in warnings %}- {{ warning }}
{% endfor %}{% endif %}
Veja o relatório completo: {{ link }}
""",
    html="""<!doctype html>
<html lang="pt-BR"><body style="font-family: Arial, sans-serif; color: #1f2933;">
<p>{{ message }}</p>
<h2 style="margin-bottom:4px;">{{ title }}</h2>
<h3>Resumo</h3>
<p>{{ summary }}</p>
{% if insights %}<h3>Insights</h3>
<ul>{% for insight in insights %}<li>{{ insight }}</li>{% endfor %}</ul>{% endif %}
{% if kpis %}<h3>Indicadores</h3>
<table cellpadding="6" style="border-collapse:collapse;">
{% for kpi in kpis %}<tr><td style="border:1px solid #d9e2ec;">{{ kpi.label }}</td>
<td style="border:1px solid #d9e2ec;text-align:right;">{{ kpi.unit }} {{ kpi.value }}</td></tr>
{% endfor %}</table>{% endif %}
{% for chart in charts %}<h3>{{ chart.title }}</h3>
<table cellpadding="4" style="border-collapse:collapse;font-size:13px;">
<tr>{% for column in chart.columns %}
<th style="border:1px solid #d9e2ec;background:#f0f4f8;">{{ column }}</th>{% endfor %}</tr>
{% for row in chart.rows %}<tr>{% for cell in row %}
<td style="border:1px solid #d9e2ec;">{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endfor %}
{% if warnings %}<h3>Avisos</h3>
<ul style="font-size:13px;color:#52606d;">
{% for warning in warnings %}<li>{{ warning }}</li>{% endfor %}</ul>{% endif %}
<p><a href="{{ link }}">Ver o relatório completo</a></p>
</body></html>
""",
)
