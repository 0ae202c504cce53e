"""A real SMTP server for tests (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import re
import socket
import time
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class Mailbox:
    def __init__(self) -> None:
        self.handler = _Handler()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def to(self, address: str, timeout: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.messages if m["To"] == address]
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def link_token(self, address: str) -> str:
        """The one-time token of the newest validation link mailed to address."""
        msgs = self.to(address)
        assert msgs, f"no mail to {address}"
        body = msgs[-1].get_payload(decode=True).decode()
        m = re.search(r"token=(sko_[A-Za-z0-9_\-]+)", body)
        assert m, body
        return m.group(1)
