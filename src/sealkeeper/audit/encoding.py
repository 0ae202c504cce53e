"""The canonical encoding of a usage-log entry (the bytes a Merkle leaf hashes).

Scope: turning an entry's fields into deterministic bytes and back, and the
rules the fields obey. No database. ``docs/merkle.md`` ("Entry encoding")
describes the format for independent verifiers.

An entry is one JSON object, encoded as UTF-8 with the keys sorted by code
point, no whitespace, non-ASCII characters written as themselves, and only
``"`` and ``\\`` escaped in strings (control characters are refused, so no other
escape can occur). Values are strings, integers in the interoperable range
+-(2**53 - 1), or booleans; never floats, nulls, arrays or nested objects.
Absent fields are left out, not written as null. Every entry carries:

``v``     the encoding version, 1
``org``   the organization id
``seq``   the 0-based index of the entry in the organization's log
``kind``  what happened (:class:`EntryKind`)
``time``  when it was logged, RFC 3339 UTC with microseconds: 2026-01-02T03:04:05.000006Z

followed by the kind's fields (:data:`FIELDS`, and free ``details`` keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sealkeeper.errors import InvalidInput

__all__ = [
    "ENTRY_VERSION",
    "FIELDS",
    "MAX_ENTRY_BYTES",
    "REQUIRED",
    "EntryEncoder",
    "EntryKind",
    "Scalar",
    "decode_entry",
    "encode_entry",
    "entry_details",
    "format_time",
    "parse_time",
]

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 16 * 1024
MAX_SAFE_INT = 2**53 - 1

Scalar = str | int | bool


class EntryKind(StrEnum):
    """What a log entry records."""

    SIGNATURE = "signature"                    # a seal or personal signature was used
    GRANT = "grant"                            # an employee got the right to use a seal
    WITHDRAWAL = "withdrawal"                  # that right was withdrawn
    SEAL_STATUS = "seal_status"                # a seal was disabled, enabled or revoked
    REKEY = "rekey"                            # a seal got a new key pair / certificate
    APPROVAL_PASSWORD_RESET = "approval_password_reset"
    DECRYPTION = "decryption"                  # a content key was unwrapped for a user


# The indexed fields every kind may carry, with their maximum length; they are
# also columns of ``log_entries``, so the log can be filtered on them.
FIELDS: dict[str, int] = {
    "seal_id": 32,
    "seal_name": 300,
    "seal_type": 32,
    "user_id": 32,
    "user_email": 320,
    "file_name": 1024,
    "file_digest": 128,
    "digest_algorithm": 16,
    "api": 16,
    "approval_id": 64,
}

REQUIRED: dict[EntryKind, tuple[str, ...]] = {
    EntryKind.SIGNATURE: ("seal_id", "seal_name", "seal_type", "user_id", "user_email",
                          "file_name", "file_digest", "digest_algorithm", "api"),
    EntryKind.GRANT: ("seal_id", "seal_name", "seal_type", "user_id", "user_email"),
    EntryKind.WITHDRAWAL: ("seal_id", "seal_name", "seal_type", "user_id", "user_email"),
    EntryKind.SEAL_STATUS: ("seal_id", "seal_name", "seal_type"),
    EntryKind.REKEY: ("seal_id", "seal_name", "seal_type"),
    EntryKind.APPROVAL_PASSWORD_RESET: ("user_id", "user_email"),
    EntryKind.DECRYPTION: ("user_id", "user_email"),
}

_HEADER = ("v", "org", "seq", "kind", "time")
_RESERVED = frozenset(_HEADER) | frozenset(FIELDS)
_DETAIL_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
MAX_DETAILS = 32
MAX_DETAIL_LEN = 2000


def format_time(t: datetime) -> str:
    """RFC 3339 UTC with exactly six fractional digits and 'Z'."""
    if t.tzinfo is None:
        raise InvalidInput("log times must be timezone-aware", field="time")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> datetime:
    """Inverse of :func:`format_time` (only the canonical form is accepted)."""
    if not _TIME.fullmatch(s):
        raise InvalidInput(f"not a canonical log time: {s!r}", field="time")
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def check_fields(kind: EntryKind, fields: Mapping[str, str | None],
                 details: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """Validate an entry's fields and details; returns the merged body fields."""
    out: dict[str, Scalar] = {}
    for name, text in fields.items():
        if name not in FIELDS:
            raise InvalidInput(f"unknown log field {name!r}", field=name)
        if text is None:
            continue
        out[name] = _check_str(name, text, FIELDS[name])
    for name in REQUIRED[kind]:
        if name not in out or out[name] == "":
            raise InvalidInput(f"a {kind.value} entry needs {name}", field=name)
    for name in ("seal_type", "digest_algorithm", "api"):
        token = out.get(name)
        if isinstance(token, str) and not _TOKEN.fullmatch(token):
            raise InvalidInput(f"{name} must be a lowercase token", field=name)
    digest = out.get("file_digest")
    if isinstance(digest, str) and not _HEX.fullmatch(digest):
        raise InvalidInput("file_digest must be lowercase hex", field="file_digest")
    if len(details) > MAX_DETAILS:
        raise InvalidInput(f"at most {MAX_DETAILS} detail fields", field="details")
    for key, value in details.items():
        if not isinstance(key, str) or not _DETAIL_KEY.fullmatch(key):
            raise InvalidInput(f"detail key {key!r} must match [a-z][a-z0-9_]{{0,31}}",
                               field="details")
        if key in _RESERVED:
            raise InvalidInput(f"detail key {key!r} is reserved", field="details")
        out[key] = _check_scalar(key, value)
    return out


def encode_entry(org_id: str, seq: int, kind: EntryKind, time: datetime,
                 body: Mapping[str, Scalar]) -> bytes:
    """The canonical bytes of one entry (``body`` from :func:`check_fields`)."""
    return EntryEncoder(org_id, time).encode(seq, kind, body)


class EntryEncoder:
    """Encodes the entries of one batch (one organization, one time) quickly."""

    __slots__ = ("_org", "_time")

    def __init__(self, org_id: str, time: datetime) -> None:
        self._org = _check_str("org", org_id, 64)
        self._time = format_time(time)

    def encode(self, seq: int, kind: EntryKind, body: Mapping[str, Scalar]) -> bytes:
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SAFE_INT:
            raise InvalidInput("seq must be a non-negative integer", field="seq")
        obj: dict[str, Any] = dict(body)
        obj["v"] = ENTRY_VERSION
        obj["org"] = self._org
        obj["seq"] = seq
        obj["kind"] = EntryKind(kind).value
        obj["time"] = self._time
        data = _dumps(obj)
        if len(data) > MAX_ENTRY_BYTES:
            raise InvalidInput(f"a log entry is at most {MAX_ENTRY_BYTES} bytes",
                               field="details")
        return data


def decode_entry(data: bytes) -> dict[str, Scalar]:
    """Parse entry bytes, checking that they are canonical version-1 JSON.

    Raises :class:`InvalidInput` for anything :func:`encode_entry` could not
    have produced.
    """
    if len(data) > MAX_ENTRY_BYTES:
        raise InvalidInput("log entry is too large", field="entry")
    try:
        obj = json.loads(data.decode("utf-8"), parse_float=_no_float,
                         parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidInput("log entry is not UTF-8 JSON", field="entry") from e
    if not isinstance(obj, dict):
        raise InvalidInput("log entry is not a JSON object", field="entry")
    if obj.get("v") != ENTRY_VERSION:
        raise InvalidInput("unsupported log entry version", field="entry")
    for key in _HEADER:
        if key not in obj:
            raise InvalidInput(f"log entry has no {key!r}", field="entry")
    try:
        EntryKind(obj["kind"])
    except ValueError as e:
        raise InvalidInput("log entry has an unknown kind", field="entry") from e
    if not isinstance(obj["time"], str):
        raise InvalidInput("log entry time is not a string", field="entry")
    parse_time(obj["time"])
    for key, value in obj.items():
        _check_scalar(key, value)
    if _dumps(obj) != data:
        raise InvalidInput("log entry is not in canonical form", field="entry")
    return obj


_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                        allow_nan=False)


def entry_details(data: bytes) -> dict[str, Scalar] | None:
    """The kind's extra fields of an entry (everything but the header and the
    indexed fields), or ``None`` if the bytes are not a canonical entry."""
    try:
        body = decode_entry(data)
    except InvalidInput:
        return None
    return {k: v for k, v in body.items() if k not in _RESERVED}


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return _JSON.encode(obj).encode("utf-8")


def _check_str(name: str, value: object, max_len: int, field: str | None = None) -> str:
    field = field or name
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=field)
    if len(value) > max_len:
        raise InvalidInput(f"{name} is at most {max_len} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidInput(f"{name} contains control characters", field=field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:  # lone surrogates
            raise InvalidInput(f"{name} is not valid Unicode text", field=field) from e
    return value


def _check_scalar(name: str, value: object) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise InvalidInput(f"{name} is outside the interoperable integer range",
                               field="details")
        return value
    if isinstance(value, str):
        return _check_str(name, value, MAX_DETAIL_LEN, "details")
    raise InvalidInput(f"{name} must be a string, an integer or a boolean", field="details")


def _no_float(value: str) -> Any:
    raise ValueError(f"non-integer number {value!r}")
