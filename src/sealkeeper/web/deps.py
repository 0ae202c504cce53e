"""FastAPI dependencies: the unit of work (one transaction per request,
committed before the response is sent) and the authenticated actor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request

from sealkeeper.audit.security import SecurityEventDraft
from sealkeeper.authz import Actor
from sealkeeper.errors import Unauthenticated
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork, unit_of_work


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def db_slot(request: Request) -> AsyncIterator[None]:
    """At most as many requests hold a database connection as the pool has; the
    others wait here, on the event loop, not in a worker thread. Without it, with
    more requests than connections, requests holding a connection (idle between
    dependencies) could wait for a thread while every thread waits for a
    connection: a deadlock broken only by the pool timeout."""
    async with request.app.state.db_slots:
        yield


def get_uow(request: Request,
            _slot: Annotated[None, Depends(db_slot, scope="function")]) -> Iterator[UnitOfWork]:
    # scope="function" (below): the commit runs before the response is sent, so a
    # client never receives an answer whose effects are not committed.
    with unit_of_work(get_runtime(request)) as uow:
        request.state.uow = uow
        yield uow


def fail_request(request: Request) -> None:
    """A route class that renders errors itself calls this, so that the request's
    unit of work rolls back instead of committing what the failed call wrote."""
    uow = getattr(request.state, "uow", None)
    if uow is not None:
        uow.failed = True


UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("use 'Authorization: Bearer <API token>'")
    return value.strip()


def get_actor(request: Request, uow: UoW) -> Actor:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    if len(token) > 200:
        raise Unauthenticated("invalid or revoked API token")
    try:
        return uow.accounts.actor_from_token(token)
    except Unauthenticated as e:
        # A real token that is revoked, or whose account was deleted or disabled
        # (e.g. between an approval and the signature), goes into the security
        # log of the account's organization; an unknown token names no one.
        owner = uow.accounts.refused_token_owner(token)
        if owner is not None:
            path = request.url.path
            uow.security.add(SecurityEventDraft(
                action="authenticate", reason=e.code,
                message=f"{e.message}: {request.method} {path[:200]} (account {owner.status})",
                organization_id=owner.organization_id, user_id=owner.id,
                api=_api_of(path)))
        raise


def _api_of(path: str) -> str:
    for version in ("v1", "v2"):
        if path.startswith(f"/csc/{version}/"):
            return f"csc-{version}"
    return "native"


CurrentActor = Annotated[Actor, Depends(get_actor, scope="function")]
