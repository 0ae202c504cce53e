"""Opening the runtime and a unit of work for a command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sealkeeper.errors import NotFound

if TYPE_CHECKING:  # the server stack is imported only by the commands that need it
    from sealkeeper.authz import Actor
    from sealkeeper.runtime import Runtime
    from sealkeeper.services import UnitOfWork


def open_runtime() -> Runtime:
    from sealkeeper.config import load_settings
    from sealkeeper.runtime import Runtime

    return Runtime.build(load_settings())


@contextmanager
def unit_of_work(rt: Runtime) -> Iterator[UnitOfWork]:
    from sealkeeper.services import unit_of_work as transaction

    with transaction(rt) as uow:
        yield uow


def operator_actor(uow: UnitOfWork, email: str | None) -> Actor:
    """Commands run on the server act as an operator account (the first one by default)."""
    from sqlalchemy import select

    from sealkeeper.accounts.models import User

    q = select(User).where(User.is_operator.is_(True)).order_by(User.created_at)
    if email:
        q = q.where(User.email == email.strip().lower())
    user = uow.session.scalars(q).first()
    if user is None:
        raise NotFound("no operator account: create one with 'sealkeeper operator create'")
    return uow.accounts.actor_for(user)
