"""Checks of user-supplied values shared by every service: emails, domains,
names. Each raises :class:`InvalidInput` naming the field."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from sealkeeper.errors import InvalidInput

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")


def normalize_email(value: str, field: str = "email") -> str:
    if not isinstance(value, str) or len(value) > 320:
        raise InvalidInput("not a valid email address", field=field)
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as e:
        raise InvalidInput(f"not a valid email address: {e}", field=field) from e
    return f"{result.local_part}@{result.domain.lower()}"


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[1].lower()


def normalize_domain(value: str, field: str = "domain") -> str:
    name = value.strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise InvalidInput(f"not a valid domain name: {value!r}", field=field) from e
    if not _DOMAIN_RE.match(name):
        raise InvalidInput(f"not a valid domain name: {value!r}", field=field)
    return name


def require_text(value: str, field: str, *, max_len: int = 300, min_len: int = 1) -> str:
    text = value.strip()
    if not (min_len <= len(text) <= max_len):
        raise InvalidInput(f"{field} must be {min_len} to {max_len} characters", field=field)
    if any(ord(c) < 32 for c in text):
        raise InvalidInput(f"{field} contains control characters", field=field)
    return text


def require_password(value: str, field: str = "password") -> str:
    if not (10 <= len(value) <= 200):
        raise InvalidInput("a password must be 10 to 200 characters", field=field)
    return value
