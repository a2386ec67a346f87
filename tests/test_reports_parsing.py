"""Pure parts of the AI reports: type inference on a written corpus, PII masking, the output
schema and the prompt. No database."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from app.features.reports import analyst, prompt
from app.features.reports.output_schema import InvalidOutput, extract_json, finish
from app.features.reports.parsing import ParseError, parse_dataset, parse_date, parse_number
from app.features.reports.pii import Masker, valid_cnpj, valid_cpf
from tests.reports_helpers import card, cpf


def _types(parsed) -> dict[str, tuple[str, str | None]]:
    return {c["name"]: (c["type"], c["subtype"]) for c in parsed.columns}


# --- type inference ------------------------------------------------------------------------


def test_brazilian_and_english_numbers_dates_and_things_that_are_neither():
    assert parse_number("1.234,56") == 1234.56
    assert parse_number("R$ 1.234,56") == 1234.56
    assert parse_number("12,5%") == 12.5
    assert parse_number("(15,00)") == -15.0
    assert parse_number("1,234.56", ".") == 1234.56
    assert parse_number("1.234", ",") == 1234 and parse_number("1.234", ".") == 1.234
    for text in ("Infinity", "NaN", "Loja 12", "1.2.3", "", "12a"):
        assert parse_number(text) is None, text
    assert parse_date("15/03/2024") == (date(2024, 3, 15), "dd/mm/yyyy")
    assert parse_date("2024-03-15") == (date(2024, 3, 15), "yyyy-mm-dd")
    assert parse_date("2024-03-15T10:20:00Z") == (date(2024, 3, 15), "yyyy-mm-ddThh:mm:ss")
    assert parse_date("03-02-2024") == (date(2024, 2, 3), "dd-mm-yyyy")
    for text in ("Loja 12", "Produto 1", "A 2", "Janeiro 2024", "31/02/2024", "2024/13/01", "12"):
        assert parse_date(text) is None, text


def test_a_written_corpus_is_typed_as_a_person_would():
    lines = [
        "Data;Data ISO;Loja;Valor;Qtd;Vazia;Pedido;CEP;Email;Site;Telefone;Preço US",
        *[
            f"{d:02d}/03/2024;2024-04-{d:02d};Loja {d % 4};{d}.{d:03d},{d:02d};{d};;"
            f"{1_700_000_000 + d};0{d:04d}000;c{d}@x.com;https://x.com/{d};(11) 9{d:04d}-1234;{d},{d:03d}.50"
            for d in range(1, 29)
        ],
    ]
    parsed = parse_dataset("\n".join(lines).encode(), 1000)
    types = _types(parsed)
    assert types["Data"] == ("date", "dd/mm/yyyy")
    assert types["Data ISO"] == ("date", "yyyy-mm-dd")
    assert types["Loja"] == ("string", None)  # "Loja 12" is not a date
    assert types["Valor"] == ("number", "decimal")
    assert types["Qtd"] == ("number", "integer")
    assert types["Vazia"] == ("null", None)
    assert types["Pedido"][0] == "string" and types["CEP"][0] == "string"  # identifiers, not quantities
    assert types["Email"][0] == "email" and types["Site"][0] == "url" and types["Telefone"][0] == "phone"
    assert types["Preço US"] == ("number", "decimal")
    columns = {c["name"]: c for c in parsed.columns}
    assert columns["Vazia"]["null_ratio"] == 1.0 and columns["Loja"]["cardinality"] == "low"
    assert columns["Valor"]["decimal_separator"] == "," and columns["Preço US"]["decimal_separator"] == "."
    assert len(columns["Pedido"]["sample_values"]) == 10
    stats = parsed.stats
    assert stats["numeric"]["Valor"]["sum"] == pytest.approx(
        sum(d * 1000 + d + d / 100 for d in range(1, 29))
    )
    assert stats["numeric"]["Qtd"] == {
        "count": 28,
        "sum": 406,
        "min": 1,
        "max": 28,
        "mean": 14.5,
        "non_numeric": 0,
    }
    assert [m["value"] for m in stats["by_month"]["Data ISO"]["months"]] == ["2024-04"]
    assert {t["value"] for t in stats["categories"]["Loja"]["top"]} == {
        "Loja 0",
        "Loja 1",
        "Loja 2",
        "Loja 3",
    }


def test_latin1_bom_delimiters_duplicate_headers_and_ragged_rows():
    latin1 = "produto;preço;descrição\nCafé;10,50;Pão de queijo\nAçúcar;3,20;Doce\n".encode("latin-1")
    parsed = parse_dataset(latin1, 100)
    assert parsed.info == {"format": "csv", "encoding": "cp1252", "delimiter": ";"}
    assert parsed.sample[0] == {"produto": "Café", "preço": "10,50", "descrição": "Pão de queijo"}
    bom = "\ufeffa,b\n1,2\n".encode()
    assert parse_dataset(bom, 10).sample == [{"a": "1", "b": "2"}]
    assert parse_dataset(b"a\tb\n1\t2\n", 10).info["delimiter"] == "\t"
    assert parse_dataset(b"a|b\n1|2\n", 10).info["delimiter"] == "|"
    ragged = parse_dataset(b"x,x,,y\n1,2\n1,2,3,4,5\n\n", 10)
    assert [c["name"] for c in ragged.columns] == ["x", "x_1", "coluna_3", "y"]
    assert ragged.row_count == 2 and ragged.sample[0] == {"x": "1", "x_1": "2", "coluna_3": "", "y": ""}


def test_files_that_cannot_be_datasets_say_why():
    cases = {
        b"": "empty_file",
        b"  \n\n": "empty_file",
        b"a;b;c\n": "empty_file",
        bytes(range(256)): "unsupported_format",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100: "unsupported_format",
        b"PK\x03\x04 not really a zip": "parse_error",
    }
    for data, code in cases.items():
        with pytest.raises(ParseError) as error:
            parse_dataset(data, 100)
        assert error.value.code == code and error.value.message
    with pytest.raises(ParseError) as error:
        parse_dataset(b"a\n" + b"1\n" * 11, 10)
    assert error.value.code == "too_large"


def _xlsx(rows: int) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Vendas")
    sheet.append(["Data", "Loja", "Valor", "Dobro", "Link"])
    for i in range(rows):
        link = WriteOnlyCell(sheet, value=f"Pedido {i}")
        link.hyperlink = f"https://loja.example/p/{i}"
        sheet.append([datetime(2024, 1 + i % 12, 1 + i % 28), f"Loja {i % 7}", i + 0.5, f"=C{i + 2}*2", link])
    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl writes formulas without a cached value; add the one Excel would have stored.
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(
                    rb"<f>C(\d+)\*2</f><v\s*/>",
                    lambda m: (
                        b"<f>C%s*2</f><v>%s</v>" % (m.group(1), str((int(m.group(1)) - 2 + 0.5) * 2).encode())
                    ),
                    data,
                )
            target.writestr(item, data)
    return out.getvalue()


@pytest.mark.slow
def test_a_20k_row_xlsx_is_read_whole_with_formula_values_and_dates():
    rows = 20_000
    parsed = parse_dataset(_xlsx(rows), 200_000)
    assert parsed.row_count == rows and parsed.info["format"] == "xlsx" and parsed.info["sheet"] == "Vendas"
    types = _types(parsed)
    assert types["Data"] == ("date", "yyyy-mm-dd") and types["Loja"] == ("string", None)
    assert types["Valor"] == ("number", "decimal") and types["Dobro"][0] == "number"
    assert types["Link"] == ("string", None)
    assert parsed.sample[0] == {
        "Data": "2024-01-01",
        "Loja": "Loja 0",
        "Valor": "0.5",
        "Dobro": "1",
        "Link": "Pedido 0",
    }
    assert "[object Object]" not in str(parsed.sample)
    numeric = parsed.stats["numeric"]
    assert numeric["Valor"]["count"] == rows and numeric["Valor"]["sum"] == sum(i + 0.5 for i in range(rows))
    assert numeric["Dobro"]["sum"] == sum((i + 0.5) * 2 for i in range(rows))  # the cached formula values
    months = parsed.stats["by_month"]["Data"]["months"]
    assert len(months) == 12 and sum(m["count"] for m in months) == rows
    assert sum(t["count"] for t in parsed.stats["categories"]["Loja"]["top"]) == rows


# --- PII -----------------------------------------------------------------------------------


def test_pii_is_masked_span_by_span_with_check_digits_and_luhn():
    masker = Masker()
    good_cpf, good_card = cpf(5), card(5)
    bare_cpf = re.sub(r"\D", "", good_cpf)
    assert valid_cpf(good_cpf) and not valid_cpf(bare_cpf[:-1] + str((int(bare_cpf[-1]) + 1) % 10))
    assert valid_cnpj("11.222.333/0001-81") and not valid_cnpj("11.222.333/0001-82")
    cases = {
        f"Cliente {good_cpf} pagou": "Cliente <CPF> pagou",
        f"cpf {bare_cpf}": "cpf <CPF>",
        "CNPJ 11.222.333/0001-81": "CNPJ <CNPJ>",
        "11222333000181": "<CNPJ>",
        "Fale com ana.souza@empresa.com.br hoje": "Fale com <EMAIL> hoje",
        "(11) 98765-4321": "<TELEFONE>",
        "+55 11 98765-4321 ou 3333-4444": "<TELEFONE> ou <TELEFONE>",
        f"cartão {good_card}": "cartão <CARTAO>",
        f"cartão {good_card.replace(' ', '-')}": "cartão <CARTAO>",
        "RG 12.345.678-9": "RG <RG>",
    }
    for text, expected in cases.items():
        assert masker.text(text) == expected, text
    untouched = [
        "Pedido 1700000000",
        "1234567890.50",
        "Loja 12",
        "2024-03-15",
        "15/03/2024",
        "R$ 1.234,56",
        "123456789",
        "4111 1111 1111 1112",  # not Luhn-valid
        "12345678900",  # bad CPF check digits
    ]
    for text in untouched:
        assert masker.text(text) == text, text
    assert masker.value("11987654321", "phone") == "<TELEFONE>"  # a phone column is masked whole
    assert masker.value("11987654321", "string") == "11987654321"
    assert masker.value(42, "email") == 42
    assert masker.warning().startswith(f"{sum(masker.counts.values())} valores com PII mascarados (card: 2")


def test_everything_sent_to_the_model_is_masked():
    columns = [
        {"name": "cliente", "type": "string", "sample_values": [f"Maria {cpf(1)}"]},
        {"name": "email", "type": "string", "user_type": "email", "sample_values": ["maria@x.com.br"]},
    ]
    input_ = prompt.build_input(
        filename="clientes.csv",
        row_count=1,
        columns=columns,
        sample=[{"cliente": f"Maria {cpf(1)}", "email": "maria@x.com.br"}],
        stats={"categories": {"cliente": {"top": [{"value": f"Maria {cpf(1)}", "count": 1, "sums": {}}]}}},
        profile={"niche_bussiness": "Roupas", "goal": {"selected": [], "other": "ligar 11 98765-4321"}},
        parameters={"nota": "cartão " + card(1)},
    )
    text = "".join(m["content"] for m in prompt.build_messages(input_))
    for secret in (cpf(1), "maria@x.com.br", "98765-4321", card(1)):
        assert secret not in text
    assert "Maria <CPF>" in text and "<EMAIL>" in text and "<CARTAO>" in text and "<TELEFONE>" in text
    assert input_.warnings == ["7 valores com PII mascarados (card: 1, cpf: 3, email: 2, phone: 1)"]


# --- prompt --------------------------------------------------------------------------------


def test_the_prompt_uses_the_profile_parameters_and_full_file_numbers():
    profile = {
        "niche_bussiness": "Estética",
        "goal": {"selected": ["Aumentar vendas"], "other": "fidelizar"},
        "analysis_period": "último trimestre",
        "info_priority": ["faturamento", "clientes"],
        "best_data_format": "Gráficos",
    }
    input_ = prompt.build_input(
        filename="f.csv",
        row_count=1234,
        columns=[],
        sample=[],
        stats={},
        profile=profile,
        parameters={"foco": "x"},
    )
    system, user = (m["content"] for m in prompt.build_messages(input_))
    assert input_.niche == "estetica" and prompt.NICHE_GUIDELINES["estetica"] in system
    assert (
        "Objetivos: Aumentar vendas, fidelizar" in system and "Prioridades: faturamento, clientes" in system
    )
    assert "Período de análise: último trimestre" in system and "prefere gráficos" in system
    assert "TODAS as 1234 linhas" in system and "undefined" not in system
    assert '"foco": "x"' in user and '"row_count": 1234' in user
    generic = prompt.build_input(
        filename="f", row_count=0, columns=[], sample=[], stats={}, profile=None, parameters={}
    )
    system = prompt.build_messages(generic)[0]["content"]
    assert "não informou um perfil" in system and prompt.NICHE_GUIDELINES["default"] in system
    assert generic.warnings == ["O conjunto de dados não tem linhas."]


# --- output schema -------------------------------------------------------------------------


def _valid() -> dict:
    return {
        "summary": "ok",
        "insights": [{"text": "a", "confidence": "ALTA"}],
        "kpis": [{"label": "Total", "value": 10, "unit": "R$"}],
        "charts": [
            {"type": "Donut", "title": "t", "columns": ["c", "v"], "data_rows": [["a", 1], ["b", None]]}
        ],
        "meta": {"rows_sampled": "30"},
    }


def test_the_schema_enforces_the_nine_chart_types_and_the_row_shapes():
    warnings: list[str] = []
    done = finish(_valid(), {"rows_sampled": 30, "row_count": 99}, warnings)
    assert done["charts"][0]["type"] == "donut" and done["charts"][0]["data_rows"][1] == ["b", 0]
    assert done["insights"][0]["confidence"] == "high" and done["meta"]["row_count"] == 99
    assert any("nulos" in w for w in done["meta"]["warnings"])
    bad_cases = {
        "heatmap": lambda d: d["charts"][0].update(type="heatmap"),
        "3 valores": lambda d: d["charts"][0].update(data_rows=[["a", 1, 2]]),
        ">= 0": lambda d: d["charts"][0].update(data_rows=[["a", -1]]),
        "x e y": lambda d: d["charts"][0].update(type="scatter", data_rows=[["a", 1]]),
        "pelo menos 2": lambda d: d["charts"][0].update(type="bar", columns=["c"], data_rows=[]),
        "required": lambda d: d.pop("kpis"),
    }
    for expected, breaks in bad_cases.items():
        doc = _valid()
        breaks(doc)
        with pytest.raises(InvalidOutput) as error:
            finish(doc, {"rows_sampled": 30}, [])
        assert expected in " ".join(error.value.errors), (expected, error.value.errors)
    long = _valid()
    long["charts"] = [long["charts"][0]] * 12
    long["charts"][0] = {**long["charts"][0], "data_rows": [["x", i] for i in range(15)]}
    warnings = []
    done = finish(long, {"rows_sampled": 30}, warnings)
    assert len(done["charts"]) == 8 and len(done["charts"][0]["data_rows"]) == 10 and len(warnings) >= 2


def test_json_is_extracted_from_fences_and_prose_and_garbage_is_refused():
    assert extract_json('Claro!\n```json\n{"a": 1}\n```\n```{"b": 2}```') == {"a": 1}
    assert extract_json('antes {"a": {"b": 2}} depois') == {"a": {"b": 2}}
    for garbage in ("", "sem json", "{quebrado", "[1, 2]"):
        with pytest.raises(InvalidOutput):
            extract_json(garbage)


def test_the_local_analyst_builds_a_valid_report_from_statistics_alone():
    lines = ["data;categoria;valor"] + [
        f"{1 + i % 28:02d}/{1 + i % 5:02d}/2024;Cat {i % 3};{i},50" for i in range(90)
    ]
    parsed = parse_dataset("\n".join(lines).encode(), 1000)
    input_ = prompt.build_input(
        filename="x.csv",
        row_count=parsed.row_count,
        columns=parsed.columns,
        sample=parsed.sample,
        stats=parsed.stats,
        profile=None,
        parameters={},
    )
    first = finish(analyst.analyse(input_), {"rows_sampled": 30}, [])
    assert first == finish(analyst.analyse(input_), {"rows_sampled": 30}, [])  # deterministic
    assert first["kpis"][1] == {
        "label": "Total de valor",
        "value": sum(i + 0.5 for i in range(90)),
        "unit": "R$",
    }
    assert [c["type"] for c in first["charts"]] == ["bar", "pie", "line", "table"]
