"""Console routes: employees (account administrator): invite, see who has
validated, resend an invitation, clear an approval password, and delete
(after a confirmation saying that the certificate will be revoked)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response

from sealkeeper.accounts.models import User, UserStatus
from sealkeeper.authz import Actor
from sealkeeper.pki.models import SealCertificate
from sealkeeper.seals.models import Grant, Seal, SealType
from sealkeeper.web.console.context import Console, ConsoleDep, Errors, console_router
from sealkeeper.web.console.errors import form_errors

router = console_router()


@dataclass
class EmployeeRow:
    user: User
    personal: Seal | None
    certificate: SealCertificate | None
    grants: list[tuple[Seal, Grant]]
    is_account_admin: bool
    is_eseal_admin: bool


def _rows(c: Console, actor: Actor, org_id: str) -> list[EmployeeRow]:
    org = c.uow.orgs.get(actor, org_id)
    seals = c.uow.seals.organization_seals(actor, org_id)
    personal = {s.owner_user_id: s for s in seals if s.type == SealType.PERSONAL}
    granted: dict[str, list[tuple[Seal, Grant]]] = {}
    for org_seal in seals:
        if org_seal.type == SealType.PERSONAL:
            continue
        for g, u in c.uow.grants.grants_of_seal(actor, org_seal.seal_id):
            granted.setdefault(u.id, []).append((org_seal, g))
    out = []
    for user in c.uow.employees.all(actor, org_id):
        seal = personal.get(user.id)
        cert = None
        if seal is not None:
            certs = c.uow.pki.certificates(seal)
            cert = next((x for x in certs if x.is_current), certs[-1] if certs else None)
        out.append(EmployeeRow(user, seal, cert, granted.get(user.id, []),
                               user.id == org.account_admin_id, user.id == org.eseal_admin_id))
    return out


def employees_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    org_id = c.org_id()
    rows = _rows(c, actor, org_id)
    return c.render("employees.html", status=status, errors=errors,
                    org=c.uow.orgs.get(actor, org_id), rows=rows,
                    validated_domains=[d.name for d in c.uow.orgs.domains(actor, org_id)
                                       if d.status == "validated"],
                    counts={s: sum(1 for r in rows if r.user.status == s) for s in UserStatus})


@router.get("/console/employees")
def employees(c: ConsoleDep) -> Response:
    return employees_page(c)


@router.post("/console/employees")
@form_errors(employees_page)
def invite(c: ConsoleDep) -> Response:
    user = c.uow.employees.add(c.require(), c.org_id(), c.text("email"),
                               c.text("display_name"))
    return c.redirect("/console/employees", f"An invitation with a validation link was "
                      f"mailed to {user.email}.")


@router.post("/console/employees/{user_id}/resend")
@form_errors(employees_page)
def resend(c: ConsoleDep, user_id: str) -> Response:
    user = c.uow.employees.resend_invitation(c.require(), c.org_id(), user_id)
    return c.redirect("/console/employees", f"A new validation link was mailed to "
                      f"{user.email}.")


@router.post("/console/employees/{user_id}/reset-approval")
@form_errors(employees_page)
def reset_approval(c: ConsoleDep, user_id: str) -> Response:
    user = c.uow.approvals.admin_reset(c.require(), c.org_id(), user_id)
    return c.redirect("/console/employees", f"The signing approval password of {user.email} "
                      "was cleared; they set a new one on next use.")


def delete_page(c: ConsoleDep, user_id: str, errors: Errors | None = None,
                status: int = 200) -> Response:
    actor = c.require()
    org_id = c.org_id()
    user = c.uow.employees.get(actor, org_id, user_id)
    row = next(r for r in _rows(c, actor, org_id) if r.user.id == user.id)
    return c.render("employee_delete.html", status=status, errors=errors, row=row,
                    tokens=len(c.uow.accounts.list_tokens(c.uow.accounts.actor_for(user))))


@router.get("/console/employees/{user_id}/delete")
def delete_confirm(c: ConsoleDep, user_id: str) -> Response:
    return delete_page(c, user_id)


@router.post("/console/employees/{user_id}/delete")
@form_errors(delete_page)
def delete(c: ConsoleDep, user_id: str) -> Response:
    user = c.uow.employees.delete(c.require(), c.org_id(), user_id)
    return c.redirect("/console/employees", f"{user.email} was deleted: their grants were "
                      "withdrawn, their API tokens disabled and the certificate of their "
                      "personal e-signature revoked. Their past usage stays in the log.")
