"""Console routes: sign-in (password, then TOTP when enabled), sign-out,
sign-up, the mailed validation link, and the account's security settings."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from sealkeeper.console.sessions import MAX_TOTP_FAILURES
from sealkeeper.errors import InvalidInput, Unauthenticated
from sealkeeper.web.console.context import (
    ConsoleDep,
    Errors,
    client_address,
    console_router,
    safe_next,
)
from sealkeeper.web.console.errors import form_errors

router = console_router()

_NOTICES = {"signed_out": "You are signed out.",
            "validated": "Your account is validated. Sign in with your new password.",
            "expired": "Your session ended. Please sign in again.",
            "totp_failed": "Too many wrong codes. Please sign in again."}


@router.get("/")
def root() -> Response:
    return RedirectResponse("/console/", status_code=303)


@router.get("/console")
def console_root() -> Response:
    return RedirectResponse("/console/", status_code=303)


# -- sign-in ---------------------------------------------------------------------------


def signin_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200,
                next: str | None = None, notice: str | None = None) -> Response:
    return c.render("signin.html", status=status, errors=errors,
                    next=safe_next(next or c.request.query_params.get("next")),
                    notice=_NOTICES.get(notice or ""))


@router.get("/console/signin")
def signin_form(c: ConsoleDep, next: str | None = None, notice: str | None = None) -> Response:
    if c.actor is not None:
        return c.redirect(safe_next(next))
    return signin_page(c, next=next, notice=notice)


@router.post("/console/signin")
@form_errors(signin_page)
def signin(c: ConsoleDep, request: Request) -> Response:
    email, password = c.text("email").strip(), c.text("password")
    next_path = safe_next(c.text("next"))
    addr = client_address(request)
    if not email or not password:
        raise InvalidInput("enter your email and password", field="email")
    c.svc.throttle.check(email, addr)
    try:
        user = c.uow.accounts.authenticate_password(email, password)
    except Unauthenticated:
        c.svc.throttle.failed(email, addr)
        # No raise: the failure must be committed.
        return signin_page(c, errors={"password": "Wrong email or password."}, status=401,
                           next=next_path)
    c.svc.throttle.succeeded(email)
    for row in (c.session, c.pending):  # a new session, never the old one reused
        if row is not None:
            c.svc.sessions.end(row)
    needs_totp = c.svc.totp.enabled(user.id)
    _, cookie = c.svc.sessions.start(user, needs_totp=needs_totp, remote_addr=addr,
                                     user_agent=request.headers.get("user-agent"))
    c.set_session_cookie(cookie)
    if needs_totp:
        return RedirectResponse("/console/signin/totp?next=" + next_path, status_code=303)
    return RedirectResponse(next_path, status_code=303)


def totp_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    return c.render("signin_totp.html", status=status, errors=errors,
                    next=safe_next(c.request.query_params.get("next") or c.text("next")))


@router.get("/console/signin/totp")
def totp_form(c: ConsoleDep) -> Response:
    if c.pending is None:
        return RedirectResponse("/console/signin", status_code=303)
    return totp_page(c)


@router.post("/console/signin/totp")
@form_errors(totp_page)
def totp_submit(c: ConsoleDep, request: Request) -> Response:
    pending, user = c.pending, c.user
    if pending is None or user is None:
        return RedirectResponse("/console/signin?notice=expired", status_code=303)
    if c.svc.totp.verify(user, c.text("code")):
        c.set_session_cookie(c.svc.sessions.activate(pending))
        return RedirectResponse(safe_next(c.text("next")), status_code=303)
    pending.totp_failures += 1
    if pending.totp_failures >= MAX_TOTP_FAILURES:
        c.svc.sessions.end(pending)
        c.svc.throttle.failed(user.email, client_address(request))
        c.set_session_cookie(None)
        return RedirectResponse("/console/signin?notice=totp_failed", status_code=303)
    return totp_page(c, errors={"code": "That code is not right. Use the current code "
                                        "from your authenticator app."}, status=401)


@router.post("/console/signout")
def signout(c: ConsoleDep) -> Response:
    for row in (c.session, c.pending):
        if row is not None:
            c.svc.sessions.end(row)
    c.set_session_cookie(None)
    return RedirectResponse("/console/signin?notice=signed_out", status_code=303)


# -- sign-up ---------------------------------------------------------------------------


def signup_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    return c.render("signup.html", status=status, errors=errors)


@router.get("/console/signup")
def signup_form(c: ConsoleDep) -> Response:
    if c.actor is not None:
        return c.redirect("/console/")
    return signup_page(c)


@router.post("/console/signup")
@form_errors(signup_page)
def signup(c: ConsoleDep, request: Request) -> Response:
    password = c.text("password")
    if password != c.text("password2"):
        raise InvalidInput("the two passwords differ", field="password2")
    user = c.uow.accounts.signup(c.text("email"), password, c.text("display_name"))
    _, cookie = c.svc.sessions.start(user, needs_totp=False,
                                     remote_addr=client_address(request),
                                     user_agent=request.headers.get("user-agent"))
    c.set_session_cookie(cookie)
    return RedirectResponse("/console/apply", status_code=303)


# -- the mailed validation link ----------------------------------------------------------


def validate_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    token = c.request.query_params.get("token") or c.text("token")
    response = c.render("validate.html", status=status, errors=errors, token=token[:200])
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/validate")
def validate_form(c: ConsoleDep) -> Response:
    return validate_page(c)


@router.post("/validate")
@form_errors(validate_page)
def validate(c: ConsoleDep) -> Response:
    password = c.text("password")
    if password != c.text("password2"):
        raise InvalidInput("the two passwords differ", field="password2")
    c.uow.employees.validate(c.text("token"), password, c.text("display_name") or None)
    if c.session is not None:  # someone else was signed in on this browser
        c.svc.sessions.end(c.session)
        c.set_session_cookie(None)
    return RedirectResponse("/console/signin?notice=validated", status_code=303)


# -- account & security ------------------------------------------------------------------


def account_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    user, actor = c.require_user()
    return c.render("account.html", status=status, errors=errors, user=user,
                    totp_on=c.svc.totp.enabled(user.id), enrollment=c.svc.totp.pending(actor),
                    sessions=c.svc.sessions.active_of(user.id),
                    current_session_id=c.session.id if c.session else None)


@router.get("/console/account")
def account(c: ConsoleDep) -> Response:
    return account_page(c)


@router.post("/console/account/totp/begin")
@form_errors(account_page)
def totp_begin(c: ConsoleDep) -> Response:
    c.svc.totp.begin(c.require())
    return c.redirect("/console/account#totp")


@router.post("/console/account/totp/confirm")
@form_errors(account_page)
def totp_confirm(c: ConsoleDep) -> Response:
    c.svc.totp.confirm(c.require(), c.text("code"))
    return c.redirect("/console/account", "Two-step sign-in is on. You will be asked for a "
                      "code at every sign-in.")


@router.post("/console/account/totp/disable")
@form_errors(account_page)
def totp_disable(c: ConsoleDep) -> Response:
    c.svc.totp.disable(c.require(), c.text("code"))
    return c.redirect("/console/account", "Two-step sign-in is off.")


@router.post("/console/account/sessions/end-others")
@form_errors(account_page)
def end_other_sessions(c: ConsoleDep) -> Response:
    user, _ = c.require_user()
    n = c.svc.sessions.end_all(user.id, except_id=c.session.id if c.session else None)
    return c.redirect("/console/account", f"Signed out {n} other session{'s' if n != 1 else ''}.")
