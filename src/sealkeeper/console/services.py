"""The console's services, built on a request's :class:`~sealkeeper.services.UnitOfWork`."""

from __future__ import annotations

from functools import cached_property

from sealkeeper.console.domain_proofs import DomainProofs
from sealkeeper.console.sessions import ConsoleSessions
from sealkeeper.console.throttle import SignInThrottling
from sealkeeper.console.totp import TotpService
from sealkeeper.services import UnitOfWork

__all__ = ["ConsoleServices"]


class ConsoleServices:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    @cached_property
    def sessions(self) -> ConsoleSessions:
        return ConsoleSessions(self.uow.session, self.uow.clock, self.uow.rt.settings)

    @cached_property
    def throttle(self) -> SignInThrottling:
        return SignInThrottling(self.uow.session, self.uow.clock, self.uow.rt.settings)

    @cached_property
    def totp(self) -> TotpService:
        return TotpService(self.uow.session, self.uow.clock, self.uow.rt.keystore)

    @cached_property
    def domain_proofs(self) -> DomainProofs:
        return DomainProofs(self.uow.session, self.uow.clock, self.uow.orgs,
                            self.uow.rt.keystore, self.uow.outbox, self.uow.durable,
                            self.uow.rt.settings)
