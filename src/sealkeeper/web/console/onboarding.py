"""Console routes: the organization application, the organization page (its
authorization letters), email domains and their proofs, and the operator's
review of organizations (approve / reject, letters, domains, quota credits)."""

from __future__ import annotations

from fastapi.responses import Response

from sealkeeper.accounts.models import User
from sealkeeper.authz import require_operator
from sealkeeper.errors import InvalidInput
from sealkeeper.orgs.letters import MAX_LETTER_BYTES, UploadedFile
from sealkeeper.orgs.models import OrgStatus
from sealkeeper.web.console.context import Console, ConsoleDep, Errors, console_router
from sealkeeper.web.console.errors import form_errors

router = console_router()


def _letter(c: Console, name: str = "letter") -> UploadedFile:
    upload = c.upload(name)
    if upload is None:
        raise InvalidInput("attach the signed authorization letter (PDF, PNG or JPEG)",
                           field=name)
    data = upload.file.read(MAX_LETTER_BYTES + 1)
    return UploadedFile(upload.filename or "letter", upload.content_type or "", data)


def _domains(text: str) -> list[str]:
    return [d for d in text.replace(",", " ").split() if d]


# -- applying --------------------------------------------------------------------------


def apply_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    c.require()
    return c.render("apply.html", status=status, errors=errors,
                    max_letter_mb=MAX_LETTER_BYTES >> 20)


@router.get("/console/apply")
def apply_form(c: ConsoleDep) -> Response:
    actor = c.require()
    if actor.organization_id is not None or actor.is_operator:
        return c.redirect("/console/organization" if actor.organization_id else "/console/")
    return apply_page(c)


@router.post("/console/apply")
@form_errors(apply_page)
def apply(c: ConsoleDep) -> Response:
    actor = c.require()
    org = c.uow.orgs.apply(actor, legal_name=c.text("legal_name"),
                           registration_number=c.text("registration_number"),
                           domains=_domains(c.text("domains")),
                           eseal_admin_email=c.text("eseal_admin_email"), letter=_letter(c))
    return c.redirect("/console/organization",
                      f"The application of {org.legal_name} was sent. The operator will "
                      "review it and the authorization letter.")


# -- the organization --------------------------------------------------------------------


def organization_page(c: ConsoleDep, errors: Errors | None = None,
                      status: int = 200) -> Response:
    actor = c.require()
    org = c.uow.orgs.get(actor, c.org_id())
    letters = c.uow.orgs.letters(actor, org.id) if actor.is_account_admin else []
    return c.render("organization.html", status=status, errors=errors, org=org,
                    letters=letters, eseal_admin=c.uow.orgs.eseal_admin(org),
                    domains=c.uow.orgs.domains(actor, org.id),
                    max_letter_mb=MAX_LETTER_BYTES >> 20)


@router.get("/console/organization")
def organization(c: ConsoleDep) -> Response:
    return organization_page(c)


@router.post("/console/organization/letters")
@form_errors(organization_page)
def submit_letter(c: ConsoleDep) -> Response:
    actor = c.require()
    c.uow.orgs.submit_letter(actor, c.org_id(), c.text("eseal_admin_email"), _letter(c))
    return c.redirect("/console/organization", "The new authorization letter was sent to "
                      "the operator. The e-seal administrator changes once it is approved.")


@router.get("/console/organizations/{org_id}/letters/{letter_id}")
def letter_file(c: ConsoleDep, org_id: str, letter_id: str) -> Response:
    row = c.uow.orgs.letter(c.require(), org_id, letter_id)
    ext = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(
        row.content_type, "bin")
    return Response(row.content, media_type=row.content_type, headers={
        "Content-Disposition": f'attachment; filename="authorization-letter-{row.id}.{ext}"',
        "Cache-Control": "no-store"})


# -- domains ---------------------------------------------------------------------------


def domains_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    org_id = c.org_id()
    org = c.uow.orgs.get(actor, org_id)
    rows = []
    for d in c.uow.orgs.domains(actor, org_id):
        record = code = None
        if d.status != "validated" and actor.is_account_admin:
            record = c.svc.domain_proofs.dns_challenge(actor, org_id, d.id)
            code = c.svc.domain_proofs.pending_code(actor, org_id, d.id)
        rows.append((d, record, code))
    return c.render("domains.html", status=status, errors=errors, org=org, rows=rows,
                    error_domain=c.request.path_params.get("domain_id"))


@router.get("/console/domains")
def domains(c: ConsoleDep) -> Response:
    return domains_page(c)


@router.post("/console/domains")
@form_errors(domains_page)
def add_domain(c: ConsoleDep) -> Response:
    d = c.uow.orgs.add_domain(c.require(), c.org_id(), c.text("name"))
    return c.redirect("/console/domains", f"{d.name} was added. Prove it is yours below.")


@router.post("/console/domains/{domain_id}/check-dns")
@form_errors(domains_page)
def check_dns(c: ConsoleDep, domain_id: str) -> Response:
    d = c.svc.domain_proofs.check_dns(c.require(), c.org_id(), domain_id)
    return c.redirect("/console/domains", f"{d.name} is validated by its DNS record.")


@router.post("/console/domains/{domain_id}/send-code")
@form_errors(domains_page)
def send_code(c: ConsoleDep, domain_id: str) -> Response:
    address = c.svc.domain_proofs.send_code(c.require(), c.org_id(), domain_id,
                                            c.text("mailbox"))
    return c.redirect("/console/domains", f"A code was mailed to {address}.")


@router.post("/console/domains/{domain_id}/confirm-code")
@form_errors(domains_page)
def confirm_code(c: ConsoleDep, domain_id: str) -> Response:
    d = c.svc.domain_proofs.confirm_code(c.require(), c.org_id(), domain_id, c.text("code"))
    return c.redirect("/console/domains", f"{d.name} is validated by the mailed code.")


# -- the operator ------------------------------------------------------------------------


@router.get("/console/operator")
def operator_list(c: ConsoleDep, status: str = "pending") -> Response:
    actor = c.require()
    wanted = OrgStatus(status) if status in set(OrgStatus) else None
    orgs = c.uow.orgs.search(actor, wanted)
    return c.render("operator_list.html", orgs=orgs, current=status if wanted else "all",
                    statuses=[s.value for s in OrgStatus])


def review_page(c: ConsoleDep, org_id: str, errors: Errors | None = None,
                status: int = 200) -> Response:
    actor = c.require()
    require_operator(actor)
    org = c.uow.orgs.get(actor, org_id)
    validated = org.status == OrgStatus.VALIDATED
    return c.render("operator_review.html", status=status, errors=errors, org=org,
                    letters=c.uow.orgs.letters(actor, org.id),
                    domains=c.uow.orgs.domains(actor, org.id),
                    applicant=c.uow.session.get(User, org.account_admin_id),
                    eseal_admin=c.uow.orgs.eseal_admin(org),
                    balance=c.uow.quota.balance(actor, org.id) if validated else None,
                    orders=c.uow.quota.orders(actor, org.id) if validated else [])


@router.get("/console/operator/organizations/{org_id}")
def review(c: ConsoleDep, org_id: str) -> Response:
    return review_page(c, org_id)


def _back(org_id: str) -> str:
    return f"/console/operator/organizations/{org_id}"


@router.post("/console/operator/organizations/{org_id}/approve")
@form_errors(review_page)
def approve(c: ConsoleDep, org_id: str) -> Response:
    org = c.uow.orgs.approve(c.require(), org_id)
    return c.redirect(_back(org_id), f"{org.legal_name} is validated; its six seals were "
                      "created and the e-seal administrator was invited.")


@router.post("/console/operator/organizations/{org_id}/reject")
@form_errors(review_page)
def reject(c: ConsoleDep, org_id: str) -> Response:
    org = c.uow.orgs.reject(c.require(), org_id, c.text("reason"))
    return c.redirect(_back(org_id), f"{org.legal_name} was rejected; the applicant was told "
                      "why.")


@router.post("/console/operator/organizations/{org_id}/letters/{letter_id}/decide")
@form_errors(review_page)
def decide_letter(c: ConsoleDep, org_id: str, letter_id: str) -> Response:
    approve_it = c.text("decision") == "approve"
    c.uow.orgs.decide_letter(c.require(), org_id, letter_id, approve=approve_it,
                             reason=c.text("reason") or None)
    return c.redirect(_back(org_id), "The letter was " +
                      ("approved: the e-seal administrator changed." if approve_it
                       else "rejected."))


@router.post("/console/operator/organizations/{org_id}/domains/{name}/validate")
@form_errors(review_page)
def operator_validate_domain(c: ConsoleDep, org_id: str, name: str) -> Response:
    d = c.uow.orgs.mark_domain_validated(c.require(), org_id, name)
    return c.redirect(_back(org_id), f"{d.name} is marked validated.")


@router.post("/console/operator/organizations/{org_id}/quota/orders/{order_id}/credit")
@form_errors(review_page)
def credit_order(c: ConsoleDep, org_id: str, order_id: str) -> Response:
    order = c.uow.quota.credit_order(c.require(), order_id, c.text("reference") or None)
    return c.redirect(_back(org_id), f"The order of {order.units} signatures was credited.")


@router.post("/console/operator/organizations/{org_id}/quota/credit")
@form_errors(review_page)
def credit(c: ConsoleDep, org_id: str) -> Response:
    units = _int(c.text("units"), "units")
    c.uow.quota.credit(c.require(), org_id, units, c.text("reference") or None)
    return c.redirect(_back(org_id), f"{units} signatures were credited.")


def _int(text: str, field: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput("enter a whole number", field=field) from None
