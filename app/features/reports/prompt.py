"""What the model sees (contract §5.1 with the §5.6 fixes), built only from masked data.

`build_input` masks every string that could carry personal data (the sample, each column's
`sample_values`, column names, the aggregates' category labels, the business profile, the
parameters, the filename) and returns an `AnalysisInput`; `build_messages` turns it into a system
message (instructions, niche guidelines, the output example) and a user message (the data as JSON).
The template is versioned (`PROMPT_VERSION`), and the local analyst reads the same masked input.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from string import Template
from typing import Any

from app.features.reports.output_schema import CHART_TYPES, MAX_CHARTS, MAX_INSIGHTS, MAX_KPIS, OUTPUT_EXAMPLE
from app.features.reports.pii import Masker

PROMPT_VERSION = "relatoria-2"

NICHE_GUIDELINES: dict[str, str] = {
    "estetica": "Gráficos: Tratamentos Mais Vendidos (Bar), Faturamento por Dia da Semana (Bar), Retenção de "
    "Clientes (Pie). Termos: Procedimentos, Pacientes, Ticket Médio.",
    "roupas": "Gráficos: Vendas por Categoria (Pie/Donut), Tendência de Vendas Diárias (Line), Top Produtos "
    "(Bar). Termos: Peças, Coleção, Estoque, Ticket Médio.",
    "consultoria": "Gráficos: Receita por Cliente (Bar), Margem de Lucro (Line), "
    "Status de Projetos. Termos: Honorários, Contratos, Projetos.",
    "marketing": "Gráficos: Origem de Leads (Pie), Custo por Lead (Line), Conversão de Campanhas (Bar). "
    "Termos: Leads, ROI, Tráfego, Campanhas.",
    "financeiro": "Gráficos: estritamente Entradas vs Saídas (Multi-Bar/Multi-Line), Categorias de Despesas "
    "(Pie), Lucratividade. Termos: Receita, Despesa, Saldo, Inadimplência.",
    "educacao": "Gráficos: Alunos por Curso (Bar), Taxa de Evasão/Cancelamento "
    "(Line), "
    "Receita por Turma. Termos: Matrículas, Alunos, Turmas, Mensalidades.",
    "default": "Gráficos: Tendência Temporal (Line), Distribuição por Categoria (Pie), "
    "Rankings de Performance (Bar).",
}


def plain(text: str) -> str:
    """Lower-cased, accents stripped: `Estética` → `estetica`."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().strip().lower()


def niche_key(niche: str | None) -> str:
    """The guidelines key of a niche; unknown or missing → `default`."""
    key = plain(niche) if niche else "default"
    return key if key in NICHE_GUIDELINES else "default"


@dataclass
class AnalysisInput:
    filename: str
    row_count: int
    columns: list[dict[str, Any]]
    sample: list[dict[str, Any]]
    stats: dict[str, Any]
    profile: dict[str, Any] | None
    parameters: dict[str, Any]
    niche: str = "default"
    warnings: list[str] = field(default_factory=list)


def column_type(column: dict[str, Any]) -> str:
    return str(column.get("user_type") or column.get("type") or "string")


def build_input(
    *,
    filename: str,
    row_count: int,
    columns: list[dict[str, Any]],
    sample: list[dict[str, Any]],
    stats: dict[str, Any],
    profile: dict[str, Any] | None,
    parameters: dict[str, Any],
) -> AnalysisInput:
    masker = Masker()
    types = {c["name"]: column_type(c) for c in columns}
    masked_columns = []
    for column in columns:
        masked = {k: v for k, v in column.items() if k != "sample_values"}
        masked["name"] = masker.text(column["name"])
        masked["sample_values"] = [
            masker.value(v, types[column["name"]]) for v in column.get("sample_values") or []
        ]
        masked_columns.append(masked)
    masked_sample = [
        {masker.text(name): masker.value(value, types.get(name)) for name, value in row.items()}
        for row in sample
    ]
    input_ = AnalysisInput(
        filename=masker.text(filename),
        row_count=row_count,
        columns=masked_columns,
        sample=masked_sample,
        stats=masker.deep(stats),
        profile=masker.deep(profile) if profile else None,
        parameters=masker.deep(parameters or {}),
        niche=niche_key((profile or {}).get("niche_bussiness")),
    )
    if row_count == 0:
        input_.warnings.append("O conjunto de dados não tem linhas.")
    warning = masker.warning()
    if warning:
        input_.warnings.append(warning)
    return input_


def _goals(profile: dict[str, Any]) -> str:
    goal = profile.get("goal") or {}
    parts = [*(goal.get("selected") or []), goal.get("other")] if isinstance(goal, dict) else [str(goal)]
    return ", ".join(str(p) for p in parts if p) or "Análise geral de performance"


def _format_sentence(best: str | None) -> str:
    if not best:
        return "Equilibre texto e gráficos."
    if plain(best) in ("graficos", "grafico"):
        return "O usuário prefere gráficos: priorize visualizações claras e reduza o texto."
    return f"O usuário prefere o formato '{best}': adapte a apresentação a essa preferência."


SYSTEM_TEMPLATE = Template(
    """Você é um Consultor de Inteligência de Negócios Sênior$specialist.
Responda APENAS com um objeto JSON válido, sem texto fora dele.

--- CONTEXTO DO USUÁRIO ---
$context

--- DIRETRIZES DE NICHO ---
"$guidelines"

--- TAREFAS ---
1. summary: resumo executivo em até 150 palavras, focado nos objetivos e prioridades:
   o que aconteceu, por quê, o que fazer.
2. insights: até $max_insights dicas práticas e curtas ligadas ao nicho,
   cada uma com confidence high, medium ou low.
3. kpis: até $max_kpis métricas numéricas escolhidas pelas prioridades,
   com rótulos amigáveis ("Faturamento Total", não "sum_price").
4. charts: até $max_charts gráficos dos tipos $chart_types,
   com data_rows agregados (no máximo 10 linhas, top 10). Cada linha tem exatamente um valor por
   nome em columns; o primeiro valor é o rótulo e os demais são números
   (scatter: x e y numéricos; table: qualquer texto ou número).

--- REGRAS DE DADOS ---
- "aggregates" foi calculado sobre TODAS as $row_count linhas do arquivo:
  é a fonte da verdade para KPIs e gráficos.
- "sample" traz só as primeiras linhas, para entender o formato;
  não some valores da amostra como se fossem totais.
  Se um número vier só da amostra, diga isso em meta.warnings.
- Valores como <CPF>, <EMAIL>, <TELEFONE>, <CARTAO>, <CNPJ> e <RG> foram mascarados:
  nunca tente reconstruí-los.
- Se os dados forem vazios ou insuficientes, explique em meta.warnings.
- "parameters" são pedidos do usuário para este relatório: siga-os quando forem compatíveis com os dados.

--- FORMATO DE SAÍDA (exemplo) ---
$example"""
)


def system_message(input_: AnalysisInput) -> str:
    profile = input_.profile or {}
    if input_.profile:
        context = "\n".join(
            (
                f"Nicho: {profile.get('niche_bussiness') or 'não informado'}",
                f"Objetivos: {_goals(profile)}",
                f"Prioridades: {', '.join(profile.get('info_priority') or []) or 'Visão geral'}",
                f"Período de análise: {profile.get('analysis_period') or 'todo o período do arquivo'}",
                f"Preferência visual: {_format_sentence(profile.get('best_data_format'))}",
            )
        )
    else:
        context = "O usuário não informou um perfil de negócio: faça uma análise geral de performance."
    niche = profile.get("niche_bussiness")
    return SYSTEM_TEMPLATE.substitute(
        specialist=f" especializado no nicho {niche}" if niche else "",
        context=context,
        guidelines=NICHE_GUIDELINES[input_.niche],
        max_insights=MAX_INSIGHTS,
        max_kpis=MAX_KPIS,
        max_charts=MAX_CHARTS,
        chart_types=", ".join(CHART_TYPES),
        row_count=input_.row_count,
        example=json.dumps(OUTPUT_EXAMPLE, ensure_ascii=False, indent=2),
    )


def user_message(input_: AnalysisInput) -> str:
    payload = {
        "dataset": {"filename": input_.filename, "row_count": input_.row_count},
        "parameters": input_.parameters,
        "business_profile": input_.profile,
        "columns": input_.columns,
        "aggregates": input_.stats,
        "sample": input_.sample,
    }
    return "Dados do relatório (JSON):\n" + json.dumps(payload, ensure_ascii=False, default=str)


def build_messages(input_: AnalysisInput) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_message(input_)},
        {"role": "user", "content": user_message(input_)},
    ]


def repair_messages(messages: list[dict[str, str]], answer: str, errors: list[str]) -> list[dict[str, str]]:
    """One more turn: the invalid answer and what is wrong with it."""
    listed = "\n".join(f"- {error}" for error in errors[:20])
    return [
        *messages,
        {"role": "assistant", "content": answer[:20_000]},
        {
            "role": "user",
            "content": "O JSON acima não segue o formato pedido. Corrija estes problemas e responda "
            f"apenas com o JSON completo corrigido:\n{listed}",
        },
    ]
