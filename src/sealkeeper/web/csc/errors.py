"""The one place where errors become CSC API responses.

Every refusal under ``/csc/`` is ``application/json``
``{"error": "<CSC code>", "error_description": "<text>"}`` (CSC API v1.0.4.0
section 10 and v2.0.0.2 section 10.2), never a 500 for what a client sends.
Clients such as pyHanko never show ``error_description``, so every refusal is
also logged on the server (INFO) with the method, the user and the reason.

Codes used:

* 400 ``invalid_request``: missing / malformed / invalid parameters, unknown
  credentialID ("Invalid parameter credentialID"), SAD problems ("Invalid
  parameter SAD", "SAD expired", "Hash is not authorized by the SAD"), a
  disabled credential, a certificate that is expired or revoked, a locked
  approval password;
* 400 ``invalid_pin`` (v1) / ``invalid_authentication_data`` (v2): a wrong PIN
  (the signing approval password) at credentials/authorize;
* 401 ``invalid_token``: no, malformed, revoked or expired API token;
* 403 ``access_denied``: the caller may not use this credential (no grant in
  force, API token limited to other seals) or the organization's quota is
  exhausted;
* 404 / 405 / 501 ``invalid_request``: unknown path, wrong HTTP method, a CSC
  method sealkeeper does not implement;
* 413 ``invalid_request``, 503 ``temporarily_unavailable``, 500 ``server_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sealkeeper import errors as e
from sealkeeper.web.deps import fail_request

log = logging.getLogger("sealkeeper.csc")


class CscError(e.SealkeeperError):
    """A refusal worded for the CSC API (raised only inside the CSC routes)."""

    def __init__(self, description: str, *, error: str = "invalid_request",
                 status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


def invalid(description: str) -> CscError:
    return CscError(description)


# Domain field names → the CSC parameter they come from (canonical names; the
# name the client actually used is substituted when known, see Params).
_FIELDS = {
    "documents": "hash", "hashes": "hash", "digest": "hash",
    "digest_algorithm": "hashAlgo", "signature_algorithm": "signAlgo", "scheme": "signAlgo",
    "pss_salt_length": "signAlgoParams", "approval_password": "PIN",
    "approval": "SAD", "seal_id": "credentialID",
}


def _param(request: Request, field: str | None) -> str | None:
    if not field:
        return None
    base = field.split("[", 1)[0].split(".", 1)[0]
    canonical = _FIELDS.get(base, base)
    names: dict[str, str] = getattr(request.state, "csc_names", {})
    return names.get(canonical, canonical)


def _approval_refused(method: str, version: str, exc: e.SealkeeperError) -> CscError:
    msg = exc.message
    if method == "credentials/authorize":
        code = "invalid_pin" if version == "v1" else "invalid_authentication_data"
        return CscError(f"The PIN is invalid ({msg})", error=code)
    if "expired" in msg:
        return CscError(f"SAD expired ({msg})")
    if "does not cover" in msg:
        return CscError(f"Hash is not authorized by the SAD ({msg})")
    return CscError(f"Invalid parameter SAD: {msg}")


def translate(exc: Exception, request: Request, version: str, method: str) -> CscError:
    """Map any exception raised while serving a CSC request to a CSC refusal."""
    if isinstance(exc, CscError):
        return exc
    if isinstance(exc, e.InvalidInput):
        name = _param(request, exc.field)
        return CscError(f"Invalid parameter {name}: {exc.message}" if name else exc.message)
    if isinstance(exc, e.Unauthenticated):
        return CscError(exc.message, error="invalid_token", status=401)
    if isinstance(exc, e.NotFound):
        return CscError(f"Invalid parameter credentialID: {exc.message}")
    if isinstance(exc, e.PermissionDenied | e.QuotaExhausted):
        return CscError(exc.message, error="access_denied", status=403)
    if isinstance(exc, e.ApprovalRefused):
        return _approval_refused(method, version, exc)
    if isinstance(exc, e.SigningLocked):
        return CscError(f"{'PIN' if version == 'v1' else 'Credential'} locked ({exc.message})")
    if isinstance(exc, e.Conflict):
        text = exc.message
        if text.startswith("this seal is "):
            text = f"The credential identified by credentialID is {text[13:]}"
        return CscError(text[:1].upper() + text[1:])
    if isinstance(exc, e.PayloadTooLarge):
        return CscError(exc.message, status=413)
    if isinstance(exc, e.KeyStoreUnavailable):
        return CscError(exc.message, error="temporarily_unavailable", status=503)
    if isinstance(exc, RequestValidationError):
        errs = exc.errors()
        if errs and errs[0].get("type") == "json_invalid":
            return CscError("The request body is not valid JSON")
        return CscError("Invalid request")
    if isinstance(exc, StarletteHTTPException):
        return CscError(str(exc.detail), status=exc.status_code if exc.status_code < 500
                        else 500, error="invalid_request" if exc.status_code < 500
                        else "server_error")
    if isinstance(exc, DataError):
        return CscError("A parameter has invalid characters")
    log.exception("unexpected error in the CSC API (%s %s)", version, method)
    return CscError("The remote service encountered an unexpected condition",
                    error="server_error", status=500)


def response(err: CscError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if err.status == 401 \
        else None
    return JSONResponse({"error": err.error, "error_description": err.message},
                        status_code=err.status, headers=headers)


def _split(path: str) -> tuple[str, str]:
    """('v1', 'signatures/signHash') from '[/prefix]/csc/v1/signatures/signHash'."""
    at = path.find("/csc/")
    if at < 0:
        return "", path
    version, _, method = path[at + 5:].partition("/")
    return version, method


class CscRoute(APIRoute):
    """A route whose every error (dependencies included: the API token, the
    body, the transaction's commit) is answered the CSC way and logged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def csc_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                fail_request(request)
                version, method = _split(request.url.path)
                err = translate(exc, request, version, method)
                log.info("CSC %s %s refused %d %s: %s (user=%s credentialID=%s)",
                         version, method, err.status, err.error, err.message,
                         getattr(request.state, "csc_user", None),
                         getattr(request.state, "csc_credential", None))
                return response(err)

        return csc_handler
