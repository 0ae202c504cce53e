"""FastAPI dependencies: the unit of work (one transaction per request,
committed before the response is sent) and the authenticated actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from sealkeeper.authz import Actor
from sealkeeper.errors import Unauthenticated
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork, unit_of_work


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    # scope="function" (below): the commit runs before the response is sent, so a
    # client never receives an answer whose effects are not committed.
    with unit_of_work(get_runtime(request)) as uow:
        yield uow


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
    return uow.accounts.actor_from_token(token)


CurrentActor = Annotated[Actor, Depends(get_actor, scope="function")]
