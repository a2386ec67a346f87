"""The report document (contract §5.4): the JSON Schema, JSON extraction from model text,
normalisation and validation.

`REPORT_SCHEMA` is what every stored `ai_response` satisfies. A model answer goes through
`extract_json` (a ``` fence if any, then the first `{` to the last `}`), `normalise` (chart types
lower-cased, confidence mapped to high/medium/low, lists truncated to the caps, null cells coerced,
the server's `meta` fields written) and `validate` (the schema, plus what a schema cannot say: row
widths, numeric cells per chart type). Anything left is a list of readable errors, which is what
the repair call sends back to the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

CHART_TYPES = ("bar", "line", "pie", "donut", "area", "table", "multi-bar", "multi-line", "scatter")
MAX_CHARTS, MAX_INSIGHTS, MAX_KPIS, MAX_ROWS = 8, 5, 6, 10
CONFIDENCE = ("high", "medium", "low")
_CONFIDENCE_ALIASES = {"alta": "high", "media": "medium", "média": "medium", "baixa": "low"}

_CELL = {"type": ["string", "number"]}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["summary", "insights", "kpis", "charts", "meta"],
    "properties": {
        "summary": {"type": "string"},
        "insights": {
            "type": "array",
            "maxItems": MAX_INSIGHTS,
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string", "minLength": 1},
                    "confidence": {"enum": [*CONFIDENCE, None]},
                },
            },
        },
        "kpis": {
            "type": "array",
            "maxItems": MAX_KPIS,
            "items": {
                "type": "object",
                "required": ["label", "value"],
                "properties": {
                    "label": {"type": "string", "minLength": 1},
                    "value": {"type": ["number", "string", "null"]},
                    "unit": {"type": ["string", "null"]},
                },
            },
        },
        "charts": {
            "type": "array",
            "maxItems": MAX_CHARTS,
            "items": {
                "type": "object",
                "required": ["type", "title", "columns", "data_rows"],
                "properties": {
                    "type": {"enum": list(CHART_TYPES)},
                    "title": {"type": "string"},
                    "description": {"type": ["string", "null"]},
                    "columns": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "data_rows": {
                        "type": "array",
                        "maxItems": MAX_ROWS,
                        "items": {"type": "array", "items": _CELL},
                    },
                    "config": {"type": ["object", "null"]},
                },
            },
        },
        "meta": {
            "type": "object",
            "required": ["rows_sampled"],
            "properties": {
                "rows_sampled": {"type": "number"},
                "row_count": {"type": ["integer", "null"]},
                "warnings": {"type": ["array", "null"], "items": {"type": "string"}},
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                    },
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(REPORT_SCHEMA)

# The example the model is shown (AI_OUTPUT_SCHEMA of the old product, with the 9 types spelled out).
OUTPUT_EXAMPLE: dict[str, Any] = {
    "summary": "Resumo executivo em até 150 palavras.",
    "insights": [{"text": "Dica prática ligada ao nicho", "confidence": "high"}],
    "kpis": [{"label": "Faturamento Total", "value": 1500.5, "unit": "R$"}],
    "charts": [
        {
            "type": "bar | line | pie | donut | area | table | multi-bar | multi-line | scatter",
            "title": "Título do gráfico",
            "description": "O que o gráfico mostra",
            "columns": ["Nome da Categoria (Eixo X)", "Valor Numérico (Eixo Y)"],
            "data_rows": [["Categoria A", 150], ["Categoria B", 300]],
        }
    ],
    "meta": {"rows_sampled": 30, "warnings": ["Aviso se houver dados faltando"]},
}


class InvalidOutput(Exception):
    """The model's answer is not a valid report; `errors` are readable, for the repair call."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors[:5]))
        self.errors = errors


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in a model's text (inside the first ``` fence if there is one)."""
    if not text or not text.strip():
        raise InvalidOutput(["a resposta veio vazia"])
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise InvalidOutput(["a resposta não contém um objeto JSON"])
    try:
        value = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidOutput([f"JSON inválido: {exc.msg} (linha {exc.lineno}, coluna {exc.colno})"]) from None
    if not isinstance(value, dict):
        raise InvalidOutput(["a resposta deve ser um objeto JSON"])
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalise(doc: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Fix what can be fixed without guessing; the server's own warnings go to `warnings`."""
    out = dict(doc)
    for key, cap in (("insights", MAX_INSIGHTS), ("kpis", MAX_KPIS), ("charts", MAX_CHARTS)):
        items = out.get(key)
        if isinstance(items, list) and len(items) > cap:
            out[key] = items[:cap]
            warnings.append(f"{key}: {len(items)} itens recebidos, mantidos os {cap} primeiros")
    for insight in out.get("insights") or []:
        if isinstance(insight, dict) and "confidence" in insight:
            raw = insight["confidence"]
            value = str(raw).strip().lower() if raw is not None else None
            value = _CONFIDENCE_ALIASES.get(value or "", value)
            insight["confidence"] = value if value in CONFIDENCE else None
    for chart in out.get("charts") or []:
        if not isinstance(chart, dict):
            continue
        if isinstance(chart.get("type"), str):
            chart["type"] = chart["type"].strip().lower().replace("_", "-").replace(" ", "-")
        rows = chart.get("data_rows")
        if isinstance(rows, list):
            if len(rows) > MAX_ROWS:
                chart["data_rows"] = rows = rows[:MAX_ROWS]
                warnings.append(f"gráfico '{chart.get('title')}': mantidas as {MAX_ROWS} primeiras linhas")
            kept = []
            for row in rows:
                if isinstance(row, list) and any(cell is None for cell in row):
                    if row and row[0] is None:
                        continue  # a row without its label means nothing: drop it
                    row = [0 if cell is None else cell for cell in row]
                    warnings.append(f"gráfico '{chart.get('title')}': valores nulos tratados como 0")
                kept.append(row)
            chart["data_rows"] = kept
    return out


def validate(doc: dict[str, Any]) -> list[str]:
    """Readable errors; empty when `doc` is a valid report."""
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(raiz)'}: {error.message}"
        for error in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if errors:
        return errors
    for index, chart in enumerate(doc["charts"]):
        where = f"charts/{index} ({chart['type']})"
        width = len(chart["columns"])
        minimum = 1 if chart["type"] == "table" else 2
        if width < minimum:
            errors.append(f"{where}: columns precisa de pelo menos {minimum} nomes")
        for number, row in enumerate(chart["data_rows"]):
            if len(row) != width:
                errors.append(f"{where}: data_rows/{number} tem {len(row)} valores, columns tem {width}")
                continue
            if chart["type"] == "scatter" and not all(_is_number(cell) for cell in row[:2]):
                errors.append(f"{where}: data_rows/{number} precisa de x e y numéricos")
            elif chart["type"] in ("pie", "donut") and not (_is_number(row[-1]) and row[-1] >= 0):
                errors.append(f"{where}: data_rows/{number} precisa de um valor numérico >= 0")
            elif chart["type"] not in ("table", "scatter") and not all(_is_number(c) for c in row[1:]):
                errors.append(f"{where}: data_rows/{number} precisa de valores numéricos após o rótulo")
    return errors


def finish(doc: dict[str, Any], server_meta: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Normalise, write the server's meta fields, validate. InvalidOutput lists what is wrong."""
    normalised = normalise(doc, warnings)
    meta = normalised.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    raw_warnings = meta.get("warnings")
    model_warnings = raw_warnings if isinstance(raw_warnings, list) else []
    meta.update(server_meta)
    meta["warnings"] = [str(w) for w in model_warnings if w is not None] + warnings
    normalised["meta"] = meta
    errors = validate(normalised)
    if errors:
        raise InvalidOutput(errors)
    return normalised


def json_schema_response_format() -> dict[str, Any]:
    """`response_format` for servers with structured outputs (AI_RESPONSE_FORMAT=json_schema)."""
    schema = {k: v for k, v in REPORT_SCHEMA.items() if k != "$schema"}
    return {"type": "json_schema", "json_schema": {"name": "report", "schema": schema, "strict": False}}
