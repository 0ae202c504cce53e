"""The security log: refused attempts (wrong approval password, no grant, no
quota, a disabled seal...). Not part of the Merkle tree.

A refusal rolls back the request's transaction, so its security event is
written in a transaction of its own: collect it in a
:class:`PendingSecurityEvents` while the request runs, and write the
collection with :meth:`PendingSecurityEvents.write` *after* the request's
transaction has ended (committed or rolled back). Never write it while the
request's session still holds its transaction: on SQLite that transaction
holds the database's write lock and the independent write would wait for it.

Messages are shown to administrators: they must never contain secrets
(passwords, tokens, keys), only what was refused and why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from sealkeeper.audit.models import SECURITY_EVENTS
from sealkeeper.clock import Clock
from sealkeeper.db import new_id

__all__ = ["PendingSecurityEvents", "SecurityEventDraft", "record_security_event",
           "record_security_event_independently"]

log = logging.getLogger(__name__)

_TOKEN_BAD = re.compile(r"[^a-z0-9_.:-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class SecurityEventDraft:
    """A refused attempt. ``action`` is what was tried ("sign", "authorize",
    "decrypt"...), ``reason`` the stable error code ("approval_refused",
    "no_grant", "quota_exhausted"...)."""

    action: str
    reason: str
    message: str
    organization_id: str | None = None
    user_id: str | None = None
    seal_id: str | None = None
    api: str | None = None
    remote_addr: str | None = None


def _token(value: str, max_len: int) -> str:
    return _TOKEN_BAD.sub("_", value.strip().lower())[:max_len] or "unknown"


def _text(value: str | None, max_len: int) -> str | None:
    # A security event is recorded whatever the client sent: clean, never refuse.
    if value is None:
        return None
    cleaned = _CONTROL.sub(" ", value.encode("utf-8", "replace").decode("utf-8"))
    return cleaned[:max_len]


def _row(draft: SecurityEventDraft, clock: Clock) -> dict[str, object]:
    return {
        "id": new_id(), "created_at": clock(),
        "organization_id": _text(draft.organization_id, 32),
        "user_id": _text(draft.user_id, 32), "seal_id": _text(draft.seal_id, 32),
        "action": _token(draft.action, 64), "reason": _token(draft.reason, 64),
        "message": _text(draft.message, 1000) or "",
        "api": _text(draft.api, 16), "remote_addr": _text(draft.remote_addr, 64),
    }


def record_security_event(session: Session, clock: Clock,
                          draft: SecurityEventDraft) -> None:
    """Add the event to the caller's transaction (lost if it rolls back)."""
    session.execute(insert(SECURITY_EVENTS), [_row(draft, clock)])


def record_security_event_independently(session_factory: sessionmaker[Session], clock: Clock,
                                        drafts: SecurityEventDraft
                                        | Iterable[SecurityEventDraft]) -> int:
    """Write events in a transaction of their own and commit it; returns how many.

    Call it when no other transaction of this thread is open on the database
    (see the module docstring).
    """
    items = [drafts] if isinstance(drafts, SecurityEventDraft) else list(drafts)
    if not items:
        return 0
    with session_factory() as session:
        session.execute(insert(SECURITY_EVENTS), [_row(d, clock) for d in items])
        session.commit()
    return len(items)


class PendingSecurityEvents:
    """Security events collected during a request, written after it ends."""

    def __init__(self) -> None:
        self._items: list[SecurityEventDraft] = []

    def add(self, draft: SecurityEventDraft) -> None:
        self._items.append(draft)

    def __len__(self) -> int:
        return len(self._items)

    def drain(self) -> list[SecurityEventDraft]:
        items, self._items = self._items, []
        return items

    def write(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        """Write and forget the collected events. A failure is logged, not raised:
        the caller is usually already answering with the refusal."""
        items = self.drain()
        if not items:
            return
        try:
            record_security_event_independently(session_factory, clock, items)
        except Exception:
            log.exception("could not record %d security event(s)", len(items))
