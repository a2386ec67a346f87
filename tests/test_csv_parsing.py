"""The CSV parser on a corpus of awkward files (pure: no database)."""

from __future__ import annotations

import pytest

from app.features.users.csv_parsing import CsvError, parse, template_csv


def rows_of(data: bytes, max_rows: int = 100):
    return parse(data, max_rows).rows


def test_template_has_the_portuguese_header_and_two_quoted_rows():
    lines = template_csv().splitlines()
    assert lines[0] == '"nome","email","departamento","cargo","email_gestor"'
    assert len(lines) == 3 and all(line.startswith('"') for line in lines)
    assert [r.email for r in rows_of(template_csv().encode())] == [
        "maria.silva@empresa.com",
        "joao.santos@empresa.com",
    ]


def test_english_headers_with_case_and_spaces():
    data = b" Name , EMAIL ,Department, Job Title ,Manager_Email\nAna,ANA@X.COM,Ops,Lead,\n"
    [row] = rows_of(data)
    assert (row.name, row.email, row.department, row.job_title, row.manager_email) == (
        "Ana",
        "ana@x.com",
        "Ops",
        "Lead",
        None,
    )


def test_semicolons_crlf_bom_and_blank_lines():
    data = "\ufeffnome;email;departamento\r\n\r\nJosé;jose@x.com;Vendas\r\n  \r\nAna;ana@x.com;\r\n".encode()
    parsed = parse(data, 100)
    assert parsed.delimiter == ";" and parsed.encoding == "utf-8"
    assert [(r.row_number, r.name, r.department) for r in parsed.rows] == [
        (1, "José", "Vendas"),
        (2, "Ana", None),
    ]


def test_quoted_fields_with_newlines_doubled_quotes_and_separators():
    data = b'nome,email,cargo\n"Silva, Ana ""Nina""",ana@x.com,"Head of\nSales"\nBob,bob@x.com,\n'
    first, second = rows_of(data)
    assert first.name == 'Silva, Ana "Nina"'
    assert first.job_title == "Head of\nSales"
    assert (second.row_number, second.name) == (2, "Bob")


def test_a_semicolon_file_with_commas_inside_quoted_cells():
    data = b'nome;email\n"Souza, Ana";ana@x.com\n'
    [row] = rows_of(data)
    assert row.name == "Souza, Ana"


def test_latin1_fallback():
    data = "nome,email,departamento\nJoão,joao@x.com,Operações\n".encode("latin-1")
    parsed = parse(data, 100)
    assert parsed.encoding in ("cp1252", "latin-1")
    assert (parsed.rows[0].name, parsed.rows[0].department) == ("João", "Operações")


def test_short_rows_and_extra_cells():
    [short, long] = rows_of(b"nome,email,departamento\nAna,ana@x.com\nBob,bob@x.com,Ops,extra,cells\n")
    assert short.department is None and long.department == "Ops"


@pytest.mark.parametrize(
    ("data", "code", "fragment"),
    [
        (b"", "EMPTY_FILE", "empty"),
        (b"\xef\xbb\xbf\r\n \n", "EMPTY_FILE", "empty"),
        (b"nome,email\n", "EMPTY_FILE", "no data rows"),
        (b"nome,email\n\n\n", "EMPTY_FILE", "no data rows"),
        (b"name,departamento\nAna,Ops\n", "MISSING_COLUMN", "email"),
        (b"email,cargo\nana@x.com,Dev\n", "MISSING_COLUMN", "nome"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NOT_TEXT", "binary"),
        (b"nome,email\nAna\x00,ana@x.com\n", "NOT_TEXT", "binary"),
        (b"nome,email\nAna\x01\x02,ana@x.com\n", "NOT_TEXT", "text"),
    ],
)
def test_files_that_cannot_be_used(data, code, fragment):
    with pytest.raises(CsvError) as caught:
        parse(data, 100)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_more_rows_than_the_maximum():
    data = b"nome,email\n" + b"".join(f"User {i},u{i}@x.com\n".encode() for i in range(11))
    assert len(rows_of(data, max_rows=11)) == 11
    with pytest.raises(CsvError) as caught:
        parse(data, 10)
    assert caught.value.code == "TOO_MANY_ROWS" and "10" in caught.value.message
