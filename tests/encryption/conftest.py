"""Fixtures of the encryption tests: key stores (software, SoftHSM2), the SDK
over the test app, and a key exported from the software key store."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sealkeeper.crypto.keystore.pkcs11 import Pkcs11KeyStore
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from softhsm import make_softhsm_token, softhsm_missing_reason

SOFTHSM_SKIP_REASON = softhsm_missing_reason()


@pytest.fixture(scope="session")
def enc_softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if SOFTHSM_SKIP_REASON:
        pytest.skip(SOFTHSM_SKIP_REASON)
    return make_softhsm_token(tmp_path_factory.mktemp("enc-softhsm"))


@pytest.fixture(scope="session")
def enc_pkcs11_store(enc_softhsm_token: dict[str, str]) -> Iterator[Pkcs11KeyStore]:
    store = Pkcs11KeyStore(enc_softhsm_token["module"], enc_softhsm_token["label"],
                           enc_softhsm_token["pin"], reconnect_interval=0)
    yield store
    store.close()


@pytest.fixture(scope="session")
def enc_software_store() -> SoftwareKeyStore:
    return SoftwareKeyStore(secrets.token_bytes(32))


@pytest.fixture
def sdk(client: TestClient):
    """``sdk(token)``: the SDK talking to the test app."""
    from sealkeeper.client.api import SealkeeperClient

    made: list[SealkeeperClient] = []

    def make(token: str) -> SealkeeperClient:
        sk = SealkeeperClient("http://testserver", token, transport=client._transport)
        made.append(sk)
        return sk

    yield make
    for sk in made:
        sk.close()
