"""Operator commands, run on the server: accounts, organizations, domains, quota."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from sealkeeper.cli._errors import handle_errors
from sealkeeper.cli.context import open_runtime, operator_actor, unit_of_work
from sealkeeper.errors import InvalidInput

app = typer.Typer(no_args_is_help=True, help="Operator tasks (run on the server).")
orgs_app = typer.Typer(no_args_is_help=True, help="Organization validation.")
app.add_typer(orgs_app, name="orgs")
console = Console()

AsOption = typer.Option(None, "--as", help="Operator account to act as (default: the first).")


@app.command("create")
@handle_errors
def create_operator(
    email: str = typer.Argument(..., help="The operator's email."),
    name: str = typer.Option("Operator", help="Display name."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="SEALKEEPER_OPERATOR_PASSWORD"),
) -> None:
    """Create an operator account and print one API token for it (shown once)."""
    rt = open_runtime()
    from sealkeeper.migrations import upgrade

    upgrade(rt.engine)
    with unit_of_work(rt) as uow:
        user = uow.accounts.signup(email, password, name, is_operator=True)
        _, token = uow.accounts.create_token(uow.accounts.actor_for(user), "operator")
    console.print(f"operator {user.email} created.\nAPI token (shown once): {token}",
                  highlight=False)


@orgs_app.command("list")
@handle_errors
def list_orgs(status: str = typer.Option(None, help="pending, validated or rejected"),
              as_: str = AsOption) -> None:
    """List organizations."""
    from sealkeeper.orgs.models import OrgStatus

    st = None
    if status is not None:
        try:
            st = OrgStatus(status)
        except ValueError:
            raise InvalidInput("status must be pending, validated or rejected") from None
    rt = open_runtime()
    with unit_of_work(rt) as uow:
        rows = uow.orgs.search(operator_actor(uow, as_), st)
        table = Table("id", "legal name", "registration", "status", "quota")
        for o in rows:
            table.add_row(o.id, o.legal_name, o.registration_number, o.status,
                          str(o.quota_balance))
    console.print(table)


@orgs_app.command("approve")
@handle_errors
def approve(org_id: str, as_: str = AsOption) -> None:
    """Approve an organization: it is validated and gets its six seals."""
    rt = open_runtime()
    with unit_of_work(rt) as uow:
        org = uow.orgs.approve(operator_actor(uow, as_), org_id)
    console.print(f"{org.legal_name}: validated")


@orgs_app.command("reject")
@handle_errors
def reject(org_id: str, reason: str = typer.Option(..., help="Told to the applicant."),
           as_: str = AsOption) -> None:
    """Reject an organization's application with a reason."""
    rt = open_runtime()
    with unit_of_work(rt) as uow:
        org = uow.orgs.reject(operator_actor(uow, as_), org_id, reason)
    console.print(f"{org.legal_name}: rejected")


@app.command("validate-domain")
@handle_errors
def validate_domain(org_id: str, domain: str, as_: str = AsOption) -> None:
    """Mark an organization's email domain validated."""
    rt = open_runtime()
    with unit_of_work(rt) as uow:
        d = uow.orgs.mark_domain_validated(operator_actor(uow, as_), org_id, domain)
    console.print(f"{d.name}: validated")


@app.command("credit")
@handle_errors
def credit(org_id: str, units: int = typer.Argument(..., help="Signatures to credit."),
           reference: str = typer.Option(None, help="Order or invoice reference."),
           as_: str = AsOption) -> None:
    """Credit API quota to an organization."""
    rt = open_runtime()
    with unit_of_work(rt) as uow:
        uow.quota.credit(operator_actor(uow, as_), org_id, units, reference)
        balance = uow.quota.balance(operator_actor(uow, as_), org_id)
    console.print(f"credited {units}; balance {balance}")
