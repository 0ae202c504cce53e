"""Fixtures of the usage-log tests: a log key in a software key store, bare
organizations made through the real services, and a log on a session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from audit_helpers import BASE_URL, FrozenClock, make_org
from sqlalchemy.orm import Session

from sealkeeper.audit import AuditLog, LogSigner
from sealkeeper.authz import Actor
from sealkeeper.crypto.keystore.base import KeyAlgorithm
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from sealkeeper.runtime import Runtime


@pytest.fixture(scope="session")
def signer() -> LogSigner:
    ks = SoftwareKeyStore(os.urandom(32))
    key = ks.generate(KeyAlgorithm.EC_P256, label="log")
    return LogSigner.from_key_store(ks, key.key_ref, KeyAlgorithm.EC_P256)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def org_id(runtime: Runtime) -> str:
    return make_org(runtime, "Log Org")


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    s = runtime.session_factory()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def log(session: Session, clock: FrozenClock, signer: LogSigner) -> AuditLog:
    return AuditLog(session, clock, base_url=BASE_URL, signer=signer)


@pytest.fixture
def admin_of() -> Callable[[str], Actor]:
    """An administrator of the given organization, for calls that need an actor."""
    return lambda org: Actor(user_id="a" * 32, email="admin@example.com", organization_id=org,
                             is_account_admin=True)
