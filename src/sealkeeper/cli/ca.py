"""`sealkeeper ca`: the certificate authority of the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from sealkeeper.cli._errors import handle_errors
from sealkeeper.cli.context import open_runtime, unit_of_work

if TYPE_CHECKING:
    from sealkeeper.runtime import Runtime

app = typer.Typer(no_args_is_help=True, help="The certificate authority (root, issuing CA, "
                  "OCSP responder, time-stamping unit).")
console = Console()


def ensure_ca(rt: Runtime) -> bool:
    """Initialise the CA if needed; True when something was created."""
    with unit_of_work(rt) as uow:
        if uow.pki.is_initialised():
            return False
        uow.pki.init_ca()
        return True


@app.command("init")
@handle_errors
def init() -> None:
    """Create the root CA, issuing CA, OCSP responder, TSA and log keys (idempotent;
    names and lifetimes from SEALKEEPER_CA_* settings)."""
    from sealkeeper.migrations import upgrade

    rt = open_runtime()
    upgrade(rt.engine)
    created = ensure_ca(rt)
    console.print("CA initialised" if created else "CA already initialised")
    show_ca(rt)


@app.command("show")
@handle_errors
def show() -> None:
    """Show the CA certificates."""
    from sealkeeper.migrations import upgrade

    rt = open_runtime()
    upgrade(rt.engine)
    show_ca(rt)


def show_ca(rt: Runtime) -> None:
    from sealkeeper.pki.models import CaRole

    table = Table("role", "subject", "serial", "valid until")
    with unit_of_work(rt) as uow:
        for role in (CaRole.ROOT, CaRole.ISSUING, CaRole.OCSP, CaRole.TSA):
            cert = uow.pki.key(role).certificate
            table.add_row(role.value, cert.subject.rfc4514_string(),
                          format(cert.serial_number, "x")[:16] + "…",
                          cert.not_valid_after_utc.date().isoformat())
    console.print(table)
    console.print(f"download: {rt.settings.base_url}/pki/root.crt")
