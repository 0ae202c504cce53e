"""CSV export of the usage log and of the security log.

Scope: turning entries into RFC 4180 CSV lines, safe to open in a spreadsheet
(cells that a spreadsheet would run as a formula are prefixed with ``'``),
read in chunks so that exporting a large log holds no lock for long.

Entries are append-only, so reading ``seq < size`` (the size captured when
the export was authorized) in several short transactions gives exactly the
log as it was at that moment.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, sessionmaker

from sealkeeper.audit.encoding import entry_details, format_time
from sealkeeper.audit.models import LOG_ENTRIES, LogEntry, SecurityEvent
from sealkeeper.audit.queries import LogFilter, SecurityFilter

__all__ = ["CSV_HEADER", "SECURITY_CSV_HEADER", "CsvExport", "SecurityCsvExport", "csv_cell",
           "csv_line"]

CHUNK = 1000
CSV_HEADER = ["seq", "time", "kind", "seal_id", "seal_name", "seal_type", "user_id",
              "user_email", "file_name", "file_digest", "digest_algorithm", "api",
              "approval_id", "details", "leaf_hash"]
SECURITY_CSV_HEADER = ["time", "action", "reason", "user_id", "seal_id", "api", "remote_addr",
                       "message", "id"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: object) -> str:
    """A cell's text; one that starts like a formula gets a leading ``'``."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_line(cells: Sequence[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell(c) for c in cells])
    return buf.getvalue()


_ENTRIES = LOG_ENTRIES


def _row(e: Row[Any]) -> list[object]:
    details = entry_details(bytes(e.entry))
    if details is None:  # a damaged row is still exported, and flagged
        details_text = "(entry bytes are not canonical: run the log verifier)"
    else:
        details_text = json.dumps(details, sort_keys=True, ensure_ascii=False) if details else ""
    return [e.seq, format_time(e.created_at), e.kind.value, e.seal_id, e.seal_name,
            e.seal_type, e.user_id, e.user_email, e.file_name, e.file_digest,
            e.digest_algorithm, e.api, e.approval_id, details_text, bytes(e.leaf_hash).hex()]


@dataclass(frozen=True, slots=True)
class CsvExport:
    """An authorized export: the organization, the reader's restriction, the
    filter, and the tree size it covers."""

    organization_id: str
    only_user_id: str | None
    filter: LogFilter
    size: int

    def _chunk(self, session: Session, start: int) -> list[Row[Any]]:
        # Plain rows, not ORM objects: nothing accumulates in the session.
        q = (select(*_ENTRIES.c)
             .where(LogEntry.organization_id == self.organization_id,
                    LogEntry.seq >= start, LogEntry.seq < self.size,
                    *self.filter.conditions())
             .order_by(LogEntry.seq).limit(CHUNK))
        if self.only_user_id is not None:
            q = q.where(LogEntry.user_id == self.only_user_id)
        return list(session.execute(q))

    def lines(self, session: Session) -> Iterator[str]:
        """Header, then one line per entry, oldest first, read with ``session``."""
        yield csv_line(CSV_HEADER)
        start = 0
        while start < self.size:
            rows = self._chunk(session, start)
            yield from (csv_line(_row(e)) for e in rows)
            if len(rows) < CHUNK:
                break
            start = rows[-1].seq + 1

    def stream(self, session_factory: sessionmaker[Session]) -> Iterator[str]:
        """Like :meth:`lines`, each chunk read in its own short transaction (for
        responses streamed after the request's own session has closed)."""
        yield csv_line(CSV_HEADER)
        start = 0
        while start < self.size:
            with session_factory() as session:
                rows = self._chunk(session, start)
                text = "".join(csv_line(_row(e)) for e in rows)
                session.rollback()
            yield text
            if len(rows) < CHUNK:
                break
            start = rows[-1].seq + 1


@dataclass(frozen=True, slots=True)
class SecurityCsvExport:
    """An authorized export of an organization's refused attempts recorded up to
    ``until`` (when the export was authorized), oldest first."""

    organization_id: str
    filter: SecurityFilter
    until: datetime

    def _chunk(self, session: Session, after: tuple[datetime, str] | None,
               ) -> list[SecurityEvent]:
        c = SecurityEvent
        q = (select(c).where(c.organization_id == self.organization_id,
                             c.created_at <= self.until, *self.filter.conditions())
             .order_by(c.created_at, c.id).limit(CHUNK))
        if after is not None:  # keyset paging: (created_at, id) after the last row
            q = q.where((c.created_at > after[0])
                        | ((c.created_at == after[0]) & (c.id > after[1])))
        rows = list(session.scalars(q))
        session.expunge_all()
        return rows

    def stream(self, session_factory: sessionmaker[Session]) -> Iterator[str]:
        """Header, then one line per event, each chunk read in its own short
        transaction."""
        yield csv_line(SECURITY_CSV_HEADER)
        after: tuple[datetime, str] | None = None
        while True:
            with session_factory() as session:
                rows = self._chunk(session, after)
                session.rollback()
            yield "".join(csv_line([format_time(e.created_at), e.action, e.reason, e.user_id,
                                    e.seal_id, e.api, e.remote_addr, e.message, e.id])
                          for e in rows)
            if len(rows) < CHUNK:
                break
            after = (rows[-1].created_at, rows[-1].id)
