"""Running ``sealkeeper verify`` in the tests: in-process through Typer's
CliRunner (the command mounted on a Typer app of its own), or as a real
process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from sealkeeper.cli.verify import verify

_app = typer.Typer()
_app.command()(verify)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data

    def assert_clean_error(self) -> None:
        """Exit 2, one line on stderr, nothing on stdout, no traceback."""
        assert self.exit_code == 2, (self.exit_code, self.stdout, self.stderr)
        assert self.exception is None or isinstance(self.exception, SystemExit), \
            self.exception
        assert "Traceback" not in self.stdout + self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        assert self.stdout == ""


# hermetic: no saved login, no server or token from the environment
_ENV: dict[str, str | None] = {"SEALKEEPER_CONFIG": "/nonexistent/sealkeeper/client.json",
                               "SEALKEEPER_URL": None, "SEALKEEPER_TOKEN": None,
                               "SEALKEEPER_LOG_KEY": None}


def run_verify(*args: str | Path, env: dict[str, str | None] | None = None) -> Outcome:
    result = CliRunner().invoke(_app, [str(a) for a in args], env={**_ENV, **(env or {})})
    return Outcome(result.exit_code, result.stdout, result.stderr, result.exception)


_MAIN = ("import typer; from sealkeeper.cli.verify import verify; "
         "typer.run(verify)")


def run_verify_process(*args: str | Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env["SEALKEEPER_CONFIG"] = str(_ENV["SEALKEEPER_CONFIG"])
    result = subprocess.run([sys.executable, "-c", _MAIN, *map(str, args)],
                            capture_output=True, text=True, timeout=120, check=False,
                            env=env)
    return Outcome(result.returncode, result.stdout, result.stderr)
