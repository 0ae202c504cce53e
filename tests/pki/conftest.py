"""The running servers of the PKI acceptance tests (issue 3).

``live`` is ``sealkeeper serve --demo`` on a fresh data directory (so the CA
is created by the first ``serve``), once per key store: the software store and
a SoftHSM2 token. One server per key store serves every test of tests/pki that
uses it; tests pick distinct seals and employees so they do not depend on
each other's order. When the server stops, its log and every response body
the tests saw are scanned once more for private key material.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pki_live import Live, find_leaks, live_needles

from server import Server
from softhsm import make_softhsm_token, softhsm_missing_reason


def start_live(backend: str, base: Path) -> Live:
    env: dict[str, str] = {}
    token: dict[str, str] | None = None
    if backend == "pkcs11":
        reason = softhsm_missing_reason()
        if reason:
            pytest.skip(reason)
        token = make_softhsm_token(base / "softhsm")
        env = {"SEALKEEPER_KEYSTORE": "pkcs11", "SEALKEEPER_PKCS11_MODULE": token["module"],
               "SEALKEEPER_PKCS11_TOKEN_LABEL": token["label"],
               "SEALKEEPER_PKCS11_PIN": token["pin"], "SOFTHSM2_CONF": token["conf_path"]}
    server = Server(base / "data", args=("--demo",), env=env).start()
    work = base / "work"
    work.mkdir()
    return Live(backend=backend, server=server, work=work, pkcs11=token)


@pytest.fixture(scope="session", params=["software", "pkcs11"])
def live(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    srv = start_live(request.param, tmp_path_factory.mktemp(f"pki-{request.param}"))
    try:
        yield srv
    finally:
        srv.http.close()
        srv.server.stop()
    needles = live_needles(srv)
    leaks = [(what, found) for what, body in srv.scan_text()
             if (found := find_leaks(body, needles))]
    assert not leaks, f"private key material seen: {leaks[:5]}"
