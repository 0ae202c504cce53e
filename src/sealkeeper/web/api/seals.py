"""Routes: one seal, its status, and its grants."""

from __future__ import annotations

from fastapi import APIRouter

from sealkeeper.accounts.models import User
from sealkeeper.errors import InvalidInput, NotFound
from sealkeeper.web.api.schemas import GrantIn, GrantOut, Ok, SealOut
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["seals"])


@router.get("/seals/{seal_id}", response_model=SealOut)
def get_seal(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    return SealOut.from_row(uow.seals.get_visible(actor, seal_id))


@router.post("/seals/{seal_id}/disable", response_model=SealOut)
def disable_seal(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    """E-seal administrator: nobody can sign with the seal until it is enabled again."""
    return SealOut.from_row(uow.seals.set_enabled(actor, seal_id, False))


@router.post("/seals/{seal_id}/enable", response_model=SealOut)
def enable_seal(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    return SealOut.from_row(uow.seals.set_enabled(actor, seal_id, True))


@router.get("/seals/{seal_id}/grants", response_model=list[GrantOut])
def list_grants(seal_id: str, actor: CurrentActor, uow: UoW,
                include_withdrawn: bool = False) -> list[GrantOut]:
    return [GrantOut.build(g, seal_id, u)
            for g, u in uow.grants.grants_of_seal(actor, seal_id, include_withdrawn)]


@router.post("/seals/{seal_id}/grants", status_code=201, response_model=GrantOut)
def grant(seal_id: str, body: GrantIn, actor: CurrentActor, uow: UoW) -> GrantOut:
    """E-seal administrator: let an employee (by user_id or email) use this seal."""
    if (body.user_id is None) == (body.email is None):
        raise InvalidInput("give exactly one of user_id and email", field="user_id")
    user_id = body.user_id
    if body.email is not None:
        user = uow.accounts.find_by_email(body.email.strip().lower())
        if user is None:
            raise NotFound("employee not found")
        user_id = user.id
    assert user_id is not None
    g = uow.grants.grant(actor, seal_id, user_id)
    u = uow.session.get(User, g.user_id)
    assert u is not None
    return GrantOut.build(g, seal_id, u)


@router.delete("/seals/{seal_id}/grants/{user_id}", response_model=Ok)
def withdraw(seal_id: str, user_id: str, actor: CurrentActor, uow: UoW) -> Ok:
    """E-seal administrator: withdraw the right; effective on the very next request."""
    uow.grants.withdraw(actor, seal_id, user_id)
    return Ok()

