"""Console routes: My e-Seal (every validated user): my seals with SealIDs
and images, my API tokens (created and shown once, revoked), my signing
approval password (set, reset after a fresh sign-in), and my usage log."""

from __future__ import annotations

from fastapi.responses import Response

from sealkeeper.accounts.models import ApiToken
from sealkeeper.errors import InvalidInput
from sealkeeper.signing.approvals import FRESH_LOGIN
from sealkeeper.web.console.context import ConsoleDep, Errors, console_router
from sealkeeper.web.console.errors import form_errors
from sealkeeper.web.console.logview import (
    PAGE_SIZE,
    csv_response,
    page_number,
    query_filters,
    query_string,
)

router = console_router()


def my_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200,
            new_token: tuple[ApiToken, str] | None = None) -> Response:
    user, actor = c.require_user()
    fresh = user.last_login_at is not None and c.uow.clock() - user.last_login_at <= FRESH_LOGIN
    response = c.render("my.html", status=status, errors=errors,
                        seals=c.uow.seals.my_seals(actor), approval=c.uow.approvals.status(actor),
                        tokens=c.uow.accounts.list_tokens(actor), new_token=new_token,
                        fresh_login=fresh)
    return response


@router.get("/console/my")
def my(c: ConsoleDep) -> Response:
    return my_page(c)


def _two_same(c: ConsoleDep) -> str:
    password = c.text("approval_password")
    if password != c.text("approval_password2"):
        raise InvalidInput("the two entries differ", field="approval_password2")
    return password


@router.post("/console/my/approval/set")
@form_errors(my_page)
def set_approval(c: ConsoleDep) -> Response:
    c.uow.approvals.set_password(c.require(), _two_same(c))
    return c.redirect("/console/my#approval", "Your signing approval password is set. Every "
                      "signature will ask for it.")


@router.post("/console/my/approval/reset")
@form_errors(my_page)
def reset_approval(c: ConsoleDep) -> Response:
    password = _two_same(c)
    c.uow.approvals.reset_password(c.require(), password,
                                   account_password=c.text("account_password") or None)
    return c.redirect("/console/my#approval", "Your signing approval password was reset; "
                      "approvals given before are void.")


@router.post("/console/my/tokens")
@form_errors(my_page)
def create_token(c: ConsoleDep) -> Response:
    actor = c.require()
    seal_ids = c.texts("seal_ids") or None
    if seal_ids is not None:
        for seal_id in seal_ids:
            c.uow.seals.get_visible(actor, seal_id)
    row, plaintext = c.uow.accounts.create_token(actor, c.text("name"), seal_ids)
    # Shown on this response only; never stored in plain text.
    return my_page(c, new_token=(row, plaintext), status=201)


@router.post("/console/my/tokens/{token_id}/revoke")
@form_errors(my_page)
def revoke_token(c: ConsoleDep, token_id: str) -> Response:
    row = c.uow.accounts.revoke_token(c.require(), token_id)
    return c.redirect("/console/my#tokens", f"The token {row.name!r} was revoked.")


def my_log_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    try:
        filters, raw = query_filters(c)
    except InvalidInput as exc:
        errors = {exc.field or "_form": exc.message}
        filters, raw, status = None, {}, 400
    page = c.uow.audit.my_entries(actor, filters, page=page_number(c), page_size=PAGE_SIZE)
    return c.render("log.html", status=status, errors=errors, page=page, raw=raw,
                    title="My usage log", scope="me",
                    seals=[s for s, _ in c.uow.seals.my_seals(actor)], people=[],
                    kinds=[], csv_url="/console/my/log.csv?" + query_string(raw),
                    page_url="/console/my/log?" + query_string(raw), checkpoint=None,
                    verifier_key=None)


@router.get("/console/my/log")
def my_log(c: ConsoleDep) -> Response:
    return my_log_page(c)


@router.get("/console/my/log.csv")
def my_log_csv(c: ConsoleDep) -> Response:
    actor = c.require()
    filters, _ = query_filters(c)
    export = c.uow.audit.my_csv_export(actor, filters)
    return csv_response(export.stream(c.uow.rt.session_factory), "my-usage-log.csv")
