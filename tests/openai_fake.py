"""A local HTTP server in the test process that speaks the OpenAI chat-completions API.

Each request takes the next scripted behaviour (or `default` once the script is used up):
- "valid": a schema-valid report as the message content (inside a ``` fence, with prose around);
- "garbage": text that is not JSON;
- "invalid": JSON that breaks the schema (a chart type out of the enum, a ragged row);
- "timeout": hold the request longer than the client's timeout;
- "429" / "500": an error status with an OpenAI-style error body.
Every request body is kept (decoded JSON) for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app import runtime
from app.config import Settings

VALID_REPORT: dict[str, Any] = {
    "summary": "Vendas concentradas na Loja 1; o faturamento cresceu no último mês.",
    "insights": [
        {"text": "Reforce o estoque da Loja 1 antes do fim do mês.", "confidence": "Alta"},
        {"text": "Crie uma promoção para a Loja 3.", "confidence": "medium"},
    ],
    "kpis": [
        {"label": "Faturamento Total", "value": 1500.5, "unit": "R$"},
        {"label": "Pedidos", "value": 12},
    ],
    "charts": [
        {
            "type": "Bar",
            "title": "Faturamento por loja",
            "description": "Top lojas",
            "columns": ["Loja", "Faturamento"],
            "data_rows": [["Loja 1", 900.5], ["Loja 2", 600]],
        },
        {
            "type": "multi-line",
            "title": "Entradas e saídas",
            "columns": ["Mês", "Entradas", "Saídas"],
            "data_rows": [["2024-01", 10, 5], ["2024-02", 12, 7]],
        },
    ],
    "meta": {"rows_sampled": 30, "warnings": []},
}
INVALID_REPORT: dict[str, Any] = {
    **VALID_REPORT,
    "charts": [{"type": "heatmap", "title": "X", "columns": ["a", "b"], "data_rows": [["a", 1, 2]]}],
}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[str] = []
        self.default = "valid"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.hold_seconds = 5.0
        self.port = _free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def bodies(self) -> str:
        """Every request body received, as one string (for "this never reached the server" checks)."""
        with self.lock:
            return "\n".join(json.dumps(r, ensure_ascii=False) for r in self.requests)

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        with self.lock:
            self.requests.append(body)
            self.headers.append(headers)
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                behaviour = fake._next(body, {k.lower(): v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(
                        404, {"error": {"message": "not found", "type": "invalid_request_error"}}
                    )
                if behaviour == "timeout":
                    fake.release.wait(fake.hold_seconds)
                    return self._send(500, {"error": {"message": "held too long"}})
                if behaviour in ("429", "500"):
                    return self._send(
                        int(behaviour), {"error": {"message": f"fake {behaviour}", "type": "x"}}
                    )
                content = {
                    "valid": "Aqui está o relatório:\n```json\n"
                    + json.dumps(VALID_REPORT)
                    + "\n```\nAbraços",
                    "garbage": "Desculpe, não consigo ajudar com isso.",
                    "invalid": json.dumps(INVALID_REPORT),
                }.get(behaviour, behaviour)
                return self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": 1700000000,
                        "model": body.get("model", "fake-model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): that is the point of the test

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_openai(settings: Settings) -> Iterator[FakeOpenAI]:
    """The fake server, made the app's OpenAI-compatible endpoint (with a key) for the test."""
    fake = FakeOpenAI()
    fake.start()
    runtime.init(
        replace(
            runtime.settings(),
            openai_api_key="sk-test-key",
            openai_base_url=fake.base_url,
            ai_model="fake-model",
            ai_timeout_seconds=0.5,
        )
    )
    yield fake
    fake.stop()
    runtime.init(settings)
