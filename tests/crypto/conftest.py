"""Fixtures for the crypto tests: a SoftHSM2 token and the two key stores."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from sealkeeper.crypto.keystore.pkcs11 import Pkcs11KeyStore
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from softhsm import make_softhsm_token, softhsm_missing_reason

SOFTHSM_SKIP_REASON = softhsm_missing_reason()


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if SOFTHSM_SKIP_REASON:
        pytest.skip(SOFTHSM_SKIP_REASON)
    return make_softhsm_token(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture(scope="session")
def pkcs11_store(softhsm_token: dict[str, str]) -> Iterator[Pkcs11KeyStore]:
    store = Pkcs11KeyStore(softhsm_token["module"], softhsm_token["label"],
                           softhsm_token["pin"], reconnect_interval=0)
    yield store
    store.close()


@pytest.fixture(scope="session")
def software_store() -> SoftwareKeyStore:
    return SoftwareKeyStore(secrets.token_bytes(32))
