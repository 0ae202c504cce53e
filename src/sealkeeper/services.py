"""The unit of work: one database session plus the services built on it.

Each request or command builds one :class:`UnitOfWork`, calls services, then
commits (and only then sends queued mail). Services never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import TypeVar

from sqlalchemy.orm import Session

from sealkeeper.accounts.service import AccountService
from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.audit.security import PendingSecurityEvents, record_security_event
from sealkeeper.audit.service import AuditLog
from sealkeeper.audit.signer import LogSigner
from sealkeeper.clock import Clock
from sealkeeper.encryption.service import EncryptionService
from sealkeeper.mail import Outbox
from sealkeeper.orgs.employees import EmployeeService
from sealkeeper.orgs.service import OrganizationService
from sealkeeper.pki.models import CaRole
from sealkeeper.pki.service import PkiService
from sealkeeper.quota.service import QuotaService
from sealkeeper.runtime import Runtime
from sealkeeper.seals.service import GrantService, SealImages, SealService
from sealkeeper.signing.approvals import ApprovalService
from sealkeeper.signing.service import SigningService

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextmanager
def unit_of_work(runtime: Runtime) -> Iterator[UnitOfWork]:
    """One transaction: committed when the block ends normally, rolled back
    (refusals still recorded) when it raises. Every transport uses this."""
    uow = UnitOfWork(runtime)
    try:
        yield uow
        if uow.failed:  # the transport answered with an error it rendered itself
            uow.rollback()
        else:
            uow.commit()
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.close()


class UnitOfWork:
    def __init__(self, runtime: Runtime, session: Session | None = None) -> None:
        self.rt = runtime
        self.session = session if session is not None else runtime.session_factory()
        self.outbox = Outbox()
        self.security = PendingSecurityEvents()
        #: Set by a transport that turned an error into a response itself (so the
        #: exception never reached the unit of work): roll back, do not commit.
        self.failed = False
        self._after_commit: list[Callable[[], None]] = []

    @property
    def clock(self) -> Clock:
        return self.rt.clock

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` only once the transaction is committed (e.g. destroy a
        retired key in the HSM)."""
        self._after_commit.append(action)

    def durable(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a transaction of its own, committed before this returns
        (e.g. counting a wrong approval password even though the request fails).
        Nothing may be pending in the unit of work when it is called."""
        if self.session.new or self.session.dirty or self.session.deleted:
            raise RuntimeError("durable() called with pending changes")
        self.session.commit()
        result = fn(self.session)
        self.session.commit()
        return result

    def commit(self) -> None:
        for draft in self.security.drain():
            record_security_event(self.session, self.clock, draft)
        self.session.commit()
        self.rt.mailer.send_all(self.outbox)
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("post-commit action failed")

    def rollback(self) -> None:
        """Undo the work; refusals recorded meanwhile are still written, in a
        transaction of their own."""
        self.session.rollback()
        self.outbox.drain()
        self._after_commit = []
        self.security.write(self.rt.session_factory, self.clock)

    def close(self) -> None:
        self.session.close()

    @cached_property
    def accounts(self) -> AccountService:
        return AccountService(self.session, self.clock, self.rt.passwords)

    @cached_property
    def pki(self) -> PkiService:
        return PkiService(self.session, self.clock, self.rt.keystore, self.rt.settings,
                          self.rt.pki_cache, log=self.log_event)

    @cached_property
    def seals(self) -> SealService:
        return SealService(self.session, self.clock, on_create=self.pki.provision_seal,
                           on_revoke=self.pki.revoke_seal, log=self.log_event)

    @cached_property
    def seal_images(self) -> SealImages:
        return SealImages(self.session, self.seals)

    @cached_property
    def grants(self) -> GrantService:
        return GrantService(self.session, self.clock, self.seals, log=self.log_event)

    @cached_property
    def orgs(self) -> OrganizationService:
        return OrganizationService(self.session, self.clock, self.accounts, self.seals,
                                   self.outbox, self.rt.settings.base_url)

    @cached_property
    def employees(self) -> EmployeeService:
        return EmployeeService(self.session, self.clock, self.accounts, self.orgs, self.seals,
                               self.grants, self.outbox, self.rt.settings.base_url,
                               on_delete=lambda u: self.encryption.revoke_user_keys(u.id))

    @cached_property
    def quota(self) -> QuotaService:
        return QuotaService(self.session, self.clock)

    def log_event(self, organization_id: str, draft: EntryDraft) -> None:
        """Append one entry to the organization's tamper-evident log (grants,
        withdrawals, seal status, re-keys, password resets)."""
        self.audit.append(organization_id, [draft])

    @cached_property
    def audit(self) -> AuditLog:
        def signer() -> LogSigner:
            return LogSigner.from_key_handle(self.pki.key(CaRole.LOG).handle)

        return AuditLog(self.session, self.clock, base_url=self.rt.settings.base_url,
                        signer=signer)

    @cached_property
    def approvals(self) -> ApprovalService:
        return ApprovalService(self.session, self.clock, self.rt.keystore, self.rt.passwords,
                               self.durable,
                               timedelta(seconds=self.rt.settings.approval_ttl_seconds),
                               log=self.log_event)

    @cached_property
    def signing(self) -> SigningService:
        return SigningService(self.session, self.clock, pki=self.pki,
                              quota=self.quota, audit=self.audit, approvals=self.approvals,
                              security=self.security, templates=self.rt.templates,
                              batch_limit=self.rt.settings.sign_batch_limit)

    @cached_property
    def encryption(self) -> EncryptionService:
        return EncryptionService(self.session, self.clock, pki=self.pki, audit=self.audit,
                                 approvals=self.approvals, security=self.security)
