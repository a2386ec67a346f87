"""A real SMTP server in the test process (aiosmtpd) that keeps what it receives and can refuse
recipients with chosen SMTP codes (transient 4xx or permanent 5xx)."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from app import db
from app.features.identity.models import User
from app.ids import new_id


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.data)

    def part(self, subtype: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                payload = part.get_payload(decode=True)
                return payload.decode(part.get_content_charset() or "utf-8") if payload else ""
        return ""


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    # recipient -> [(code, text), ...] replies used (and consumed) before the address is accepted
    refusals: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    connections: int = 0
    held: dict[str, threading.Event] = field(default_factory=dict)
    stalled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds each DATA takes (a real relay is not instant)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            queue = self.refusals.get(address.lower())
            if queue:
                code, text = queue[0]
                if len(queue) > 1 or code < 500:  # transient replies are used once; a last 5xx sticks
                    queue.pop(0)
                return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        held = next((self.held[r.lower()] for r in envelope.rcpt_tos if r.lower() in self.held), None)
        if held is not None:  # stall this message until released, then drop it (never delivered)
            self.stalled.set()
            while not held.is_set():
                await asyncio.sleep(0.02)
            with self.lock:  # held once: a later attempt of the same message goes through
                for recipient in envelope.rcpt_tos:
                    self.held.pop(recipient.lower(), None)
            return "451 dropped by the test"
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = _free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def recipients(self) -> list[str]:
        return [r.lower() for m in self.messages for r in m.rcpt_tos]

    def refuse(self, address: str, *replies: tuple[int, str]) -> None:
        """Answer RCPT for `address` with these replies first. A transient (4xx) reply is used once;
        a permanent (5xx) last reply sticks."""
        self.handler.refusals[address.lower()] = list(replies)

    def hold(self, address: str) -> threading.Event:
        """Stall the message to `address` in DATA until the returned event is set; it is then
        refused, never delivered (a later message to the address is accepted). `stalled` is set
        once the stall began."""
        event = threading.Event()
        self.handler.held[address.lower()] = event
        return event

    @property
    def stalled(self) -> threading.Event:
        return self.handler.stalled

    @property
    def connections(self) -> int:
        return self.handler.connections


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


# Users inserted directly (no wallets or roles): enough for the email paths, and fast.
def make_users(company_id: str, count: int, prefix: str = "person") -> list[str]:
    rows = [
        {"id": new_id(), "company_id": company_id, "email": f"{prefix}{i}@acme.com", "name": f"Person {i}"}
        for i in range(count)
    ]
    with db.engine().begin() as conn:
        conn.execute(User.__table__.insert(), rows)
    return [r["id"] for r in rows]
