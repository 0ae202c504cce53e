"""Server-side console sessions: started after a successful sign-in, found by
the SHA-256 of the cookie, ended at sign-out, after an idle time, after an
absolute lifetime, or when the user stops being active.

A session starts in the ``totp`` stage when the user has a second factor and
becomes ``active`` once the code is right; the cookie is replaced at that
moment so that a token seen before the second factor is worth nothing.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import User, UserStatus
from sealkeeper.clock import Clock
from sealkeeper.config import Settings
from sealkeeper.console.models import ConsoleSession, SessionStage
from sealkeeper.crypto.secrets import token_hash

__all__ = ["MAX_TOTP_FAILURES", "ConsoleSessions"]

MAX_TOTP_FAILURES = 5
_TOUCH_EVERY = timedelta(seconds=60)
_COOKIE_MAX = 100


class ConsoleSessions:
    def __init__(self, session: Session, clock: Clock, settings: Settings) -> None:
        self.s = session
        self.clock = clock
        self.idle = timedelta(minutes=settings.console_session_idle_minutes)
        self.lifetime = timedelta(hours=settings.console_session_max_hours)

    def start(self, user: User, *, needs_totp: bool, remote_addr: str | None,
              user_agent: str | None) -> tuple[ConsoleSession, str]:
        """A new session for ``user``; returns the row and the cookie value (once)."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        row = ConsoleSession(
            token_hash=token_hash(cookie), user_id=user.id, csrf_secret=secrets.token_hex(32),
            stage=SessionStage.TOTP if needs_totp else SessionStage.ACTIVE, totp_failures=0,
            created_at=now, last_seen_at=now, expires_at=now + self.lifetime,
            remote_addr=(remote_addr or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None)
        self.s.add(row)
        self.s.flush()
        return row, cookie

    def find(self, cookie: str | None) -> tuple[ConsoleSession, User] | None:
        """The live session of this cookie and its user, or None."""
        if not cookie or len(cookie) > _COOKIE_MAX:
            return None
        row = self.s.scalar(select(ConsoleSession).where(
            ConsoleSession.token_hash == token_hash(cookie)))
        if row is None or row.ended_at is not None:
            return None
        now = self.clock()
        user = self.s.get(User, row.user_id)
        alive = now < row.expires_at and now < row.last_seen_at + self.idle and \
            user is not None and user.status == UserStatus.ACTIVE
        if not alive:
            row.ended_at = now
        elif now - row.last_seen_at >= _TOUCH_EVERY:
            row.last_seen_at = now
        # Flushed at once: a route may run a durable step that needs a clean session.
        self.s.flush()
        return (row, user) if alive and user is not None else None

    def activate(self, row: ConsoleSession) -> str:
        """The second factor was right: the session becomes active under a new cookie."""
        cookie = secrets.token_urlsafe(32)
        row.token_hash = token_hash(cookie)
        row.csrf_secret = secrets.token_hex(32)
        row.stage = SessionStage.ACTIVE
        row.totp_failures = 0
        row.last_seen_at = self.clock()
        self.s.flush()
        return cookie

    def end(self, row: ConsoleSession) -> None:
        if row.ended_at is None:
            row.ended_at = self.clock()

    def end_all(self, user_id: str, *, except_id: str | None = None) -> int:
        q = update(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                         ConsoleSession.ended_at.is_(None))
        if except_id is not None:
            q = q.where(ConsoleSession.id != except_id)
        result = self.s.execute(q.values(ended_at=self.clock()))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def active_of(self, user_id: str) -> list[ConsoleSession]:
        now = self.clock()
        rows = self.s.scalars(select(ConsoleSession).where(
            ConsoleSession.user_id == user_id, ConsoleSession.ended_at.is_(None),
            ConsoleSession.expires_at > now).order_by(ConsoleSession.created_at.desc()))
        return [r for r in rows if now < r.last_seen_at + self.idle]

    # -- one-shot messages shown on the next page ------------------------------

    @staticmethod
    def set_flash(row: ConsoleSession, message: str) -> None:
        row.flash = message[:1000]

    @staticmethod
    def pop_flash(row: ConsoleSession) -> str | None:
        message, row.flash = row.flash, None
        return message
