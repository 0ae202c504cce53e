"""Who is looking at the console, and the helpers every console route uses:
the server-side session behind the cookie, the CSRF token of every form,
cookies, rendering and redirects.

Cookies are HttpOnly and SameSite=Lax, Secure (and ``__Host-`` prefixed)
when the service is served over https. Every unsafe request (POST) carries
``csrf_token``: the session's secret when signed in, else a MAC (pepper of
the key store) of a random anonymous cookie. :func:`csrf_guard` checks it
before any route runs.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from sealkeeper.accounts.models import User
from sealkeeper.authz import Actor
from sealkeeper.console.models import ConsoleSession, SessionStage
from sealkeeper.console.services import ConsoleServices
from sealkeeper.errors import InvalidInput, NotFound
from sealkeeper.orgs.models import Organization
from sealkeeper.services import UnitOfWork
from sealkeeper.web.console.errors import CsrfRejected, LoginRequired
from sealkeeper.web.console.templating import render
from sealkeeper.web.deps import UoW

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SECRET_FIELDS = frozenset({"csrf_token", "password", "password2", "new_password",
                            "account_password", "approval_password", "approval_password2",
                            "code"})
Errors = dict[str, str]


@dataclass(frozen=True)
class CookieNames:
    session: str
    csrf: str
    secure: bool

    @classmethod
    def for_(cls, secure: bool) -> CookieNames:
        prefix = "__Host-" if secure else ""
        return cls(prefix + "sk_session", prefix + "sk_csrf", secure)


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    group: str


@dataclass(frozen=True)
class Viewer:
    """A plain snapshot of who is signed in (usable after the transaction ends)."""

    user_id: str
    email: str
    display_name: str
    organization_id: str | None
    organization_name: str | None
    organization_status: str | None
    is_operator: bool
    is_account_admin: bool
    is_eseal_admin: bool
    is_employee: bool

    @property
    def in_validated_org(self) -> bool:
        return self.organization_status == "validated"

    @property
    def is_admin(self) -> bool:
        return self.is_account_admin or self.is_eseal_admin

    @property
    def roles(self) -> list[str]:
        out = []
        if self.is_operator:
            out.append("Operator")
        if self.is_account_admin:
            out.append("Account administrator")
        if self.is_eseal_admin:
            out.append("E-seal administrator")
        if self.is_employee and not out:
            out.append("Employee")
        return out


def navigation(v: Viewer | None) -> list[NavItem]:
    items: list[NavItem] = []
    if v is not None:
        items.append(NavItem("Overview", "/console/", "main"))
        if v.is_eseal_admin:
            items.append(NavItem("e-Seal management", "/console/seals", "E-sign service"))
        if v.in_validated_org and v.is_employee:
            items.append(NavItem("My e-Seal", "/console/my", "E-sign service"))
        if v.in_validated_org:
            items.append(NavItem("E-sign API management", "/console/api", "E-sign service"))
        if v.is_account_admin:
            items.append(NavItem("Employees", "/console/employees", "Organization"))
            items.append(NavItem("Email domains", "/console/domains", "Organization"))
            items.append(NavItem("Organization", "/console/organization", "Organization"))
        if v.organization_id is None and not v.is_operator:
            items.append(NavItem("Apply for an organization", "/console/apply", "Organization"))
        if v.is_operator:
            items.append(NavItem("Organization validation", "/console/operator",
                                 "Operator"))
    items.append(NavItem("Verify a document", "/console/verify", "Tools"))
    if v is not None:
        items.append(NavItem("Account & security", "/console/account", "Tools"))
    return items


@dataclass
class Console:
    request: Request
    uow: UnitOfWork
    svc: ConsoleServices
    cookies: CookieNames
    anon_cookie: str
    form: FormData | None
    session: ConsoleSession | None = None      # an active session
    pending: ConsoleSession | None = None      # signed in with the password, TOTP due
    user: User | None = None
    actor: Actor | None = None
    viewer: Viewer | None = None
    csrf_token: str = ""
    new_cookies: list[tuple[str, str | None]] = field(default_factory=list)
    flash_message: str | None = None

    # -- who ---------------------------------------------------------------

    def require(self) -> Actor:
        """The signed-in actor, or a redirect to the sign-in page."""
        if self.actor is None:
            raise LoginRequired(self.request.url.path)
        return self.actor

    def require_user(self) -> tuple[User, Actor]:
        actor = self.require()
        assert self.user is not None
        return self.user, actor

    def org_id(self) -> str:
        """The signed-in user's organization (or a page saying there is none)."""
        actor = self.require()
        if actor.organization_id is None:
            raise NotFound("your account belongs to no organization yet")
        return actor.organization_id

    # -- the submitted form ------------------------------------------------------

    @property
    def values(self) -> dict[str, str]:
        """Submitted text fields, to fill the form again (never secrets)."""
        if self.form is None:
            return {}
        return {k: v for k, v in self.form.multi_items()
                if isinstance(v, str) and k not in _SECRET_FIELDS}

    def text(self, name: str, default: str = "") -> str:
        if self.form is None:
            return default
        v = self.form.get(name)
        return _no_nul(v, name) if isinstance(v, str) else default

    def texts(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [_no_nul(v, name) for v in self.form.getlist(name) if isinstance(v, str)]

    def upload(self, name: str) -> UploadFile | None:
        if self.form is None:
            return None
        v = self.form.get(name)
        if isinstance(v, UploadFile) and (v.filename or v.size):
            return v
        return None

    # -- responses ---------------------------------------------------------------

    def flash(self, message: str) -> None:
        """A message for the next page this browser shows."""
        if self.session is not None:
            self.svc.sessions.set_flash(self.session, message)

    def render(self, template: str, *, status: int = 200, errors: Errors | None = None,
               **context: Any) -> HTMLResponse:
        if self.session is not None and self.flash_message is None:
            self.flash_message = self.svc.sessions.pop_flash(self.session)
        html = render(template, {
            "viewer": self.viewer, "nav": navigation(self.viewer), "csrf_token": self.csrf_token,
            "flash": self.flash_message, "path": self.request.url.path,
            "errors": errors or {},
            # A form shown again after an error keeps what was typed (never secrets).
            "values": self.values if errors else {}, **context})
        return HTMLResponse(html, status_code=status)

    def redirect(self, url: str, flash: str | None = None) -> RedirectResponse:
        if flash:
            self.flash(flash)
        return RedirectResponse(url, status_code=303)

    def set_session_cookie(self, value: str | None) -> None:
        self.new_cookies.append((self.cookies.session, value))

    def apply_cookies(self, response: Response) -> None:
        settings = self.uow.rt.settings
        max_age = settings.console_session_max_hours * 3600
        for name, value in self.new_cookies:
            if value is None:
                response.delete_cookie(name, path="/", secure=self.cookies.secure,
                                       httponly=True, samesite="lax")
            else:
                response.set_cookie(name, value, max_age=max_age, path="/",
                                    secure=self.cookies.secure, httponly=True,
                                    samesite="lax")


def _no_nul(value: str, field: str) -> str:
    if "\x00" in value:  # no database stores it; refuse it by name
        raise InvalidInput("this field contains a NUL character", field=field)
    return value


def _anon_token(uow: UnitOfWork, cookie: str) -> str:
    return uow.rt.keystore.pepper_mac(f"console-csrf-v1\x00{cookie}".encode()).hex()


def _viewer(c: Console, user: User, actor: Actor) -> Viewer:
    org = c.uow.session.get(Organization, user.organization_id) if user.organization_id \
        else None
    return Viewer(user_id=user.id, email=user.email, display_name=user.display_name,
                  organization_id=user.organization_id,
                  organization_name=org.legal_name if org else None,
                  organization_status=str(org.status) if org else None,
                  is_operator=actor.is_operator, is_account_admin=actor.is_account_admin,
                  is_eseal_admin=actor.is_eseal_admin, is_employee=actor.is_employee)


async def submitted_form(request: Request) -> FormData | None:
    """The body of an unsafe request, parsed once (the CSRF check reads it first)."""
    if request.method in SAFE_METHODS:
        return None
    return await request.form()


def get_console(request: Request, uow: UoW,
                form: Annotated[FormData | None, Depends(submitted_form)]) -> Console:
    settings = uow.rt.settings
    names = CookieNames.for_(settings.secure_cookies)
    svc = ConsoleServices(uow)
    anon = request.cookies.get(names.csrf, "")
    new_anon = not (16 <= len(anon) <= 100)
    if new_anon:
        anon = secrets.token_urlsafe(32)
    c = Console(request=request, uow=uow, svc=svc, cookies=names, anon_cookie=anon, form=form)
    if new_anon:
        c.new_cookies.append((names.csrf, anon))
    c.csrf_token = _anon_token(uow, anon)
    found = svc.sessions.find(request.cookies.get(names.session))
    if found is not None:
        row, user = found
        if row.stage == SessionStage.ACTIVE:
            c.session, c.user = row, user
            c.actor = uow.accounts.actor_for(user)
            c.viewer = _viewer(c, user, c.actor)
        else:
            c.pending, c.user = row, user
        c.csrf_token = row.csrf_secret
    request.state.console = c
    return c


ConsoleDep = Annotated[Console, Depends(get_console, scope="function")]


def csrf_guard(request: Request, c: ConsoleDep) -> None:
    """Every unsafe request must carry this browser's CSRF token; checked before
    the route runs, so a refused request changes nothing."""
    if request.method in SAFE_METHODS:
        return
    sent = c.text("csrf_token")
    if not sent or not hmac.compare_digest(sent.encode(), c.csrf_token.encode()):
        raise CsrfRejected("this form has expired or did not come from this site: reload "
                           "the page and try again")


def safe_next(value: str | None) -> str:
    """A local console path to go to after sign-in (never another site)."""
    if value and value.startswith("/console") and not value.startswith("//") \
            and "\\" not in value and len(value) < 500:
        return value
    return "/console/"


def signin_url(next_path: str) -> str:
    return "/console/signin?next=" + quote(safe_next(next_path), safe="/")


def console_router() -> APIRouter:
    """A router whose routes answer HTML errors and check the CSRF token."""
    from sealkeeper.web.console.errors import ConsoleRoute

    return APIRouter(route_class=ConsoleRoute, include_in_schema=False,
                     dependencies=[Depends(csrf_guard)])


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
