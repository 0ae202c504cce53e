"""Console routes: e-seal management (the e-seal administrator): the
organization's six seals with images, SealIDs and status; grants per seal and
in bulk; disable / enable; the usage log with filters, CSV and the current
signed checkpoint; the security log of refused attempts. Also the seal image
for any seal the viewer may see."""

from __future__ import annotations

from fastapi.responses import Response

from sealkeeper.accounts.models import User, UserStatus
from sealkeeper.audit import EntryKind
from sealkeeper.audit.queries import SecurityFilter
from sealkeeper.authz import Actor
from sealkeeper.errors import InvalidInput
from sealkeeper.seals.models import Seal, SealStatus, SealType
from sealkeeper.web.console.context import Console, ConsoleDep, Errors, console_router
from sealkeeper.web.console.errors import form_errors
from sealkeeper.web.console.logview import (
    PAGE_SIZE,
    csv_response,
    page_number,
    query_filters,
    query_string,
    security_filters,
)

router = console_router()


def _org_seals(c: Console, actor: Actor) -> list[Seal]:
    return [s for s in c.uow.seals.organization_seals(actor, c.org_id())
            if s.type != SealType.PERSONAL]


def _grantable(c: Console, actor: Actor) -> list[User]:
    """Employees who may be granted a seal (validated; the service checks the domain)."""
    return [u for u in c.uow.employees.all(actor, c.org_id())
            if u.status == UserStatus.ACTIVE and u.validated_at is not None]


def seals_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    rows = [(s, len(c.uow.grants.grants_of_seal(actor, s.seal_id)))
            for s in _org_seals(c, actor)]
    return c.render("seals.html", status=status, errors=errors, rows=rows,
                    error_seal=c.request.path_params.get("seal_id"))


@router.get("/console/seals")
def seals(c: ConsoleDep) -> Response:
    c.require()
    return seals_page(c)


# -- bulk grants --------------------------------------------------------------------------


def bulk_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    org_seals = _org_seals(c, actor)
    held = {(s.seal_id, u.id) for s in org_seals
            for _, u in c.uow.grants.grants_of_seal(actor, s.seal_id)}
    return c.render("seal_bulk.html", status=status, errors=errors, seals=org_seals,
                    employees=_grantable(c, actor), held=held)


@router.get("/console/seals/grants")
def bulk(c: ConsoleDep) -> Response:
    return bulk_page(c)


@router.post("/console/seals/grants")
@form_errors(bulk_page)
def bulk_save(c: ConsoleDep) -> Response:
    actor = c.require()
    # Only the e-seal administrator saves, whatever the form holds.
    org_seals = {s.seal_id: c.uow.seals.administered(actor, s.seal_id)
                 for s in _org_seals(c, actor)}
    wanted: set[tuple[str, str]] = set()
    for item in c.texts("grant"):
        seal_id, _, user_id = item.partition(":")
        if seal_id not in org_seals or not user_id:
            raise InvalidInput("unknown seal or employee in the form", field="_form")
        wanted.add((seal_id, user_id))
    users = {u.id for u in _grantable(c, actor)}
    granted = withdrawn = 0
    for seal_id, seal in org_seals.items():
        held = {u.id for _, u in c.uow.grants.grants_of_seal(actor, seal_id)}
        for user_id in sorted({u for s, u in wanted if s == seal_id} - held):
            if seal.status == SealStatus.REVOKED:
                continue
            c.uow.grants.grant(actor, seal_id, user_id)
            granted += 1
        for user_id in sorted(held - {u for s, u in wanted if s == seal_id}):
            if user_id in users:
                c.uow.grants.withdraw(actor, seal_id, user_id)
                withdrawn += 1
    return c.redirect("/console/seals/grants",
                      f"Saved: {granted} grant{'s' if granted != 1 else ''} given, "
                      f"{withdrawn} withdrawn.")


# -- the usage log ------------------------------------------------------------------------


def log_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    org_id = c.org_id()
    try:
        filters, raw = query_filters(c)
    except InvalidInput as exc:
        errors = {exc.field or "_form": exc.message}
        filters, raw = None, {}
        status = 400
    page = c.uow.audit.entries(actor, org_id, filters, page=page_number(c),
                               page_size=PAGE_SIZE)
    return c.render("log.html", status=status, errors=errors, page=page, raw=raw,
                    title="Usage log", scope="organization",
                    seals=c.uow.seals.organization_seals(actor, org_id),
                    people=c.uow.employees.all(actor, org_id),
                    kinds=[k.value for k in EntryKind],
                    csv_url="/console/seals/log.csv?" + query_string(raw),
                    page_url="/console/seals/log?" + query_string(raw),
                    checkpoint=c.uow.audit.checkpoint(actor, org_id),
                    verifier_key=c.uow.audit.verifier_key(actor, org_id))


@router.get("/console/seals/log")
def org_log(c: ConsoleDep) -> Response:
    return log_page(c)


@router.get("/console/seals/log.csv")
def org_log_csv(c: ConsoleDep) -> Response:
    actor = c.require()
    filters, _ = query_filters(c)
    export = c.uow.audit.csv_export(actor, c.org_id(), filters)
    return csv_response(export.stream(c.uow.rt.session_factory), "usage-log.csv")


# -- the security log of refused attempts -------------------------------------------------


def security_page(c: ConsoleDep) -> Response:
    actor = c.require()
    org_id = c.org_id()
    errors: Errors | None = None
    status = 200
    try:
        filters, raw = security_filters(c)
    except InvalidInput as exc:
        errors = {exc.field or "_form": exc.message}
        filters, raw = SecurityFilter(), {}
        status = 400
    page = c.uow.audit.security_events(actor, org_id, filters, page=page_number(c),
                                       page_size=PAGE_SIZE)
    people = c.uow.employees.all(actor, org_id)
    return c.render("security.html", status=status, errors=errors, page=page, raw=raw,
                    seals=c.uow.seals.organization_seals(actor, org_id), people=people,
                    emails={u.id: u.email for u in people},
                    csv_url="/console/seals/security.csv?" + query_string(raw),
                    page_url="/console/seals/security?" + query_string(raw))


@router.get("/console/seals/security")
def security_log(c: ConsoleDep) -> Response:
    return security_page(c)


@router.get("/console/seals/security.csv")
def security_log_csv(c: ConsoleDep) -> Response:
    actor = c.require()
    filters, _ = security_filters(c)
    export = c.uow.audit.security_csv_export(actor, c.org_id(), filters)
    return csv_response(export.stream(c.uow.rt.session_factory), "security-log.csv")


# -- one seal -----------------------------------------------------------------------------


def seal_page(c: ConsoleDep, seal_id: str, errors: Errors | None = None,
              status: int = 200) -> Response:
    actor = c.require()
    seal = c.uow.seals.administered(actor, seal_id)
    grants = c.uow.grants.grants_of_seal(actor, seal.seal_id, include_withdrawn=True)
    holders = {u.id for g, u in grants if g.withdrawn_at is None}
    certs = c.uow.pki.certificates(seal)
    return c.render("seal.html", status=status, errors=errors, seal=seal, grants=grants,
                    certificates=certs,
                    candidates=[u for u in _grantable(c, actor) if u.id not in holders])


@router.get("/console/seals/{seal_id}")
def seal(c: ConsoleDep, seal_id: str) -> Response:
    return seal_page(c, seal_id)


@router.post("/console/seals/{seal_id}/grants")
@form_errors(seal_page)
def grant(c: ConsoleDep, seal_id: str) -> Response:
    user_id = c.text("user_id")
    if not user_id:
        raise InvalidInput("choose an employee", field="user_id")
    g = c.uow.grants.grant(c.require(), seal_id, user_id)
    user = c.uow.session.get(User, g.user_id)
    return c.redirect(f"/console/seals/{seal_id}",
                      f"{user.email if user else 'The employee'} may now use this seal.")


@router.post("/console/seals/{seal_id}/grants/{user_id}/withdraw")
@form_errors(seal_page)
def withdraw(c: ConsoleDep, seal_id: str, user_id: str) -> Response:
    c.uow.grants.withdraw(c.require(), seal_id, user_id)
    return c.redirect(f"/console/seals/{seal_id}", "The grant was withdrawn; it takes effect "
                      "on the very next request.")


@router.post("/console/seals/{seal_id}/status")
@form_errors(seals_page)
def set_status(c: ConsoleDep, seal_id: str) -> Response:
    enable = c.text("enabled") == "1"
    s = c.uow.seals.set_enabled(c.require(), seal_id, enable)
    back = "/console/seals/" + seal_id if c.text("back") == "seal" else "/console/seals"
    return c.redirect(back, f"{s.name} is {'enabled' if enable else 'disabled'}.")


@router.get("/console/seals/{seal_id}/image.png")
def seal_image(c: ConsoleDep, seal_id: str) -> Response:
    """The stamp image of a seal the signed-in user may see (the JSON API needs
    a bearer token, which the browser does not have)."""
    actor = c.require()
    png = c.uow.seal_images.png(actor, seal_id)
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=300"})
