"""Client commands (run on the user's machine): login, seals, sign.

The server URL and token come from ``sealkeeper login`` (a config file,
mode 0600) or from SEALKEEPER_URL / SEALKEEPER_TOKEN. The approval password
is prompted, or read from SEALKEEPER_APPROVAL_PASSWORD, or from stdin with
--password-stdin.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from sealkeeper.cli._errors import handle_errors
from sealkeeper.errors import ConfigurationError, InvalidInput

if TYPE_CHECKING:
    from sealkeeper.client.api import SealkeeperClient

console = Console()
DEFAULT_STAMP = 120.0


def config_path() -> Path:
    if env := os.environ.get("SEALKEEPER_CONFIG"):
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "sealkeeper" / "client.json"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str

    @classmethod
    def load(cls) -> ClientConfig:
        data: dict[str, str] = {}
        path = config_path()
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except ValueError as e:
                raise ConfigurationError(f"{path} is not valid JSON") from e
        url = os.environ.get("SEALKEEPER_URL") or data.get("url")
        token = os.environ.get("SEALKEEPER_TOKEN") or data.get("token")
        if not url or not token:
            raise ConfigurationError("not logged in: run 'sealkeeper login --server URL' or set "
                                     "SEALKEEPER_URL and SEALKEEPER_TOKEN")
        return cls(url, token)

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"url": self.url, "token": self.token}, f)
        return path


def client() -> SealkeeperClient:
    from sealkeeper.client.api import SealkeeperClient

    cfg = ClientConfig.load()
    return SealkeeperClient(cfg.url, cfg.token)


@handle_errors
def login(
    server: str = typer.Option(..., "--server", help="The sealkeeper server URL."),
    email: str = typer.Option(None, help="Sign in with email and password (prompted)."),
    token: str = typer.Option(None, envvar="SEALKEEPER_TOKEN",
                              help="Or store an existing API token."),
) -> None:
    """Store the server URL and an API token for the client commands."""
    from sealkeeper.client.api import SealkeeperClient

    if token is None:
        if email is None:
            raise InvalidInput("give --email (to sign in) or --token", field="email")
        password = typer.prompt("Account password", hide_input=True)
        token = SealkeeperClient.login(server, email, password)
    with SealkeeperClient(server, token) as sk:
        me = sk.me()
    path = ClientConfig(server, token).save()
    console.print(f"logged in as {me['user']['email']}; saved to {path}")


@handle_errors
def seals(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the seals you may use, with their SealIDs."""
    with client() as sk:
        rows = sk.my_seals()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("type", "name", "status", "access")
    table.add_column("SealID", no_wrap=True)
    for s in rows:
        table.add_row(s["type_label"], s["name"], s["status"], s["access"], s["seal_id"])
    console.print(table)


def _approval_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().strip()
    if env := os.environ.get("SEALKEEPER_APPROVAL_PASSWORD"):
        return env
    return str(typer.prompt("Signing approval password", hide_input=True))


def _parse_at(at: str | None) -> tuple[float, float] | None:
    if at is None:
        return None
    try:
        x, y = (float(v) for v in at.split(","))
    except ValueError:
        raise InvalidInput("--at takes X,Y in points, e.g. 400,80", field="at") from None
    return x, y


@handle_errors
def sign(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="PDFs get PAdES; other files a detached .p7s."),
    seal: str = typer.Option(..., "--seal", help="The SealID to sign with."),
    level: str = typer.Option("B-B", help="PAdES level: B-B, B-T, B-LT or B-LTA."),
    page: int = typer.Option(1, min=1, help="Page of the visible stamp (1 = first)."),
    at: str = typer.Option(None, help="Lower-left corner X,Y of the stamp, in points."),
    size: float = typer.Option(DEFAULT_STAMP, help="Stamp size in points."),
    field: str = typer.Option(None, help="Sign into this existing signature field."),
    reason: str = typer.Option(None, help="Reason shown in the signature."),
    location: str = typer.Option(None, help="Location shown in the signature."),
    output: Path = typer.Option(None, "-o", "--output",
                                help="Output file (one input) or directory (many)."),
    password_stdin: bool = typer.Option(False, help="Read the approval password from stdin."),
) -> None:
    """Sign files: the documents stay here, only their digests go to the server.
    One approval covers the whole batch."""
    pdfs = [f for f in files if f.suffix.lower() == ".pdf"]
    others = [f for f in files if f.suffix.lower() != ".pdf"]
    xy = _parse_at(at)
    box = (xy[0], xy[1], xy[0] + size, xy[1] + size) if xy else None
    password = _approval_password(password_stdin)

    def out_for(src: Path, suffix: str) -> Path:
        # contract.pdf -> contract-signed.pdf; notes.txt -> notes.txt.p7s
        name = src.stem + suffix if suffix == "-signed.pdf" else src.name + suffix
        if output is None:
            return src.with_name(name)
        if len(files) == 1 and not output.is_dir():
            return output
        output.mkdir(parents=True, exist_ok=True)
        return output / name

    with client() as sk, Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("signing", total=2 * len(files))

        def step(stage: str, name: str) -> None:
            bar.update(task, advance=1, description=f"{stage} {name}")

        if pdfs:
            outs = [out_for(p, "-signed.pdf") for p in pdfs]
            sk.sign_pdfs(pdfs, seal, approval_password=password, level=level, outputs=outs,
                         field_name=field, page=page - 1, box=box, reason=reason,
                         location=location, progress=step)
            for o in outs:
                console.print(f"signed {o}")
        if others:
            outs = [out_for(p, ".p7s") for p in others]
            sk.sign_files(others, seal, approval_password=password,
                          timestamp=level != "B-B", outputs=outs, progress=step)
            for o in outs:
                console.print(f"signed {o}")
