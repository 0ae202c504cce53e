"""Throttled sign-in: failed attempts are counted per account (by a hash of
the email, whether or not the account exists, so that the answer reveals
nothing) and per client address; past the limit within the window, sign-in
is refused for the lock-out time without checking the password."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealkeeper.clock import Clock
from sealkeeper.config import Settings
from sealkeeper.console.models import SignInThrottle
from sealkeeper.errors import SealkeeperError

__all__ = ["SignInThrottling", "TooManyAttempts"]


class TooManyAttempts(SealkeeperError):
    """Too many failed sign-ins: wait before trying again."""

    code = "too_many_attempts"


class SignInThrottling:
    def __init__(self, session: Session, clock: Clock, settings: Settings) -> None:
        self.s = session
        self.clock = clock
        self.window = timedelta(minutes=settings.signin_window_minutes)
        self.lockout = timedelta(minutes=settings.signin_lockout_minutes)
        self.per_account = settings.signin_max_failures
        self.per_address = settings.signin_max_failures_per_address

    @staticmethod
    def _account_key(email: str) -> str:
        norm = email.strip().lower().encode("utf-8", "replace")
        return "email:" + hashlib.sha256(norm).hexdigest()

    @staticmethod
    def _address_key(addr: str | None) -> str | None:
        return f"addr:{addr[:64]}" if addr else None

    def _keys(self, email: str, addr: str | None) -> list[tuple[str, int]]:
        keys = [(self._account_key(email), self.per_account)]
        address = self._address_key(addr)
        if address is not None:
            keys.append((address, self.per_address))
        return keys

    def check(self, email: str, addr: str | None) -> None:
        """Refuse while the account or the address is locked out."""
        now = self.clock()
        for key, _ in self._keys(email, addr):
            row = self.s.get(SignInThrottle, key)
            if row is not None and row.locked_until is not None and row.locked_until > now:
                raise TooManyAttempts(
                    "too many failed sign-ins: try again in "
                    f"{_minutes(row.locked_until - now)}", field="email")

    def failed(self, email: str, addr: str | None) -> None:
        now = self.clock()
        for key, limit in self._keys(email, addr):
            row = self._row(key, now)
            if now - row.window_started_at >= self.window or (
                    row.locked_until is not None and row.locked_until <= now):
                row.failures, row.window_started_at, row.locked_until = 0, now, None
            row.failures += 1
            if row.failures >= limit:
                row.locked_until = now + self.lockout
        self.s.flush()

    def succeeded(self, email: str) -> None:
        row = self.s.get(SignInThrottle, self._account_key(email))
        if row is not None:
            self.s.delete(row)

    def _row(self, key: str, now: datetime) -> SignInThrottle:
        row = self.s.scalar(select(SignInThrottle).where(SignInThrottle.key == key)
                            .with_for_update())
        if row is not None:
            return row
        try:
            with self.s.begin_nested():
                row = SignInThrottle(key=key, failures=0, window_started_at=now)
                self.s.add(row)
        except IntegrityError:  # another request inserted it meanwhile
            row = self.s.scalar(select(SignInThrottle).where(SignInThrottle.key == key)
                                .with_for_update())
            assert row is not None
        return row


def _minutes(delta: timedelta) -> str:
    minutes = max(1, -(-int(delta.total_seconds()) // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
