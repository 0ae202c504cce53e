"""The usage-log page shared by e-seal management (the organization's log)
and My e-Seal (my own entries): filters from the query string, paging, CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi.responses import StreamingResponse

from sealkeeper.audit import LogFilter
from sealkeeper.audit.queries import SecurityFilter
from sealkeeper.errors import InvalidInput
from sealkeeper.web.console.context import Console

PAGE_SIZE = 25
FILTER_KEYS = ("seal_id", "user_id", "since", "until", "file_name", "file_digest", "kind")
SECURITY_KEYS = ("seal_id", "user_id", "reason", "since", "until")


def _day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput("use a date like 2026-01-31", field=field) from None


def query_filters(c: Console) -> tuple[LogFilter, dict[str, str]]:
    """The filter of the query string, and the raw values to show in the form."""
    q = c.request.query_params
    raw = {k: (q.get(k) or "").strip()[:200] for k in FILTER_KEYS}
    until = _day(raw["until"], "until")
    return LogFilter(seal_id=raw["seal_id"] or None, user_id=raw["user_id"] or None,
                     since=_day(raw["since"], "since"),
                     until=until + timedelta(days=1) if until else None,
                     file_name=raw["file_name"] or None,
                     file_digest=raw["file_digest"] or None,
                     kind=raw["kind"] or None).checked(), raw


def security_filters(c: Console) -> tuple[SecurityFilter, dict[str, str]]:
    """The security-log filter of the query string, and the raw values."""
    q = c.request.query_params
    raw = {k: (q.get(k) or "").strip()[:200] for k in SECURITY_KEYS}
    until = _day(raw["until"], "until")
    return SecurityFilter(seal_id=raw["seal_id"] or None, user_id=raw["user_id"] or None,
                          reason=raw["reason"] or None, since=_day(raw["since"], "since"),
                          until=until + timedelta(days=1) if until else None).checked(), raw


def page_number(c: Console) -> int:
    try:
        return max(1, min(int(c.request.query_params.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def query_string(raw: dict[str, str], **extra: object) -> str:
    items = {k: v for k, v in raw.items() if v}
    items.update({k: str(v) for k, v in extra.items()})
    return urlencode(items)


def csv_response(lines: Iterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
