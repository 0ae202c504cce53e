"""The one place where errors become HTTP responses for the JSON API.

Every error body is ``{"error": "<code>", "message": "<text>"}`` (plus
``field`` when one field is at fault). Nothing a client sends may produce a
500: unexpected exceptions are logged and answered with a generic message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from sealkeeper import errors as e

log = logging.getLogger(__name__)

STATUS: dict[type[e.SealkeeperError], int] = {
    e.InvalidInput: 400,
    e.Unauthenticated: 401,
    e.QuotaExhausted: 402,
    e.PermissionDenied: 403,
    e.ApprovalRefused: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PayloadTooLarge: 413,
    e.SigningLocked: 423,
    e.KeyStoreUnavailable: 503,
    e.ConfigurationError: 500,
    e.CryptoError: 500,
}


def status_for(exc: e.SealkeeperError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str, field: str | None = None) -> dict[str, str]:
    body = {"error": code, "message": message}
    if field:
        body["field"] = field
    return body


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errs = exc.errors()
    if not errs:
        return "invalid request", None
    first = errs[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON", None
    return (f"{field}: {msg}" if field else msg), field


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.SealkeeperError)
    async def _domain(_: Request, exc: e.SealkeeperError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("server-side error: %s: %s", type(exc).__name__, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = _validation_message(exc)
        return JSONResponse(error_body("invalid_request", message, field), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the validation let through (PostgreSQL
        # refuses NUL characters, for instance): the client's input is at fault.
        log.warning("database refused a value: %s", type(exc.orig).__name__)
        return JSONResponse(error_body("invalid_request", "a value has invalid characters"),
                            status_code=400)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OperationalError)
    async def _busy(_: Request, exc: Exception) -> JSONResponse:
        # Overload, not a fault: every connection is busy (pool timeout) or the
        # database is locked (SQLite's single writer). Nothing was committed.
        if isinstance(exc, OperationalError) and not _is_busy(exc):
            log.exception("database error")
            return JSONResponse(error_body("internal_error", "internal error"),
                                status_code=500)
        log.warning("database busy: %s", type(exc).__name__)
        return JSONResponse(error_body("busy", "the service is busy; retry in a moment"),
                            status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body("internal_error", "internal error"), status_code=500)
