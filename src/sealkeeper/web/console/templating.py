"""The Jinja2 environment of the console: templates from this package,
autoescape on for every template, undefined names are errors."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d")


def _short_hash(value: str | None, n: int = 16) -> str:
    if not value:
        return "—"
    return value if len(value) <= n else value[:n] + "…"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["day"] = _day
    env.filters["short_hash"] = _short_hash
    return env


def render(name: str, context: dict[str, object]) -> str:
    return environment().get_template(name).render(context)
