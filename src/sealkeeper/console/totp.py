"""TOTP second factor (RFC 6238, 30-second steps, 6 digits) with pyotp.

The secret is never stored: it is the pepper MAC (held by the key store) of a
random salt that is stored, so a database leak alone reveals no secret. A
code is accepted in the current step or one step either side, and never
twice (the last accepted step is kept), so a code seen once cannot be
replayed.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import User
from sealkeeper.authz import Actor
from sealkeeper.clock import Clock
from sealkeeper.console.models import TotpCredential
from sealkeeper.crypto.keystore.base import KeyStore
from sealkeeper.errors import Conflict, InvalidInput

__all__ = ["TotpEnrollment", "TotpService"]

_DIGITS = 6


class TotpEnrollment:
    def __init__(self, secret: str, uri: str) -> None:
        self.secret = secret
        self.uri = uri

    @property
    def grouped_secret(self) -> str:
        return " ".join(self.secret[i:i + 4] for i in range(0, len(self.secret), 4))


class TotpService:
    def __init__(self, session: Session, clock: Clock, keystore: KeyStore,
                 issuer: str = "sealkeeper") -> None:
        self.s = session
        self.clock = clock
        self.keystore = keystore
        self.issuer = issuer

    def _totp(self, user_id: str, salt: str) -> pyotp.TOTP:
        raw = self.keystore.pepper_mac(f"console-totp-v1\x00{user_id}\x00{salt}".encode())
        return pyotp.TOTP(base64.b32encode(raw[:20]).decode("ascii"), digits=_DIGITS)

    def enabled(self, user_id: str) -> bool:
        cred = self.s.get(TotpCredential, user_id)
        return cred is not None and cred.enabled_at is not None

    def begin(self, actor: Actor) -> TotpEnrollment:
        """Start (or restart) enrolment: a new secret, not in force until confirmed."""
        cred = self.s.get(TotpCredential, actor.user_id)
        if cred is not None and cred.enabled_at is not None:
            raise Conflict("two-step sign-in is already on; turn it off first")
        salt = secrets.token_hex(16)
        if cred is None:
            cred = TotpCredential(user_id=actor.user_id, salt=salt, created_at=self.clock())
            self.s.add(cred)
        else:
            cred.salt, cred.created_at, cred.last_counter = salt, self.clock(), None
        self.s.flush()
        return self._enrollment(actor.user_id, actor.email, salt)

    def pending(self, actor: Actor) -> TotpEnrollment | None:
        cred = self.s.get(TotpCredential, actor.user_id)
        if cred is None or cred.enabled_at is not None:
            return None
        return self._enrollment(actor.user_id, actor.email, cred.salt)

    def _enrollment(self, user_id: str, email: str, salt: str) -> TotpEnrollment:
        totp = self._totp(user_id, salt)
        return TotpEnrollment(totp.secret, totp.provisioning_uri(name=email,
                                                                  issuer_name=self.issuer))

    def confirm(self, actor: Actor, code: str) -> None:
        cred = self.s.get(TotpCredential, actor.user_id)
        if cred is None or cred.enabled_at is not None:
            raise Conflict("start the set-up of two-step sign-in first")
        if not self._check(cred, code):
            raise InvalidInput("the code is not right; check the time on your device",
                               field="code")
        cred.enabled_at = self.clock()

    def disable(self, actor: Actor, code: str) -> None:
        cred = self.s.get(TotpCredential, actor.user_id)
        if cred is None or cred.enabled_at is None:
            raise Conflict("two-step sign-in is not on")
        if not self._check(cred, code):
            raise InvalidInput("the code is not right", field="code")
        self.s.delete(cred)

    def verify(self, user: User, code: str) -> bool:
        """Check a sign-in code (each step's code works once)."""
        cred = self.s.get(TotpCredential, user.id)
        return cred is not None and cred.enabled_at is not None and self._check(cred, code)

    def code_now(self, user_id: str, at: datetime | None = None) -> str:
        """The current code (for tests and the demo only)."""
        cred = self.s.get(TotpCredential, user_id)
        if cred is None:
            raise Conflict("no TOTP credential")
        return self._totp(user_id, cred.salt).at(at or self.clock())

    def _check(self, cred: TotpCredential, code: str) -> bool:
        code = (code or "").replace(" ", "").strip()
        if len(code) != _DIGITS or not code.isdigit():
            return False
        totp = self._totp(cred.user_id, cred.salt)
        now = totp.timecode(self.clock())
        for counter in (now - 1, now, now + 1):
            if cred.last_counter is not None and counter <= cred.last_counter:
                continue
            if hmac.compare_digest(totp.generate_otp(counter), code):
                cred.last_counter = counter
                return True
        return False
