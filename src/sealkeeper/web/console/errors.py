"""The one place where errors become HTML for console routes.

* :class:`ConsoleRoute` wraps every console route: a sign-in requirement
  becomes a redirect to the sign-in page, a domain error a page with the
  status of :func:`sealkeeper.web.errors.status_for`, anything unexpected a
  logged 500 page that tells nothing; it also adds the security headers and
  the cookies the request set.
* :func:`form_errors` wraps a form's POST handler: a domain error rolls the
  transaction back and shows the form again with the message next to the
  field it names (``field``), the other values kept.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from sealkeeper import errors as e
from sealkeeper.console.throttle import TooManyAttempts
from sealkeeper.web.console.templating import render
from sealkeeper.web.deps import fail_request
from sealkeeper.web.errors import status_for

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R", bound=Response)

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

_TITLES = {400: "Check what you sent", 401: "Please sign in", 402: "No API quota left",
           403: "Not allowed", 404: "Not found", 409: "Not possible right now",
           413: "Too large", 423: "Locked", 429: "Too many attempts",
           503: "Temporarily unavailable"}


class LoginRequired(Exception):
    """The page needs a signed-in user."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(e.PermissionDenied):
    code = "csrf_rejected"


def console_status(exc: e.SealkeeperError) -> int:
    if isinstance(exc, TooManyAttempts):
        return 429
    return status_for(exc)


def field_errors(exc: e.SealkeeperError) -> dict[str, str]:
    """The message, keyed by the form field it is about (``_form`` if none)."""
    return {exc.field or "_form": exc.message}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    from sealkeeper.web.console.context import navigation

    console = getattr(request.state, "console", None)
    viewer = getattr(console, "viewer", None)
    html = render("error.html", {
        "viewer": viewer, "nav": navigation(viewer), "csrf_token": getattr(
            console, "csrf_token", ""), "flash": None, "path": request.url.path,
        "errors": {}, "values": {}, "status": status,
        "title": _TITLES.get(status, "Something went wrong"), "message": message})
    return HTMLResponse(html, status_code=status)


def _error_response(request: Request, exc: Exception) -> Response:
    from sealkeeper.web.console.context import signin_url

    if isinstance(exc, LoginRequired):
        return RedirectResponse(signin_url(exc.next_path), status_code=303)
    if isinstance(exc, e.SealkeeperError):
        status = console_status(exc)
        if status >= 500:
            log.error("console: server-side error %s: %s", type(exc).__name__, exc.message)
            return error_page(request, status, "The service could not do this right now. "
                              "Please try again later.")
        return error_page(request, status, exc.message)
    if isinstance(exc, DataError):
        log.warning("console: the database refused a value: %s", type(exc.orig).__name__)
        return error_page(request, 400, "A value has characters that cannot be stored.")
    if isinstance(exc, RequestValidationError):
        return error_page(request, 400, "The request was incomplete or malformed.")
    if isinstance(exc, StarletteHTTPException):
        message = str(exc.detail) if exc.status_code < 500 else "Please try again later."
        return error_page(request, exc.status_code, message)
    log.exception("console: unexpected error")
    return error_page(request, 500, "Something went wrong on our side. Please try again.")


def _finish(request: Request, response: Response) -> Response:
    console = getattr(request.state, "console", None)
    if console is not None:
        console.apply_cookies(response)
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    if response.media_type is None or response.media_type.startswith("text/html"):
        h.setdefault("Cache-Control", "no-store")
    return response


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                fail_request(request)
                response = _error_response(request, exc)
            return _finish(request, response)

        return run


def form_errors(view: Callable[..., Response]) -> Callable[[Callable[P, R]],
                                                           Callable[P, Response]]:
    """Show ``view`` again, with the error next to its field, when the handler
    raises a domain error. ``view`` takes the console first (``c``), ``errors``
    and ``status``, and any of the handler's other arguments by name."""
    accepted = set(inspect.signature(view).parameters)

    def decorate(handler: Callable[P, R]) -> Callable[P, Response]:
        @functools.wraps(handler)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                return handler(*args, **kwargs)
            except e.SealkeeperError as exc:
                c = kwargs["c"]
                c.uow.rollback()  # type: ignore[attr-defined]
                extra = {k: v for k, v in kwargs.items() if k in accepted and k != "c"}
                return view(c, errors=field_errors(exc), status=console_status(exc), **extra)

        return wrapper

    return decorate
