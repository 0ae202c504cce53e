"""Routes: sign-up, sign-in for a token, employee validation, and /me."""

from __future__ import annotations

from fastapi import APIRouter

from sealkeeper.accounts.models import User
from sealkeeper.errors import NotFound
from sealkeeper.web.api.schemas import (
    LoginIn,
    MeOut,
    MySealOut,
    NewTokenOut,
    Ok,
    SealOut,
    SignupIn,
    SignupOut,
    TokenIn,
    TokenOut,
    UserOut,
    ValidateIn,
)
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["accounts"])


def _new_token_out(tok: object, plaintext: str) -> NewTokenOut:
    base = TokenOut.from_row(tok)  # type: ignore[arg-type]
    return NewTokenOut(**base.model_dump(), token=plaintext)


@router.post("/signup", status_code=201, response_model=SignupOut)
def signup(body: SignupIn, uow: UoW) -> SignupOut:
    """Create an account (for example to apply for an organization) and a first API token."""
    user = uow.accounts.signup(body.email, body.password, body.display_name)
    tok, plaintext = uow.accounts.create_token(uow.accounts.actor_for(user), "sign-up")
    return SignupOut(user=UserOut.from_row(user), token=_new_token_out(tok, plaintext))


@router.post("/auth/token", status_code=201, response_model=NewTokenOut)
def sign_in(body: LoginIn, uow: UoW) -> NewTokenOut:
    """Exchange an email and password for a new personal API token."""
    user = uow.accounts.authenticate_password(body.email, body.password)
    tok, plaintext = uow.accounts.create_token(uow.accounts.actor_for(user), body.token_name)
    return _new_token_out(tok, plaintext)


@router.post("/employees/validate", response_model=UserOut)
def validate_employee(body: ValidateIn, uow: UoW) -> UserOut:
    """Follow the mailed validation link: choose a password, activate the account."""
    return UserOut.from_row(uow.employees.validate(body.token, body.password, body.display_name))


@router.get("/me", response_model=MeOut)
def me(actor: CurrentActor, uow: UoW) -> MeOut:
    user = uow.session.get(User, actor.user_id)
    if user is None:
        raise NotFound("user not found")
    return MeOut.build(user, actor)


@router.get("/me/seals", response_model=list[MySealOut])
def my_seals(actor: CurrentActor, uow: UoW) -> list[MySealOut]:
    """The seals I may use, with their SealIDs: my personal e-signature and my grants."""
    return [MySealOut(**SealOut.from_row(s).model_dump(), access=how)
            for s, how in uow.seals.my_seals(actor)]


@router.get("/me/tokens", response_model=list[TokenOut])
def list_tokens(actor: CurrentActor, uow: UoW) -> list[TokenOut]:
    return [TokenOut.from_row(t) for t in uow.accounts.list_tokens(actor)]


@router.post("/me/tokens", status_code=201, response_model=NewTokenOut)
def create_token(body: TokenIn, actor: CurrentActor, uow: UoW) -> NewTokenOut:
    """Create a personal API token, optionally limited to some SealIDs. Shown once."""
    if body.seal_ids is not None:
        for seal_id in body.seal_ids:
            uow.seals.get_visible(actor, seal_id)
    tok, plaintext = uow.accounts.create_token(actor, body.name, body.seal_ids)
    return _new_token_out(tok, plaintext)


@router.delete("/me/tokens/{token_id}", response_model=Ok)
def revoke_token(token_id: str, actor: CurrentActor, uow: UoW) -> Ok:
    uow.accounts.revoke_token(actor, token_id)
    return Ok()
