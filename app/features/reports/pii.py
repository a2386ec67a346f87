"""PII masking (contract §5.2 Rec): applied to everything that leaves the worker for the model.

Only the matched text is replaced, by a typed token (`<CPF>`, `<EMAIL>`…), so a cell like
"Pedido de joao@x.com" keeps its meaning. Patterns are validated where they can be:
- CPF: formatted `000.000.000-00`, or 11 bare digits with valid check digits;
- CNPJ: formatted `00.000.000/0000-00`, or 14 bare digits with valid check digits;
- email;
- phone: Brazilian formats with optional +55, parentheses, spaces and dashes (a bare run of digits
  is a phone only in a column typed `phone`, so order ids and timestamps survive);
- card: 13 to 19 digits with optional spaces or dashes, Luhn-valid;
- RG: only when formatted (`00.000.000-0`).
Columns typed `email` or `phone` are masked whole. `Masker.counts` says how many of each kind were
masked, for the report's warnings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CNPJ_FORMATTED = re.compile(r"(?<![\d.])\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}(?![\d-])")
_CPF_FORMATTED = re.compile(r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)")
_RG_FORMATTED = re.compile(r"(?<![\d.])\d{1,2}\.\d{3}\.\d{3}-[\dXx](?![\dA-Za-z])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_BARE_DIGITS = re.compile(r"(?<![\d.,])\d{11}(?:\d{3})?(?![\d.,])")
# +55 (11) 98765-4321 · (11) 98765-4321 · 11 98765-4321 · 98765-4321 · 3333-4444 · +5511987654321
# (mobile numbers start with 9, landlines with 2-5; never a group inside a longer run of digits)
_LOCAL = r"(?:9\d{4}|[2-5]\d{3})[\s-]\d{4}"
_PHONE = re.compile(
    rf"(?<![\w+])(?<!\d\s)(?<!\d-)(?:\+?55[\s-]?)?(?:\(\d{{2}}\)\s?|\d{{2}}[\s-])?{_LOCAL}(?![\s-]?\d)"
    r"|(?<![\w+])\+55\d{10,11}(?!\d)"
    r"|(?<![\w+])\(\d{2}\)\s?9?\d{8}(?!\d)"
)

TOKENS = {
    "email": "<EMAIL>",
    "cpf": "<CPF>",
    "cnpj": "<CNPJ>",
    "card": "<CARTAO>",
    "phone": "<TELEFONE>",
    "rg": "<RG>",
}


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def valid_cpf(text: str) -> bool:
    digits = _digits(text)
    if len(digits) != 11 or digits == digits[0] * 11:
        return False
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        check = (total * 10) % 11 % 10
        if check != int(digits[size]):
            return False
    return True


def valid_cnpj(text: str) -> bool:
    digits = _digits(text)
    if len(digits) != 14 or digits == digits[0] * 14:
        return False
    weights = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    for size in (12, 13):
        w = weights if size == 12 else [6, *weights]
        total = sum(int(d) * k for d, k in zip(digits[:size], w, strict=True))
        rest = total % 11
        if (0 if rest < 2 else 11 - rest) != int(digits[size]):
            return False
    return True


def luhn_valid(text: str) -> bool:
    digits = _digits(text)
    if not 13 <= len(digits) <= 19 or digits == digits[0] * len(digits):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass
class Masker:
    counts: Counter[str] = field(default_factory=Counter)

    def _sub(
        self, pattern: re.Pattern[str], kind: str, text: str, check: Callable[[str], bool] | None = None
    ) -> str:
        def replace(match: re.Match[str]) -> str:
            if check is not None and not check(match.group(0)):
                return match.group(0)
            self.counts[kind] += 1
            return TOKENS[kind]

        return pattern.sub(replace, text)

    def text(self, value: str) -> str:
        """`value` with every PII span replaced by its token."""
        if not value or not any(ch.isdigit() or ch == "@" for ch in value):
            return value
        out = self._sub(_EMAIL, "email", value)
        out = self._sub(_CNPJ_FORMATTED, "cnpj", out)
        out = self._sub(_CPF_FORMATTED, "cpf", out)
        out = self._sub(_BARE_DIGITS, "cnpj", out, lambda m: len(m) == 14 and valid_cnpj(m))
        out = self._sub(_BARE_DIGITS, "cpf", out, lambda m: len(m) == 11 and valid_cpf(m))
        out = self._sub(_CARD, "card", out, luhn_valid)
        out = self._sub(_RG_FORMATTED, "rg", out)
        return self._sub(_PHONE, "phone", out)

    def value(self, value: Any, column_type: str | None = None) -> Any:
        """A cell: strings are masked (whole, for columns typed email/phone); other types pass."""
        if not isinstance(value, str) or not value:
            return value
        if column_type in ("email", "phone") and value.strip():
            self.counts[column_type] += 1
            return TOKENS[column_type]
        return self.text(value)

    def deep(self, value: Any) -> Any:
        """Every string inside a JSON-like structure (dict keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.deep(v) for k, v in value.items()}
        return value

    def warning(self) -> str | None:
        """`"3 valores com PII mascarados (email: 2, cpf: 1)"`, or None when nothing was masked."""
        total = sum(self.counts.values())
        if not total:
            return None
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(self.counts.items()))
        return f"{total} valores com PII mascarados ({kinds})"
