"""Helpers for the AI-report tests: valid Brazilian documents, a dataset seeded with PII, uploads."""

from __future__ import annotations

import random
from typing import Any

from flask.testing import FlaskClient

from app import runtime


def cpf(seed: int) -> str:
    """A CPF with valid check digits, formatted."""
    digits = [int(d) for d in f"{(seed * 7919 + 10_000_019) % 1_000_000_000:09d}"]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(size + 1, 1, -1), strict=False))
        digits.append(total * 10 % 11 % 10)
    text = "".join(map(str, digits))
    return f"{text[:3]}.{text[3:6]}.{text[6:9]}-{text[9:]}"


def card(seed: int) -> str:
    """A Luhn-valid 16-digit card number, in groups of four."""
    body = [4, *[int(d) for d in f"{(seed * 104_729 + 123_456_789) % 10**14:014d}"]]
    total = 0
    for index, value in enumerate(reversed(body)):
        doubled = value * 2 if index % 2 == 0 else value
        total += doubled - 9 if doubled > 9 else doubled
    digits = "".join(map(str, [*body, (10 - total % 10) % 10]))
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def phone(seed: int) -> str:
    return f"(11) 9{8000 + seed % 2000:04d}-{1000 + seed * 37 % 9000:04d}"


def email(seed: int) -> str:
    return f"cliente.{seed}@exemplo.com.br"


def pii_csv(rows: int = 60) -> tuple[bytes, dict[str, list[str]]]:
    """A `;` CSV with Brazilian numbers and dates, plus personal data in its own columns and inside
    free text. Returns (bytes, the personal values by kind)."""
    rng = random.Random(7)
    seeded: dict[str, list[str]] = {"cpf": [], "email": [], "phone": [], "card": []}
    lines = ["Data;Loja;Valor;Cliente CPF;Email;Telefone;Cartao;Observacao"]
    for i in range(rows):
        values = {"cpf": cpf(i), "email": email(i), "phone": phone(i), "card": card(i)}
        for kind, value in values.items():
            seeded[kind].append(value)
        note = f"Contato {email(i + 1000)} CPF {cpf(i + 1000)}" if i % 2 else "sem observação"
        seeded["email"].append(email(i + 1000))
        seeded["cpf"].append(cpf(i + 1000))
        amount = f"{rng.randint(1, 9)}.{rng.randint(100, 999)},{rng.randint(10, 99)}"
        lines.append(
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 6):02d}/2024;Loja {rng.randint(1, 4)};{amount};"
            f"{values['cpf']};{values['email']};{values['phone']};{values['card']};{note}"
        )
    return ("\n".join(lines) + "\n").encode("utf-8"), seeded


def simple_csv(rows: int = 40) -> bytes:
    lines = ["data,categoria,valor"]
    for i in range(rows):
        lines.append(f"2024-{1 + i % 6:02d}-{1 + i % 28:02d},Categoria {i % 3},{10 + i}.5")
    return ("\n".join(lines) + "\n").encode()


def upload(client: FlaskClient, headers: dict[str, str], filename: str, data: bytes) -> tuple[str, Any]:
    """The old two-step upload: create (bearer) then PUT the bytes to `uploadUrl` (no bearer)."""
    created = client.post("/api/upload/create", json={"filename": filename}, headers=headers)
    assert created.status_code == 200, created.json
    url = created.json["uploadUrl"]
    base = runtime.settings().public_api_url  # links come from PUBLIC_API_URL, never the Host header
    assert url.startswith(f"{base}/api/upload/")
    put = client.put(url.removeprefix(base), data=data, content_type="text/csv")
    return created.json["datasetId"], put
