"""A local HTTP server that speaks the part of Tremendous's API v2 we use (orders, products), in the
test process, with scripted faults: time out (the order is created, the answer comes too late),
5xx before or after creating, 429, 400, or hold a request until the test releases it.

Unlike the real service it does NOT dedupe orders on `external_id` (unless `dedupe=True`), so a
test sees every duplicate our code would cause."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Fault:
    kind: str  # timeout_after_create | error_after_create | error | rate_limit | reject | hold | pass
    delay: float = 0.0
    release: threading.Event | None = None


@dataclass
class FakeTremendous:
    dedupe: bool = False
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    creates: Counter[str] = field(default_factory=Counter)  # external_id -> orders created
    posts: int = 0
    create_faults: list[Fault] = field(default_factory=list)
    lookup_faults: list[Fault] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)  # set while a request is held
    lock: threading.Lock = field(default_factory=threading.Lock)
    products: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _seq: int = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v2"

    def start(self) -> FakeTremendous:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._post(self)

            def do_GET(self) -> None:
                fake._get(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- state --------------------------------------------------------------------------------

    def order_for(self, external_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = [o for o in self.orders.values() if o["external_id"] == external_id]
        return found[0] if found else None

    def set_delivery(self, external_id: str, status: str) -> None:
        order = self.order_for(external_id)
        assert order is not None
        with self.lock:
            order["rewards"][0]["delivery"]["status"] = status

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        external_id = body.get("external_id")
        with self.lock:
            if self.dedupe and external_id:
                for order in self.orders.values():
                    if order["external_id"] == external_id:
                        return order
            self._seq += 1
            order_id = f"ORD{self._seq:06d}"
            reward = body.get("reward") or {}
            order = {
                "id": order_id,
                "external_id": external_id,
                "status": "EXECUTED",
                "created_at": "2026-11-23T12:00:00Z",
                "rewards": [
                    {
                        "id": f"RWD{self._seq:06d}",
                        "order_id": order_id,
                        "value": reward.get("value"),
                        "recipient": reward.get("recipient"),
                        "products": reward.get("products"),
                        "delivery": {"method": "EMAIL", "status": "SCHEDULED"},
                    }
                ],
            }
            self.orders[order_id] = order
            self.creates[external_id or ""] += 1
            return order

    # --- HTTP -----------------------------------------------------------------------------------

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        if not handler.headers.get("Authorization", "").startswith("Bearer "):
            return _answer(handler, 401, {"errors": {"message": "unauthorized"}})
        if urlparse(handler.path).path.rstrip("/").endswith("/orders") is False:
            return _answer(handler, 404, {"errors": {"message": "not found"}})
        with self.lock:
            self.posts += 1
            fault = self.create_faults.pop(0) if self.create_faults else None
        if fault is None:
            return _answer(handler, 201, {"order": self._create(body)})
        if fault.kind == "timeout_after_create":
            order = self._create(body)
            time.sleep(fault.delay)
            return _answer(handler, 201, {"order": order})
        if fault.kind == "error_after_create":
            self._create(body)
            return _answer(handler, 502, {"errors": {"message": "bad gateway"}})
        if fault.kind == "error":
            return _answer(handler, 500, {"errors": {"message": "internal error"}})
        if fault.kind == "rate_limit":
            return _answer(handler, 429, {"errors": {"message": "too many requests"}})
        if fault.kind == "reject":
            return _answer(
                handler, 400, {"errors": {"message": "Invalid product for this country", "payload": {}}}
            )
        if fault.kind == "hold":
            self.held.set()
            assert fault.release is not None
            fault.release.wait(120)
            order = self._create(body)
            return _answer(handler, 201, {"order": order})
        raise AssertionError(fault.kind)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        path = url.path.rstrip("/")
        with self.lock:
            fault = self.lookup_faults.pop(0) if self.lookup_faults and "/orders" in path else None
        if fault is not None and fault.kind == "error":  # ("pass" answers normally)
            return _answer(handler, 503, {"errors": {"message": "unavailable"}})
        if path.endswith("/orders"):
            external = parse_qs(url.query).get("external_id", [None])[0]
            with self.lock:
                found = [o for o in self.orders.values() if external is None or o["external_id"] == external]
            return _answer(handler, 200, {"orders": found, "total_count": len(found)})
        if "/orders/" in path:
            key = path.rsplit("/", 1)[1]
            with self.lock:
                order = self.orders.get(key) or next(
                    (o for o in self.orders.values() if o["external_id"] == key), None
                )
            if order is None:
                return _answer(handler, 404, {"errors": {"message": "Order not found"}})
            return _answer(handler, 200, {"order": order})
        if path.endswith("/products"):
            return _answer(handler, 200, {"products": self.products})
        return _answer(handler, 404, {"errors": {"message": "not found"}})


def _answer(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout): the order exists anyway


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def product(
    external_id: str, name: str, low: float, high: float, *, country: str = "BR", currency: str = "BRL"
) -> dict[str, Any]:
    return {
        "id": external_id,
        "name": name,
        "description": f"{name} gift card",
        "category": "merchant_card",
        "currency_codes": [currency],
        "countries": [{"abbr": country}],
        "images": [{"src": f"https://img.example/{external_id}.png", "type": "card"}],
        "skus": [{"min": low, "max": high}],
    }
