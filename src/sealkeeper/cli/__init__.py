"""The ``sealkeeper`` command line (Typer)."""

from __future__ import annotations

from sealkeeper.cli.app import app


def main() -> None:
    app()
