"""The one place where errors become messages and exit codes for the CLI."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from sealkeeper.errors import SealkeeperError

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True)

#: Exit codes: 0 ok, 1 a negative answer (e.g. invalid signature), 2 an error.
EXIT_ERROR = 2


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SealkeeperError as e:
            field = f" ({e.field})" if e.field else ""
            err_console.print(f"[red]error[/red]{field}: {e.message}", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper
