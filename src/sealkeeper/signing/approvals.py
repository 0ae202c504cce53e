"""The signing approval password and approvals.

The password is exactly 4 digits. Only 10,000 values exist, so a slow hash
alone protects little if the database leaks: it is stored as argon2id over an
HMAC keyed with a pepper that lives in the key store (an HSM, or the master
key), never in the database.

Five consecutive wrong passwords lock signing until the password is reset.
Checks of one user's password take turns (a row lock held while argon2 runs,
committed at once), so concurrent guesses can never evaluate more passwords
than the lock allows, and concurrent right answers never count as failures.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import User, UserStatus
from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.authz import Actor, require_account_admin
from sealkeeper.clock import Clock
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyStore
from sealkeeper.crypto.secrets import PasswordHashing, token_hash
from sealkeeper.errors import (
    ApprovalRefused,
    Conflict,
    InvalidInput,
    NotFound,
    SigningLocked,
    Unauthenticated,
)
from sealkeeper.seals.models import Seal
from sealkeeper.signing.models import Approval, ApprovalCredential

T = TypeVar("T")


class Durable(Protocol):
    """Runs a function in a transaction of its own, committed before it returns."""

    def __call__(self, fn: Callable[[Session], T]) -> T: ...

MAX_FAILURES = 5
FRESH_LOGIN = timedelta(minutes=5)
APPROVAL_PREFIX = "ska_"
_FOUR_DIGITS = re.compile(r"^[0-9]{4}$")


def check_format(password: str, field: str = "approval_password") -> str:
    if not isinstance(password, str) or not _FOUR_DIGITS.match(password):
        raise InvalidInput("the signing approval password is exactly 4 digits", field=field)
    return password


class ApprovalService:
    def __init__(self, session: Session, clock: Clock, keystore: KeyStore,
                 passwords: PasswordHashing, durable: Durable,
                 approval_ttl: timedelta,
                 log: Callable[[str, EntryDraft], object] | None = None) -> None:
        self.s = session
        self.clock = clock
        self.keystore = keystore
        self.passwords = passwords
        self.durable = durable
        self.ttl = approval_ttl
        self._log = log

    # -- the password --------------------------------------------------------

    def _peppered(self, user_id: str, password: str) -> str:
        return self.keystore.pepper_mac(f"approval-password\x00{user_id}\x00{password}"
                                        .encode()).hex()

    def _hash(self, user_id: str, password: str) -> str:
        return self.passwords.hash(self._peppered(user_id, password))

    def credential(self, user_id: str) -> ApprovalCredential | None:
        return self.s.get(ApprovalCredential, user_id)

    def status(self, actor: Actor) -> dict[str, object]:
        cred = self.credential(actor.user_id)
        return {"set": cred is not None and cred.password_hash is not None,
                "locked": cred is not None and cred.failed_count >= MAX_FAILURES,
                "failed_attempts": cred.failed_count if cred else 0,
                "remaining_attempts": MAX_FAILURES - (cred.failed_count if cred else 0)}

    def set_password(self, actor: Actor, password: str) -> None:
        """First use: set the approval password (refused if one is set already)."""
        check_format(password)
        cred = self.credential(actor.user_id)
        if cred is not None and cred.password_hash is not None:
            raise Conflict("the approval password is already set; reset it to change it")
        now = self.clock()
        if cred is None:
            cred = ApprovalCredential(user_id=actor.user_id, updated_at=now)
            self.s.add(cred)
        cred.password_hash = self._hash(actor.user_id, password)
        cred.failed_count, cred.locked_at, cred.set_at, cred.updated_at = 0, None, now, now
        self.s.flush()

    def reset_password(self, actor: Actor, new_password: str, *,
                       account_password: str | None) -> None:
        """Reset after a fresh login: the account password in this request, or a
        sign-in within the last five minutes. Voids every outstanding approval."""
        check_format(new_password)
        user = self.s.get(User, actor.user_id)
        assert user is not None
        fresh = user.last_login_at is not None and \
            self.clock() - user.last_login_at <= FRESH_LOGIN
        if account_password is not None:
            if user.password_hash is None or not self.passwords.verify(user.password_hash,
                                                                       account_password):
                raise Unauthenticated("wrong account password")
        elif not fresh:
            raise Unauthenticated("resetting the approval password needs a fresh login: "
                                  "give your account password", field="account_password")
        self._replace(actor.user_id, self._hash(actor.user_id, new_password))
        self._record_reset(user, by=user.id)

    def admin_reset(self, actor: Actor, org_id: str, user_id: str) -> User:
        """The account administrator clears an employee's approval password; the
        employee sets a new one on next use."""
        require_account_admin(actor, org_id)
        user = self.s.get(User, user_id) if isinstance(user_id, str) else None
        if user is None or user.organization_id != org_id:
            raise NotFound("employee not found")
        if user.status == UserStatus.DELETED:
            raise Conflict("this employee is deleted")
        self._replace(user.id, None)
        self._record_reset(user, by=actor.user_id)
        return user

    def _record_reset(self, user: User, by: str) -> None:
        if self._log is not None and user.organization_id is not None:
            self._log(user.organization_id, EntryDraft.approval_password_reset(
                user_id=user.id, user_email=user.email, by_user_id=by))

    def overwrite(self, user_id: str, password: str) -> None:
        """Set a user's approval password without the user (demo seeding only)."""
        self._replace(user_id, self._hash(user_id, check_format(password)))

    def _replace(self, user_id: str, new_hash: str | None) -> None:
        now = self.clock()
        cred = self.credential(user_id)
        if cred is None:
            cred = ApprovalCredential(user_id=user_id, updated_at=now)
            self.s.add(cred)
        cred.password_hash = new_hash
        cred.failed_count, cred.locked_at, cred.updated_at = 0, None, now
        cred.set_at = now if new_hash else None
        self.s.execute(update(Approval).where(Approval.user_id == user_id,
                                              Approval.used_at.is_(None),
                                              Approval.voided_at.is_(None))
                       .values(voided_at=now))
        self.s.flush()

    def verify(self, user_id: str, password: str) -> None:
        """Check the approval password, counting failures durably (even though the
        request that carries a wrong password fails and rolls back)."""
        check_format(password)
        cred = self.credential(user_id)
        if cred is None or cred.password_hash is None:
            raise Conflict("set your signing approval password first",
                           field="approval_password")
        now = self.clock()
        peppered = self._peppered(user_id, password)

        def check(s: Session) -> int | None:
            """None when locked (nothing evaluated), else the failures after this try."""
            # The row lock (PostgreSQL) / IMMEDIATE transaction (SQLite) makes
            # concurrent checks of one user's password take turns, each seeing
            # the count the previous one committed.
            row = s.scalar(select(ApprovalCredential)
                           .where(ApprovalCredential.user_id == user_id)
                           .with_for_update()
                           .execution_options(populate_existing=True))
            if row is None or row.password_hash is None or row.failed_count >= MAX_FAILURES:
                return None
            ok = self.passwords.verify(row.password_hash, peppered)
            row.failed_count = 0 if ok else row.failed_count + 1
            row.locked_at = now if row.failed_count >= MAX_FAILURES else None
            row.updated_at = now
            return row.failed_count

        failures = self.durable(check)
        if failures is None:
            raise SigningLocked("signing is locked after too many wrong approval passwords; "
                                "reset your approval password")
        if failures == 0:
            return
        left = MAX_FAILURES - failures
        raise ApprovalRefused(
            "wrong signing approval password" +
            (f" ({left} attempt{'s' if left != 1 else ''} left)" if left
             else "; signing is now locked until you reset it"))

    # -- approvals -----------------------------------------------------------

    def authorize(self, actor: Actor, seal: Seal, hashes: Sequence[Hashed],
                  password: str) -> tuple[Approval, str]:
        """Turn the password into a short-lived, single-use approval for exactly
        ``hashes`` with ``seal``. Returns the row and the approval token (once)."""
        _check_hashes(hashes)
        self.verify(actor.user_id, password)
        token = APPROVAL_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        row = Approval(id=secrets.token_hex(16), token_hash=token_hash(token),
                       user_id=actor.user_id, seal_pk=seal.id,
                       digest_algorithm=hashes[0].algorithm.value,
                       hashes=[h.digest.hex() for h in hashes], count=len(hashes),
                       created_at=now, expires_at=now + self.ttl)
        self.s.add(row)
        self.s.flush()
        return row, token

    def extend(self, actor: Actor, token: str) -> Approval:
        """Give an unused approval a fresh lifetime (CSC extendTransaction)."""
        row = self._live(actor, token)
        row.expires_at = self.clock() + self.ttl
        return row

    def _live(self, actor: Actor, token: str) -> Approval:
        if not isinstance(token, str) or not token.startswith(APPROVAL_PREFIX) \
                or len(token) > 100:
            raise ApprovalRefused("invalid approval")
        row = self.s.scalar(select(Approval).where(Approval.token_hash == token_hash(token)))
        if row is None or row.user_id != actor.user_id:
            raise ApprovalRefused("invalid approval")
        if row.used_at is not None:
            raise ApprovalRefused("this approval was already used")
        if row.voided_at is not None:
            raise ApprovalRefused("this approval was voided by a password reset")
        if row.expires_at <= self.clock():
            raise ApprovalRefused("this approval has expired")
        return row

    def consume(self, actor: Actor, seal: Seal, token: str,
                hashes: Sequence[Hashed]) -> Approval:
        """Use an approval once, for exactly the hashes it approved."""
        _check_hashes(hashes)
        row = self._live(actor, token)
        if row.seal_pk != seal.id:
            raise ApprovalRefused("this approval is for another seal")
        if row.digest_algorithm != hashes[0].algorithm.value or row.count != len(hashes) \
                or sorted(row.hashes) != sorted(h.digest.hex() for h in hashes):
            raise ApprovalRefused("this approval does not cover exactly these hashes")
        now = self.clock()
        done = self.s.execute(update(Approval).where(Approval.id == row.id,
                                                     Approval.used_at.is_(None),
                                                     Approval.voided_at.is_(None))
                              .values(used_at=now))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise ApprovalRefused("this approval was already used")
        return row


def _check_hashes(hashes: Sequence[Hashed]) -> None:
    if not hashes:
        raise InvalidInput("give at least one hash", field="hashes")
    if len({h.algorithm for h in hashes}) != 1:
        raise InvalidInput("all hashes of one approval use the same digest algorithm",
                           field="hashes")


def expires_in(row: Approval, now: datetime) -> int:
    return max(0, int((row.expires_at - now).total_seconds()))
