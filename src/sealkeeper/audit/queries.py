"""Filters and paging of the usage log and the security log.

Scope: validating what a reader asks for and turning it into SQL conditions.
Who may read what is decided in :mod:`sealkeeper.audit.service`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, func

from sealkeeper.audit.encoding import EntryKind
from sealkeeper.audit.models import LogEntry, SecurityEvent
from sealkeeper.errors import InvalidInput

__all__ = ["MAX_PAGE_SIZE", "LogFilter", "Order", "Page", "SecurityFilter", "check_paging"]

MAX_PAGE_SIZE = 500
T = TypeVar("T")
Order = Literal["asc", "desc"]

_HEX = re.compile(r"[0-9a-f]{2,128}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def check_paging(page: int, page_size: int) -> tuple[int, int]:
    """(offset, limit) for a 1-based page; refuses what would be unbounded."""
    if not isinstance(page, int) or page < 1:
        raise InvalidInput("page starts at 1", field="page")
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size must be 1 to {MAX_PAGE_SIZE}", field="page_size")
    if page > 10_000_000:
        raise InvalidInput("page is out of range", field="page")
    return (page - 1) * page_size, page_size


def _utc(t: datetime | None, name: str) -> datetime | None:
    """Naive times are read as UTC."""
    if t is None:
        return None
    if not isinstance(t, datetime):
        raise InvalidInput(f"{name} must be a date and time", field=name)
    try:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{name} is out of range", field=name) from None


def _short(value: str | None, name: str, max_len: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > max_len:
        raise InvalidInput(f"{name} is at most {max_len} characters", field=name)
    return value or None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What to select from the usage log; every criterion is optional."""

    seal_id: str | None = None
    user_id: str | None = None
    since: datetime | None = None      # inclusive
    until: datetime | None = None      # exclusive
    file_name: str | None = None       # case-insensitive substring
    file_digest: str | None = None     # hex, any case
    kind: EntryKind | str | None = None
    api: str | None = None

    def checked(self) -> LogFilter:
        """A normalized copy; raises :class:`InvalidInput` naming the bad field."""
        since, until = _utc(self.since, "since"), _utc(self.until, "until")
        if since is not None and until is not None and since > until:
            raise InvalidInput("since is after until", field="since")
        digest = _short(self.file_digest, "file_digest", 128)
        if digest is not None:
            digest = digest.lower()
            if not _HEX.fullmatch(digest) or len(digest) % 2:
                raise InvalidInput("file_digest must be a hexadecimal digest",
                                   field="file_digest")
        kind: EntryKind | None = None
        if self.kind is not None and self.kind != "":
            try:
                kind = EntryKind(self.kind)
            except ValueError as e:
                raise InvalidInput(f"unknown kind; one of: {', '.join(EntryKind)}",
                                   field="kind") from e
        return LogFilter(seal_id=_short(self.seal_id, "seal_id", 64),
                         user_id=_short(self.user_id, "user_id", 64), since=since, until=until,
                         file_name=_short(self.file_name, "file_name", 1024),
                         file_digest=digest, kind=kind, api=_short(self.api, "api", 16))

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions of a :meth:`checked` filter."""
        c = LogEntry
        out: list[ColumnElement[bool]] = []
        if self.seal_id is not None:
            out.append(c.seal_id == self.seal_id)
        if self.user_id is not None:
            out.append(c.user_id == self.user_id)
        if self.since is not None:
            out.append(c.created_at >= self.since)
        if self.until is not None:
            out.append(c.created_at < self.until)
        if self.file_name is not None:
            out.append(func.lower(c.file_name).contains(self.file_name.lower(),
                                                        autoescape=True))
        if self.file_digest is not None:
            out.append(c.file_digest == self.file_digest)
        if self.kind is not None:
            out.append(c.kind == EntryKind(self.kind))
        if self.api is not None:
            out.append(c.api == self.api)
        return out


@dataclass(frozen=True, slots=True)
class SecurityFilter:
    """What to select from the security log."""

    user_id: str | None = None
    seal_id: str | None = None
    action: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def checked(self) -> SecurityFilter:
        since, until = _utc(self.since, "since"), _utc(self.until, "until")
        if since is not None and until is not None and since > until:
            raise InvalidInput("since is after until", field="since")
        return SecurityFilter(user_id=_short(self.user_id, "user_id", 64),
                              seal_id=_short(self.seal_id, "seal_id", 64),
                              action=_short(self.action, "action", 64),
                              reason=_short(self.reason, "reason", 64), since=since, until=until)

    def conditions(self) -> list[ColumnElement[bool]]:
        c = SecurityEvent
        out: list[ColumnElement[bool]] = []
        if self.user_id is not None:
            out.append(c.user_id == self.user_id)
        if self.seal_id is not None:
            out.append(c.seal_id == self.seal_id)
        if self.action is not None:
            out.append(c.action == self.action)
        if self.reason is not None:
            out.append(c.reason == self.reason)
        if self.since is not None:
            out.append(c.created_at >= self.since)
        if self.until is not None:
            out.append(c.created_at < self.until)
        return out
