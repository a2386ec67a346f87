"""The deterministic local analyst: a schema-valid report from the parse statistics, used when no
OPENAI_API_KEY is configured (a fresh machine, the demo, tests). Same input as the model (masked),
same output schema; `meta.generated_by = "local-analyst"` says where it came from.
"""

from __future__ import annotations

from typing import Any

from app.features.reports.output_schema import MAX_KPIS, MAX_ROWS
from app.features.reports.prompt import AnalysisInput

ANALYST_NAME = "local-analyst"
_MONEY_WORDS = (
    "valor",
    "preço",
    "preco",
    "receita",
    "faturamento",
    "total",
    "custo",
    "despesa",
    "venda",
    "price",
)


def _unit(column: str) -> str | None:
    return "R$" if any(word in column.lower() for word in _MONEY_WORDS) else None


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    text = (
        f"{value:,.2f}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value):,}"
    )
    return text.replace(",", "§").replace(".", ",").replace("§", ".")


def _share(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def analyse(input_: AnalysisInput) -> dict[str, Any]:
    stats = input_.stats or {}
    numeric: dict[str, dict[str, Any]] = stats.get("numeric") or {}
    categories: dict[str, dict[str, Any]] = stats.get("categories") or {}
    by_month: dict[str, dict[str, Any]] = stats.get("by_month") or {}
    rows = input_.row_count
    main_number = next((name for name, s in numeric.items() if s.get("count")), None)

    kpis: list[dict[str, Any]] = [{"label": "Linhas analisadas", "value": rows, "unit": None}]
    for name, stat in list(numeric.items())[:3]:
        if not stat.get("count"):
            continue
        kpis.append({"label": f"Total de {name}", "value": stat["sum"], "unit": _unit(name)})
        kpis.append({"label": f"Média de {name}", "value": stat["mean"], "unit": _unit(name)})
    kpis = kpis[:MAX_KPIS]

    charts: list[dict[str, Any]] = []
    insights: list[dict[str, Any]] = []
    category_name = next((name for name, c in categories.items() if c.get("top")), None)
    if category_name:
        top = categories[category_name]["top"][:MAX_ROWS]
        measure = main_number if main_number and any(item["sums"].get(main_number) for item in top) else None
        ranked = sorted(
            top, key=lambda item: item["sums"][measure] if measure else item["count"], reverse=True
        )
        charts.append(
            {
                "type": "bar",
                "title": f"{measure or 'Registros'} por {category_name}"
                if measure
                else f"Registros por {category_name}",
                "description": "Ranking calculado sobre todas as linhas do arquivo.",
                "columns": [category_name, f"Total de {measure}" if measure else "Registros"],
                "data_rows": [
                    [str(item["value"]), item["sums"][measure] if measure else item["count"]]
                    for item in ranked
                ],
            }
        )
        pie_rows = [[str(item["value"]), item["count"]] for item in top[:5]]
        others = rows - sum(item["count"] for item in top[:5])
        if others > 0:
            pie_rows.append(["Outros", others])
        charts.append(
            {
                "type": "pie",
                "title": f"Distribuição por {category_name}",
                "description": "Participação de cada categoria no total de registros.",
                "columns": [category_name, "Registros"],
                "data_rows": pie_rows,
            }
        )
        leader = top[0]
        insights.append(
            {
                "text": f"'{leader['value']}' concentra {_share(leader['count'], rows)}% dos registros em "
                f"{category_name}: avalie se essa dependência é desejada.",
                "confidence": "high",
            }
        )
    date_name = next((name for name, d in by_month.items() if d.get("months")), None)
    if date_name:
        months = by_month[date_name]["months"][-MAX_ROWS:]
        use_sum = main_number is not None
        charts.append(
            {
                "type": "line",
                "title": f"{'Total de ' + main_number if main_number is not None else 'Registros'} por mês",
                "description": f"Evolução mensal pela coluna {date_name}.",
                "columns": ["Mês", f"Total de {main_number}" if use_sum else "Registros"],
                "data_rows": [
                    [m["value"], m["sums"].get(main_number, 0) if use_sum else m["count"]] for m in months
                ],
            }
        )
        if len(months) >= 2:
            key = (lambda m: m["sums"].get(main_number, 0)) if use_sum else (lambda m: m["count"])
            last, previous = key(months[-1]), key(months[-2])
            if previous:
                change = round(100 * (last - previous) / abs(previous), 1)
                trend = "cresceu" if change >= 0 else "caiu"
                insights.append(
                    {
                        "text": f"No último mês ({months[-1]['value']}) o indicador {trend} {abs(change)}% "
                        "em relação "
                        "ao mês anterior: investigue o que mudou.",
                        "confidence": "medium",
                    }
                )
    if numeric:
        charts.append(
            {
                "type": "table",
                "title": "Resumo das colunas numéricas",
                "description": "Soma, média, mínimo e máximo sobre todas as linhas.",
                "columns": ["Coluna", "Soma", "Média", "Mínimo", "Máximo"],
                "data_rows": [
                    [name, s.get("sum") or 0, s.get("mean") or 0, s.get("min") or 0, s.get("max") or 0]
                    for name, s in list(numeric.items())[:MAX_ROWS]
                ],
            }
        )
    sparse = [
        c["name"] for c in input_.columns if (c.get("null_ratio") or 0) >= 0.3 and c.get("type") != "null"
    ]
    if sparse:
        insights.append(
            {
                "text": f"As colunas {', '.join(sparse[:3])} têm muitos valores vazios: "
                "completar esses dados "
                "deixa a análise mais confiável.",
                "confidence": "high",
            }
        )
    if main_number and numeric[main_number].get("count"):
        stat = numeric[main_number]
        insights.append(
            {
                "text": f"{main_number} varia de {_fmt(stat['min'])} a {_fmt(stat['max'])} "
                f"(média {_fmt(stat['mean'])}): "
                "acompanhe os extremos para achar oportunidades e riscos.",
                "confidence": "medium",
            }
        )
    if not insights:
        insights.append(
            {
                "text": "Inclua colunas de data, categoria e valor para análises mais ricas.",
                "confidence": "low",
            }
        )

    parts = [f"O arquivo {input_.filename} tem {_fmt(rows)} linhas e {len(input_.columns)} colunas."]
    if main_number and numeric[main_number].get("count"):
        parts.append(f"A soma de {main_number} é {_fmt(numeric[main_number]['sum'])}.")
    if category_name:
        parts.append(
            f"A categoria mais frequente em {category_name} é "
            f"'{categories[category_name]['top'][0]['value']}'."
        )
    if date_name:
        span = by_month[date_name]
        parts.append(f"Os registros vão de {span.get('min')} a {span.get('max')}.")
    parts.append(
        "Relatório gerado pelo analista local a partir das estatísticas do arquivo, sem um modelo de IA."
    )

    return {
        "summary": " ".join(parts),
        "insights": insights[:5],
        "kpis": kpis,
        "charts": charts,
        "meta": {
            "rows_sampled": len(input_.sample),
            "warnings": [
                "Relatório gerado pelo analista local (sem modelo de IA): configure OPENAI_API_KEY "
                "para análises "
                "escritas por IA."
            ],
            "schema": [
                {"name": c["name"], "type": str(c.get("user_type") or c.get("type"))} for c in input_.columns
            ],
        },
    }
