"""Pure parsing of the user-import CSV (contract §7.2): bytes in, rows out, no database.

A real CSV parser (the csv module): quoted fields with newlines and doubled `""`, `;` or `,` as the
separator (sniffed from the header line), UTF-8 with or without BOM and a Windows-1252/Latin-1
fallback, CRLF, blank lines skipped, header names matched case-insensitively with spaces trimmed.
Portuguese (`nome,email,departamento,cargo,email_gestor`) and English
(`name,email,department,job_title,manager_email`) headers are both accepted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass

TEMPLATE_HEADER = ("nome", "email", "departamento", "cargo", "email_gestor")
TEMPLATE_ROWS = (
    ("Maria Silva", "maria.silva@empresa.com", "Tecnologia", "Desenvolvedora", ""),
    ("João Santos", "joao.santos@empresa.com", "Tecnologia", "Analista", "maria.silva@empresa.com"),
)

# normalized header -> canonical field
_ALIASES = {
    "nome": "name",
    "name": "name",
    "nome_completo": "name",
    "full_name": "name",
    "email": "email",
    "e_mail": "email",
    "departamento": "department",
    "department": "department",
    "cargo": "job_title",
    "job_title": "job_title",
    "jobtitle": "job_title",
    "position": "job_title",
    "email_gestor": "manager_email",
    "e_mail_gestor": "manager_email",
    "gestor_email": "manager_email",
    "manager_email": "manager_email",
    "manager_e_mail": "manager_email",
}
REQUIRED = {"name": "nome (or name)", "email": "email"}

# Control characters that never occur in a text file (tab, LF and CR are allowed).
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CsvError(Exception):
    """The file as a whole cannot be used; the message says why, for a person to act on."""

    def __init__(self, message: str, code: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# (row_number, name, email, department, job_title, manager_email): a CsvRow's fields, as a tuple
# for the bulk path (COPY), which needs no object per row.
Record = tuple[int, str, str, str | None, str | None, str | None]


@dataclass(frozen=True)
class CsvRow:
    row_number: int  # data rows counted from 1, header and blank lines excluded
    name: str
    email: str  # trimmed and lowercased
    department: str | None
    job_title: str | None
    manager_email: str | None


@dataclass(frozen=True)
class ParsedCsv:
    rows: list[CsvRow]
    delimiter: str
    encoding: str


def template_csv() -> str:
    """The downloadable template: header plus two example rows, every cell quoted, LF lines."""
    lines = [TEMPLATE_HEADER, *TEMPLATE_ROWS]
    return "".join(",".join(f'"{cell}"' for cell in line) + "\n" for line in lines)


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM stripped), else Windows-1252, else Latin-1. Binary is refused."""
    if not data.strip(b" \t\r\n") or data.strip(b" \t\r\n") == b"\xef\xbb\xbf":
        raise CsvError("The file is empty", "EMPTY_FILE")
    if b"\x00" in data:
        raise CsvError("The file is not a text CSV file (it contains binary data)", "NOT_TEXT")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _BINARY.search(text):
            break
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise CsvError("The file is not a text CSV file (it decodes as neither UTF-8 nor Latin-1)", "NOT_TEXT")


def _normalize_header(cell: str) -> str:
    return re.sub(r"[\s\-]+", "_", cell.replace("\ufeff", "").strip().lower())


# A line and its ending (\r\n, \r or \n), as io.StringIO(newline="") splits them.
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+$")


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, one at a time (no list of them, no second copy of the text)."""
    return (match.group() for match in _LINE.finditer(text))


def _sniff_delimiter(text: str) -> str:
    """`;` when the header line has more semicolons than commas (outside quotes), else `,`."""
    header = next((line for line in _lines(text) if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    return ";" if unquoted.count(";") > unquoted.count(",") else ","


class CsvFile:
    """A file whose header has been read and checked; `records()` parses the data rows lazily, so
    a caller can stream them (into COPY) without holding them all."""

    def __init__(self, data: bytes, max_rows: int) -> None:
        text, self.encoding = decode(data)
        self.delimiter = _sniff_delimiter(text)
        self.max_rows = max_rows
        self._reader = csv.reader(_lines(text), delimiter=self.delimiter, quotechar='"', doublequote=True)
        try:
            header = next((cells for cells in self._reader if any(c.strip() for c in cells)), None)
        except csv.Error as exc:
            raise _unparseable(exc) from None
        if header is None:
            raise CsvError("The file is empty", "EMPTY_FILE")
        self.columns: dict[str, int] = {}
        for index, cell in enumerate(header):
            field = _ALIASES.get(_normalize_header(cell))
            if field and field not in self.columns:
                self.columns[field] = index
        missing = [label for field, label in REQUIRED.items() if field not in self.columns]
        if missing:
            found = ", ".join(c.strip() for c in header if c.strip()) or "none"
            raise CsvError(
                f"Missing required column(s): {', '.join(missing)}. Columns found: {found[:200]}",
                "MISSING_COLUMN",
            )

    def records(self) -> Iterator[Record]:
        """The data rows in order, once. CsvError for more than `max_rows` rows, for a file that
        breaks the CSV syntax, and (at the end) for a file with no data row."""
        columns = self.columns
        fields = [columns.get(f, -1) for f in ("name", "email", "department", "job_title", "manager_email")]
        count = 0
        try:
            for cells in self._reader:
                if not "".join(cells).strip():
                    continue  # blank line
                if count >= self.max_rows:
                    raise CsvError(
                        f"The file has more than {self.max_rows} data rows; split it into smaller files",
                        "TOO_MANY_ROWS",
                    )
                count += 1
                size = len(cells)
                name, email, department, title, manager = (
                    cells[i].strip() if 0 <= i < size else "" for i in fields
                )
                yield count, name, email.lower(), department or None, title or None, manager.lower() or None
        except csv.Error as exc:
            raise _unparseable(exc) from None
        if count == 0:
            raise CsvError("The file has a header but no data rows", "EMPTY_FILE")


def _unparseable(exc: csv.Error) -> CsvError:
    return CsvError(f"The file could not be parsed as CSV: {exc}", "UNPARSEABLE")


def parse(data: bytes, max_rows: int) -> ParsedCsv:
    """Parse the whole file; CsvError for an empty, binary, header-less or oversized file."""
    opened = CsvFile(data, max_rows)
    rows = [CsvRow(*record) for record in opened.records()]
    return ParsedCsv(rows=rows, delimiter=opened.delimiter, encoding=opened.encoding)
