"""Client commands for encryption: ``encrypt`` (entirely on this machine, with
the recipients' certificates from the directory) and ``decrypt`` (only each
file's wrapped content key goes to the server, approved with the approval
password)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from sealkeeper.cli._errors import handle_errors
from sealkeeper.cli.client_cmds import _approval_password, client, console
from sealkeeper.client.crypt import decrypted_name, encrypted_name
from sealkeeper.errors import InvalidInput


def _outputs(files: list[Path], output: Path | None,
             name: Callable[[Path, bytes], Path]) -> list[Path] | None:
    """None (default names next to the inputs), the one output file, or the
    default names inside an output directory."""
    if output is None:
        return None
    if len(files) == 1 and not output.is_dir():
        return [output]
    if output.exists() and not output.is_dir():
        raise InvalidInput("with several files, --output must be a directory", field="output")
    output.mkdir(parents=True, exist_ok=True)
    outs = []
    for f in files:
        try:
            with f.open("rb") as stream:
                head = stream.read(1024)
                stream.seek(max(0, f.stat().st_size - 2048))
                tail = stream.read(2048)
        except OSError as e:
            raise InvalidInput(f"{f.name} cannot be read: {e.strerror}", field="file") from e
        outs.append(output / name(f, head + tail).name)  # enough to tell a PDF
    return outs


@handle_errors
def encrypt(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="PDFs get PDF certificate security; other "
                                            "files become CMS <file>.p7m."),
    to: list[str] = typer.Option([], "--to", help="Recipient employee's email (repeat)."),
    to_org: list[str] = typer.Option([], "--to-org",
                                     help="Recipient organization's id (repeat)."),
    output: Path = typer.Option(None, "-o", "--output",
                                help="Output file (one input) or directory (many)."),
) -> None:
    """Encrypt files for employees and organizations, here: nothing but the
    recipients' names goes to the server."""
    outs = _outputs(files, output, encrypted_name)
    with client() as sk:
        done = sk.encrypt_files(files, to=to, to_orgs=to_org, outputs=outs)
    for path in done:
        console.print(f"encrypted {path}")


@handle_errors
def decrypt(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="Encrypted PDFs or CMS files (DER, PEM, S/MIME)."),
    output: Path = typer.Option(None, "-o", "--output",
                                help="Output file (one input) or directory (many)."),
    password_stdin: bool = typer.Option(False, help="Read the approval password from stdin."),
) -> None:
    """Decrypt files encrypted for you (or for your organization, with a grant).
    Each file's content key is unwrapped by the server after the approval
    password, and logged; the file itself stays here."""
    outs = _outputs(files, output, decrypted_name)
    password = _approval_password(password_stdin)
    with client() as sk:
        done = sk.decrypt_files(files, approval_password=password, outputs=outs)
    for path in done:
        console.print(f"decrypted {path}")
