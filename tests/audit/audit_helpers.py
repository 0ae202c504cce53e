"""Helpers of the usage-log tests (imported by name: pytest's conftest modules
are not importable reliably across directories)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from factories import LETTER, PASSWORD
from sealkeeper.audit import EntryDraft
from sealkeeper.crypto.digests import Hashed
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork

BASE_URL = "http://testserver"


class FrozenClock:
    """A clock the test moves by hand (each call advances it by one microsecond,
    so every append gets a distinct time)."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def make_org(rt: Runtime, name: str) -> str:
    """A (pending) organization made through the real services; enough for a log."""
    uow = UnitOfWork(rt)
    try:
        acc = uow.accounts
        slug = name.lower().replace(" ", "")
        user = acc.signup(f"admin@{slug}.example", PASSWORD, name)
        org = uow.orgs.apply(acc.actor_for(user), legal_name=name,
                             registration_number="R-" + slug, domains=[f"{slug}.example"],
                             eseal_admin_email=f"seals@{slug}.example", letter=LETTER)
        uow.outbox.drain()
        uow.commit()
        return org.id
    finally:
        uow.close()


def signature(i: int, *, user: str = "u" * 32, email: str = "alice@example.com",
              seal: str = "SEAL0001", file_name: str | None = None,
              api: str = "native") -> EntryDraft:
    """The draft of the i-th test signature."""
    return EntryDraft.signature(
        seal_id=seal, seal_name="Contract Seal", seal_type="contract", user_id=user,
        user_email=email, file_name=file_name or f"contract-{i}.pdf",
        digest=Hashed.of(f"document {i}".encode()), api=api, approval_id=f"appr-{i // 10}")
