"""Outgoing mail: messages are queued by services and sent after commit.

With no SMTP host configured (development), messages are written as ``.eml``
files into ``<data_dir>/outbox`` and a warning says so.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from sealkeeper.config import Settings
from sealkeeper.db import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


@dataclass
class Outbox:
    """Mails a unit of work wants to send once it has committed."""

    pending: list[Mail] = field(default_factory=list)

    def add(self, to: str, subject: str, body: str) -> None:
        self.pending.append(Mail(to, subject, body))

    def drain(self) -> list[Mail]:
        out, self.pending = self.pending, []
        return out


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._s = settings

    def send(self, mail: Mail) -> None:
        msg = EmailMessage()
        msg["From"] = self._s.smtp_from
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg.set_content(mail.body)
        if self._s.smtp_host is None:
            outbox = Path(self._s.data_dir) / "outbox"
            outbox.mkdir(parents=True, exist_ok=True)
            path = outbox / f"{new_id()}.eml"
            path.write_bytes(bytes(msg))
            log.warning("no SMTP host configured: mail to %s written to %s", mail.to, path)
            return
        with smtplib.SMTP(self._s.smtp_host, self._s.smtp_port, timeout=10) as smtp:
            if self._s.smtp_starttls:
                smtp.starttls()
            if self._s.smtp_username and self._s.smtp_password:
                smtp.login(self._s.smtp_username, self._s.smtp_password.get_secret_value())
            smtp.send_message(msg)

    def send_all(self, outbox: Outbox) -> None:
        for mail in outbox.drain():
            try:
                self.send(mail)
            except OSError:
                log.exception("could not send mail to %s (subject %r)", mail.to, mail.subject)
