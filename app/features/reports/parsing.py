"""Dataset parsing (contract §4): bytes in, column profile + sample + full-file aggregates out.

Pure: no database. The format is chosen from the content, never the filename: a zip is read as
XLSX (first sheet, formula cells as their cached values, dates as ISO dates), an OLE2 file (.xls)
is refused with a message, anything else must decode as text (UTF-8 with or without BOM, else
Windows-1252/Latin-1) and is read as CSV with its delimiter sniffed among `, ; TAB |`.

Rows stream through once: the first `INSPECT_ROWS` are kept to type the columns (the thresholds
of the old product: 50 values tested, 70 % for numbers, 60 % for the others), then every row,
those included, feeds the aggregates. Typing fixes the old quirks (§4.6): explicit date formats
(ISO, dd/mm/yyyy, dd-mm-yyyy, yyyy/mm/dd; "Loja 12" is not a date), pt-BR numbers (`1.234,56`,
`R$`, `%`), and digit strings that are identifiers (10+ digits or a leading zero) are not numbers.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from openpyxl import load_workbook

from app.features.users.csv_parsing import CsvError, decode

PROFILE_VERSION = 2
INSPECT_ROWS = 2000
DETECT_VALUES = 50
SAMPLE_ROWS = 30
SAMPLE_VALUES = 10
TOP_CATEGORIES = 20
MAX_TRACKED_CATEGORIES = 1000
MAX_SUMMED_COLUMNS = 5  # numeric columns summed per category and per month
CATEGORY_MAX_UNIQUE = 200  # low and medium cardinality

TYPES = ("number", "date", "email", "url", "phone", "string", "null")

_DELIMITERS = (",", ";", "\t", "|")


class ParseError(Exception):
    """The file cannot become a dataset; `message` tells the person what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ParsedDataset:
    columns: list[dict[str, Any]]
    sample: list[dict[str, str]]
    row_count: int
    stats: dict[str, Any]
    info: dict[str, Any]


# --- reading -------------------------------------------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def sniff_format(data: bytes) -> str:
    """`xlsx` or `csv` from the bytes; ParseError for what we can never read."""
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise ParseError("empty_file", "O arquivo está vazio: envie um CSV ou XLSX com cabeçalho e dados.")
    if data.startswith(ZIP_MAGIC):
        return "xlsx"
    if data.startswith(OLE_MAGIC):
        raise ParseError(
            "unsupported_format",
            "Formato .xls não suportado: salve a planilha como .xlsx ou .csv e envie de novo.",
        )
    return "csv"


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM stripped), else Windows-1252, else Latin-1 (the user import's
    decoder). Binary is refused."""
    try:
        return decode(data)
    except CsvError as exc:
        if exc.code == "EMPTY_FILE":
            raise ParseError(
                "empty_file", "O arquivo está vazio: envie um CSV ou XLSX com cabeçalho e dados."
            ) from None
        raise _not_text() from None


def _not_text() -> ParseError:
    return ParseError(
        "unsupported_format",
        "O arquivo não é um CSV nem um XLSX (parece binário): exporte os dados como .csv ou .xlsx.",
    )


def sniff_delimiter(text: str) -> str:
    """The candidate found most often (outside quotes) on the first non-empty line; `,` if none."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(data: bytes, info: dict[str, Any]) -> Iterator[list[str]]:
    text, encoding = decode_text(data)
    delimiter = sniff_delimiter(text)
    info.update(format="csv", encoding=encoding, delimiter=delimiter)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    try:
        yield from reader
    except csv.Error as exc:
        raise ParseError("parse_error", f"CSV malformado na linha {reader.line_num}: {exc}") from None


def cell_text(value: Any) -> str:
    """An XLSX cell as the text a CSV export would hold (dates ISO, numbers without `.0`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value).strip()


def _xlsx_rows(data: bytes, info: dict[str, Any]) -> Iterator[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise ParseError(
            "parse_error",
            f"O arquivo XLSX está corrompido ou não é uma planilha válida ({type(exc).__name__}).",
        ) from None
    try:
        if not workbook.worksheets:
            raise ParseError("empty_file", "A planilha não tem abas.")
        sheet = workbook.worksheets[0]
        info.update(format="xlsx", sheet=sheet.title)
        for row in sheet.iter_rows(values_only=True):
            yield [cell_text(v) for v in row]
    finally:
        workbook.close()


def read_rows(data: bytes, info: dict[str, Any]) -> Iterator[list[str]]:
    if sniff_format(data) == "xlsx":
        return _xlsx_rows(data, info)
    return _csv_rows(data, info)


# --- value recognisers ---------------------------------------------------------------------

_CURRENCY = re.compile(r"^(?:R\$|US\$|\$|€|£)\s*|\s*(?:R\$|%)$", re.IGNORECASE)
_NUMERIC = re.compile(r"^[+-]?\d[\d.,]*$")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$")
_GROUPED_DOT = re.compile(r"^\d{1,3}(?:\.\d{3})+$")
_GROUPED_COMMA = re.compile(r"^\d{1,3}(?:,\d{3})+$")


def _clean_number(raw: str) -> str:
    text = raw.strip().replace("\u00a0", " ")
    for _ in range(2):
        text = _CURRENCY.sub("", text).strip()
    if text.startswith("(") and text.endswith(")"):
        text = "-" + text[1:-1]
    return text.replace(" ", "")


def is_identifier(raw: str) -> bool:
    """Digit strings that are codes, not quantities: 10+ digits (phones, CPFs, ids, timestamps)
    or a leading zero."""
    text = re.sub(r"[\s-]", "", raw)
    return text.isdigit() and (len(text) >= 10 or (len(text) > 1 and text[0] == "0"))


def parse_number(raw: str, decimal: str = ",") -> float | None:
    """A number written the Brazilian way (`1.234,56`) or the English way (`1,234.56`), with
    `R$`/`%` allowed around it. `decimal` settles the ambiguous `1.234` / `1,234`."""
    text = _clean_number(raw)
    if not text:
        return None
    if _SCIENTIFIC.match(text):
        return float(text)
    if not _NUMERIC.match(text):
        return None
    sign = ""
    if text[0] in "+-":
        sign, text = text[0], text[1:]
    has_dot, has_comma = "." in text, "," in text
    if has_dot and has_comma:
        dec = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if dec == "," else ","
        whole, _, fraction = text.rpartition(dec)
        if fraction == "" or not re.fullmatch(rf"\d{{1,3}}(?:\{thousands}\d{{3}})+", whole):
            return None
        number = whole.replace(thousands, "") + "." + fraction
    elif has_comma:
        if text.count(",") > 1 or (decimal == "." and _GROUPED_COMMA.match(text)):
            if not _GROUPED_COMMA.match(text):
                return None
            number = text.replace(",", "")
        else:
            number = text.replace(",", ".")
    elif has_dot:
        if text.count(".") > 1 or (decimal == "," and _GROUPED_DOT.match(text)):
            if not _GROUPED_DOT.match(text):
                return None
            number = text.replace(".", "")
        else:
            number = text
    else:
        number = text
    if number.startswith(".") or number.endswith("."):
        return None
    return float(Decimal(sign + number))


def decimal_style(values: Iterable[str]) -> str:
    """`,` (pt-BR) unless the values show English decimals and no Brazilian ones."""
    pt = en = 0
    for raw in values:
        text = _clean_number(raw)
        if re.search(r"\d,\d{1,2}$", text) or re.search(r"\.\d{3},", text):
            pt += 1
        elif re.search(r"\d\.(?:\d{1,2}|\d{4,})$", text) or re.search(r",\d{3}\.", text):
            en += 1
    return "." if en > pt else ","


_ISO = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_DMY_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_DMY_DASH = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$")
_YMD_SLASH = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")


def parse_date(raw: str) -> tuple[date, str] | None:
    """(date, format) for the explicit formats we accept; None for anything else."""
    text = raw.strip()
    if not text or not text[0].isdigit():
        return None
    for pattern, order, fmt in (
        (_ISO, "ymd", "yyyy-mm-dd"),
        (_DMY_SLASH, "dmy", "dd/mm/yyyy"),
        (_DMY_DASH, "dmy", "dd-mm-yyyy"),
        (_YMD_SLASH, "ymd", "yyyy/mm/dd"),
    ):
        match = pattern.match(text)
        if not match:
            continue
        a, b, c = (int(match.group(i)) for i in (1, 2, 3))
        year, month, day = (a, b, c) if order == "ymd" else (c, b, a)
        try:
            value = date(year, month, day)
        except ValueError:
            return None
        if pattern.groups > 3 and match.group(4) is not None:
            fmt += " hh:mm" if pattern is _DMY_SLASH else "Thh:mm:ss"
        return value, fmt
    return None


_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[\d\s()-]{8,22}$")


def is_email(text: str) -> bool:
    return bool(_EMAIL.match(text.strip()))


def is_url(text: str) -> bool:
    return bool(_URL.match(text.strip()))


def _bare_phone(digits: str) -> bool:
    """10 or 11 bare digits shaped like a Brazilian number (DDD, then a landline starting 2-5 or a
    mobile starting 9), optionally after 55; Unix timestamps and order ids are not."""
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    if len(digits) not in (10, 11) or "0" in digits[:2]:
        return False
    return digits[2] == "9" if len(digits) == 11 else digits[2] in "2345"


def is_phone(text: str) -> bool:
    value = text.strip()
    if not _PHONE.match(value):
        return False
    if value.isdigit() or (value.startswith("+") and value[1:].isdigit()):
        return _bare_phone(value.lstrip("+"))
    return 8 <= sum(ch.isdigit() for ch in value) <= 13


# --- column typing -------------------------------------------------------------------------


def detect_type(values: list[str]) -> tuple[str, str | None, str | None]:
    """(type, subtype, decimal separator) from a column's first non-null values (§4.3 order)."""
    tested = values[:DETECT_VALUES]
    if not tested:
        return "null", None, None
    total = len(tested)
    style = decimal_style(tested)
    numbers = [None if is_identifier(v) else parse_number(v, style) for v in tested]
    if sum(n is not None for n in numbers) / total > 0.7:
        every = [None if is_identifier(v) else parse_number(v, style) for v in values]
        integer = all(n is None or float(n).is_integer() for n in every)
        return "number", "integer" if integer else "decimal", style
    dates = [parse_date(v) for v in tested]
    if sum(d is not None for d in dates) / total > 0.6:
        formats = Counter(d[1] for d in dates if d is not None)
        return "date", formats.most_common(1)[0][0], None
    for kind, check in (("email", is_email), ("url", is_url), ("phone", is_phone)):
        if sum(check(v) for v in tested) / total > 0.6:
            return kind, None, None
    return "string", None, None


def cardinality(unique_count: int) -> str:
    return "low" if unique_count <= 20 else "medium" if unique_count <= CATEGORY_MAX_UNIQUE else "high"


def unique_headers(cells: list[str]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        base = cell.replace("\ufeff", "").strip() or f"coluna_{index + 1}"
        name, suffix = base, 0
        while name in seen:
            suffix += 1
            name = f"{base}_{suffix}"
        seen.add(name)
        names.append(name)
    return names


# --- aggregates ----------------------------------------------------------------------------


@dataclass
class _Numeric:
    count: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    invalid: int = 0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = value if self.minimum is None else min(self.minimum, value)
        self.maximum = value if self.maximum is None else max(self.maximum, value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": _round(self.total),
            "min": _round(self.minimum),
            "max": _round(self.maximum),
            "mean": _round(self.total / self.count) if self.count else None,
            "non_numeric": self.invalid,
        }


@dataclass
class _Groups:
    """Counts and sums per key (a category, a month), capped at MAX_TRACKED_CATEGORIES keys."""

    summed: list[str]
    counts: Counter[str] = field(default_factory=Counter)
    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    other_count: int = 0

    def add(self, key: str, numbers: dict[str, float]) -> None:
        if key not in self.counts and len(self.counts) >= MAX_TRACKED_CATEGORIES:
            self.other_count += 1
            return
        self.counts[key] += 1
        bucket = self.sums.setdefault(key, {})
        for name, value in numbers.items():
            bucket[name] = bucket.get(name, 0.0) + value

    def rows(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        return [
            {
                "value": key,
                "count": self.counts[key],
                "sums": {name: _round(self.sums.get(key, {}).get(name, 0.0)) for name in self.summed},
            }
            for key in keys
        ]


def _round(value: float | None) -> float | int | None:
    if value is None:
        return None
    rounded = round(value, 4)
    return int(rounded) if float(rounded).is_integer() and abs(rounded) < 1e15 else rounded


@dataclass
class _Profiler:
    names: list[str]
    columns: list[dict[str, Any]] = field(default_factory=list)
    numeric: dict[str, _Numeric] = field(default_factory=dict)
    categories: dict[str, _Groups] = field(default_factory=dict)
    months: dict[str, _Groups] = field(default_factory=dict)
    date_range: dict[str, list[date]] = field(default_factory=dict)
    styles: dict[str, str] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)

    def type_columns(self, inspected: list[list[str]]) -> None:
        self.index = {name: i for i, name in enumerate(self.names)}
        for index, name in enumerate(self.names):
            values = [row[index] for row in inspected if row[index]]
            kind, subtype, style = detect_type(values)
            distinct = list(dict.fromkeys(values))
            descriptor = {
                "name": name,
                "type": kind,
                "subtype": subtype,
                "null_ratio": round(1 - len(values) / len(inspected), 3) if inspected else 1.0,
                "unique_count": len(distinct),
                "cardinality": cardinality(len(distinct)),
                "sample_values": distinct[:SAMPLE_VALUES],
                "profile_version": PROFILE_VERSION,
            }
            if kind == "number":
                descriptor["decimal_separator"] = style
                self.numeric[name] = _Numeric()
                self.styles[name] = style or ","
            self.columns.append(descriptor)
        summed = [c["name"] for c in self.columns if c["type"] == "number"][:MAX_SUMMED_COLUMNS]
        for column in self.columns:
            if column["type"] == "string" and column["unique_count"] <= CATEGORY_MAX_UNIQUE:
                self.categories[column["name"]] = _Groups(summed)
            elif column["type"] == "date":
                self.months[column["name"]] = _Groups(summed)

    def add(self, row: list[str]) -> None:
        numbers: dict[str, float] = {}
        for name, stat in self.numeric.items():
            raw = row[self.index[name]]
            if not raw:
                continue
            value = None if is_identifier(raw) else parse_number(raw, self.styles[name])
            if value is None:
                stat.invalid += 1
            else:
                stat.add(value)
                numbers[name] = value
        for name, groups in self.categories.items():
            raw = row[self.index[name]]
            if raw:
                groups.add(raw, numbers)
        for name, groups in self.months.items():
            parsed = parse_date(row[self.index[name]])
            if parsed is not None:
                groups.add(parsed[0].strftime("%Y-%m"), numbers)
                span = self.date_range.setdefault(name, [parsed[0], parsed[0]])
                span[0], span[1] = min(span[0], parsed[0]), max(span[1], parsed[0])

    def stats(self, row_count: int) -> dict[str, Any]:
        categories = {}
        for name, groups in self.categories.items():
            top = [key for key, _ in groups.counts.most_common(TOP_CATEGORIES)]
            categories[name] = {
                "distinct": len(groups.counts),
                "top": groups.rows(top),
                "others_count": row_count_outside(groups, top),
            }
        by_month = {}
        for name, groups in self.months.items():
            span = self.date_range.get(name)
            by_month[name] = {
                "min": span[0].isoformat() if span else None,
                "max": span[1].isoformat() if span else None,
                "months": groups.rows(sorted(groups.counts)),
            }
        return {
            "row_count": row_count,
            "numeric": {name: stat.as_dict() for name, stat in self.numeric.items()},
            "categories": categories,
            "by_month": by_month,
            "summed_columns": [c["name"] for c in self.columns if c["type"] == "number"][:MAX_SUMMED_COLUMNS],
            "complete": True,  # computed over every row of the file, not the sample
        }


def row_count_outside(groups: _Groups, top: list[str]) -> int:
    return sum(groups.counts.values()) - sum(groups.counts[key] for key in top) + groups.other_count


# --- the whole file ------------------------------------------------------------------------


def parse_dataset(data: bytes, max_rows: int) -> ParsedDataset:
    """Read, type and aggregate a whole file. ParseError says why a file cannot be used."""
    info: dict[str, Any] = {}
    rows = (row for row in read_rows(data, info) if any(cell.strip() for cell in row))
    header = next(rows, None)
    if header is None:
        raise ParseError("empty_file", "O arquivo está vazio: envie um CSV ou XLSX com cabeçalho e dados.")
    while header and not header[-1].strip():  # XLSX rows padded to the sheet's width
        header = header[:-1]
    names = unique_headers(header)
    width = len(names)

    def normalise(row: list[str]) -> list[str]:
        cells = [cell.strip() for cell in row[:width]]
        return cells + [""] * (width - len(cells))

    inspected: list[list[str]] = []
    for row in rows:
        inspected.append(normalise(row))
        if len(inspected) >= INSPECT_ROWS:
            break
    if not inspected:
        raise ParseError("empty_file", "O arquivo só tem o cabeçalho: inclua pelo menos uma linha de dados.")
    profiler = _Profiler(names)
    profiler.type_columns(inspected)
    row_count = 0
    for row in _chain(inspected, (normalise(r) for r in rows)):
        row_count += 1
        if row_count > max_rows:
            raise ParseError(
                "too_large",
                f"O arquivo tem mais de {max_rows:,} linhas; divida-o em arquivos menores.".replace(",", "."),
            )
        profiler.add(row)
    sample = [dict(zip(names, row, strict=True)) for row in inspected[:SAMPLE_ROWS]]
    return ParsedDataset(profiler.columns, sample, row_count, profiler.stats(row_count), info)


def _chain(first: list[list[str]], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield from first
    yield from rest
