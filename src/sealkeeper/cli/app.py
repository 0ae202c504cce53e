"""The top-level Typer application and the server commands."""

from __future__ import annotations

import inspect
import logging
import os

import typer
from rich.console import Console

from sealkeeper.cli import ca, client_cmds, crypt_cmds, log_cmds, operator
from sealkeeper.cli._errors import handle_errors
from sealkeeper.cli.context import open_runtime
from sealkeeper.cli.verify import verify as verify_cmd

app = typer.Typer(no_args_is_help=True, help="sealkeeper: e-seals and cloud hash signing.",
                  pretty_exceptions_enable=False)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(operator.app, name="operator")
app.add_typer(ca.app, name="ca")
app.add_typer(log_cmds.app, name="log")
console = Console()
app.command("login")(client_cmds.login)
app.command("seals")(client_cmds.seals)
app.command("sign")(client_cmds.sign)
app.command("encrypt")(crypt_cmds.encrypt)
app.command("decrypt")(crypt_cmds.decrypt)
app.command("verify")(verify_cmd)


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Bring the database to the newest schema (Alembic)."""
    from sealkeeper.migrations import current, upgrade

    rt = open_runtime()
    upgrade(rt.engine)
    console.print(f"database at revision {current(rt.engine)}")


@app.command()
@handle_errors
def serve(
    demo: bool = typer.Option(False, "--demo", help="Seed the demo organization and write "
                              "demo.json into the data directory."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    access_log: bool = typer.Option(True, help="Log every request."),
) -> None:
    """Run the service (upgrades the database first)."""
    import uvicorn

    from sealkeeper import demo as demo_module
    from sealkeeper.cli.ca import ensure_ca
    from sealkeeper.migrations import upgrade

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rt = open_runtime()
    upgrade(rt.engine)
    ensure_ca(rt)
    if demo:
        data = demo_module.seed(rt)
        path = rt.settings.data_dir / "demo.json"
        console.print(f"demo organization {data['organization']['name']!r} ready; "
                      f"accounts and tokens in {path}")
    rt.dispose()
    os.environ.setdefault("SEALKEEPER_DATA_DIR", str(rt.settings.data_dir))
    options: dict[str, object] = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # uvicorn's 5 s default restarts workers that import slowly on a busy machine
        options["timeout_worker_healthcheck"] = 60
    uvicorn.run("sealkeeper.web.asgi:app_from_env", factory=True, host=host, port=port,
                workers=workers, access_log=access_log, log_level="info",
                **options)  # type: ignore[arg-type]
