"""The unit of work: one database session plus the services built on it.

Each request or command builds one :class:`UnitOfWork`, calls services, then
commits (and only then sends queued mail). Services never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property

from sqlalchemy.orm import Session

from sealkeeper.accounts.service import AccountService
from sealkeeper.clock import Clock
from sealkeeper.mail import Outbox
from sealkeeper.orgs.employees import EmployeeService
from sealkeeper.orgs.service import OrganizationService
from sealkeeper.pki.service import PkiService
from sealkeeper.quota.service import QuotaService
from sealkeeper.runtime import Runtime
from sealkeeper.seals.service import GrantService, SealService

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, runtime: Runtime, session: Session | None = None) -> None:
        self.rt = runtime
        self.session = session if session is not None else runtime.session_factory()
        self.outbox = Outbox()
        self._after_commit: list[Callable[[], None]] = []

    @property
    def clock(self) -> Clock:
        return self.rt.clock

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` only once the transaction is committed (e.g. destroy a
        retired key in the HSM)."""
        self._after_commit.append(action)

    def commit(self) -> None:
        self.session.commit()
        self.rt.mailer.send_all(self.outbox)
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("post-commit action failed")

    def rollback(self) -> None:
        self.session.rollback()
        self.outbox.drain()
        self._after_commit = []

    def close(self) -> None:
        self.session.close()

    @cached_property
    def accounts(self) -> AccountService:
        return AccountService(self.session, self.clock, self.rt.passwords)

    @cached_property
    def pki(self) -> PkiService:
        return PkiService(self.session, self.clock, self.rt.keystore, self.rt.settings,
                          self.rt.pki_cache)

    @cached_property
    def seals(self) -> SealService:
        return SealService(self.session, self.clock, on_create=self.pki.provision_seal,
                           on_revoke=self.pki.revoke_seal)

    @cached_property
    def grants(self) -> GrantService:
        return GrantService(self.session, self.clock, self.seals)

    @cached_property
    def orgs(self) -> OrganizationService:
        return OrganizationService(self.session, self.clock, self.accounts, self.seals,
                                   self.outbox, self.rt.settings.base_url)

    @cached_property
    def employees(self) -> EmployeeService:
        return EmployeeService(self.session, self.clock, self.accounts, self.orgs, self.seals,
                               self.grants, self.outbox, self.rt.settings.base_url)

    @cached_property
    def quota(self) -> QuotaService:
        return QuotaService(self.session, self.clock)
