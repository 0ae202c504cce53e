"""Issue 3: no private key material appears unencrypted in the database, in
logs or in any response.

- In process, on SQLite and PostgreSQL: a world of two organizations (CA keys
  and a key for every seal), then renewals, re-keys, a compromised key, a CSR,
  revocations, OCSP, time-stamps and CRLs through the app. Every value of
  every table is dumped (and the raw SQLite file read); every software
  ``key_ref`` found is opened with the master key, and neither the PKCS#8 DER
  of any of those keys (raw, base64, hex), nor its secret integers, nor the
  master key, nor a PEM "PRIVATE KEY" marker may appear in the dump, in any
  response body or in any log record.
- Against the running servers (software store and SoftHSM2): the same scan of
  the server's database, data directory, log file and of every response the
  PKI tests received; with SoftHSM2, every private key in the token is
  sensitive and not extractable.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pki_live import (
    Live,
    dump_tables,
    find_leaks,
    gettable,
    master_key_needles,
    master_key_raw,
    needles_for_private_der,
    ocsp_get_path,
    ocsp_request_der,
    open_software_ref,
    server_db_values,
    software_key_needles,
)
from sqlalchemy import Engine, select

from factories import World, auth
from sealkeeper.runtime import Runtime


class Recording:
    """The TestClient, keeping every response body."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.bodies: list[tuple[str, bytes]] = []

    def __call__(self, method: str, url: str, *, expect: int = 200, **kw: Any) -> Any:
        r = self.client.request(method, url, **kw)
        self.bodies.append((f"{method} {url}", r.content))
        assert r.status_code == expect, (method, url, r.status_code, r.text[:300])
        return r


def _refs(engine: Engine) -> dict[str, bytes]:
    from sealkeeper.pki.models import CaKey
    from sealkeeper.seals.models import Seal

    with engine.connect() as c:
        rows = list(c.execute(select(Seal.seal_id, Seal.key_ref)))
        rows += list(c.execute(select(CaKey.role, CaKey.key_ref)))
    return {str(k): bytes(v) for k, v in rows if v is not None}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_no_private_key_in_database_responses_or_logs(
        runtime: Runtime, world: World, client: TestClient, engine: Engine,
        logs: pytest.LogCaptureFixture) -> None:
    call = Recording(client)
    a = world.a
    admin, eseal = auth(a.tokens["account_admin"]), auth(a.tokens["eseal_admin"])
    before = _refs(engine)  # keys that re-keying retires must not surface either

    contract, official = a.seals["contract"], a.seals["official"]
    call("POST", f"/api/v1/seals/{contract}/renew", headers=eseal)
    call("POST", f"/api/v1/seals/{contract}/rekey", headers=eseal)
    call("POST", f"/api/v1/seals/{official}/compromised", headers=eseal)
    call("GET", f"/api/v1/seals/{official}/csr", headers=eseal)
    call("POST", f"/api/v1/seals/{a.seals['financial']}/revoke", headers=eseal,
         json={"reason": "key_compromise"})
    call("DELETE", f"/api/v1/organizations/{a.id}/employees/{a.users['employee2']}",
         headers=admin)
    for sid in (contract, official, a.personal["employee"]):
        call("GET", f"/api/v1/seals/{sid}", headers=eseal)
        call("GET", f"/api/v1/seals/{sid}/certificates", headers=eseal)
        chain = call("GET", f"/api/v1/seals/{sid}/chain.pem", headers=eseal).content
    for path in ("/pki/root.pem", "/pki/root.crt", "/pki/issuing.pem", "/pki/issuing.crt",
                 "/pki/crl/root.crl", "/pki/crl/issuing.crl", "/pki/"):
        call("GET", path)
    from cryptography import x509

    leaf, issuing = x509.load_pem_x509_certificates(chain)[:2]
    req = gettable(lambda: ocsp_request_der(leaf, issuing, nonce=os.urandom(16)))
    call("POST", "/pki/ocsp", content=req)
    call("GET", ocsp_get_path(req))
    call("POST", "/pki/ocsp", content=b"garbage", expect=400)
    from asn1crypto import tsp

    tsq = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32},
        "cert_req": True}).dump()
    call("POST", "/pki/tsa", content=tsq)
    call("GET", "/api/v1/me", headers=eseal)
    call("GET", f"/api/v1/organizations/{a.id}/seals", headers=eseal)
    call("GET", f"/api/v1/organizations/{a.id}/employees", headers=admin)

    values = dump_tables(engine)
    master = master_key_raw(runtime.settings.data_dir)
    needles, count = software_key_needles(master, values)
    assert count >= 5 + 2 * (6 + 3), count  # CA keys, org seals, personal seals
    for name, ref in before.items():
        for n_name, n in needles_for_private_der(open_software_ref(master, ref)).items():
            needles[f"retired {name}:{n_name}"] = n
    needles.update(master_key_needles(runtime.settings.data_dir))
    # The scan can see what it looks for (it is not vacuous).
    some_der = open_software_ref(master, next(iter(before.values())))
    assert find_leaks(b"xx" + some_der + b"yy", needles)
    assert find_leaks(base64.b64encode(some_der), needles)

    leaks = [(where, found) for where, value in values if (found := find_leaks(value, needles))]
    assert not leaks, leaks[:5]
    if engine.dialect.name == "sqlite":
        db = Path(str(engine.url.database))
        for f in (db, db.with_name(db.name + "-wal")):
            if f.exists():
                assert not find_leaks(f.read_bytes(), needles), f
    leaks = [(what, found) for what, body in call.bodies
             if (found := find_leaks(body, needles))]
    assert not leaks, leaks[:5]
    assert len(call.bodies) > 25
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__}"
                     for r in logs.records).encode()
    assert not find_leaks(text, needles)
    # The mail written to files (development mode) carries no key either.
    for f in runtime.settings.data_dir.rglob("*"):
        if f.is_file() and f.name != "master.key":
            assert not find_leaks(f.read_bytes(), needles), f


def test_live_servers_leak_no_private_key(live: Live) -> None:
    """Runs on each key store's server after whatever PKI tests ran before it; the
    server fixture repeats the log/response scan when the server stops."""
    from pki_live import live_needles

    # Exercise the key-using endpoints once more, so the scan has material even
    # if this test runs alone.
    seal = live.seal_of_type("personal")
    sid = seal["seal_id"]
    live.ok("GET", f"/api/v1/seals/{sid}/csr", headers=live.eseal)
    live.ok("POST", f"/api/v1/seals/{sid}/renew", headers=live.eseal)
    live.ok("GET", f"/api/v1/seals/{sid}/chain.pem", headers=live.eseal)
    live.ok("GET", "/pki/crl/issuing.crl")
    needles = live_needles(live)
    if live.backend == "software":
        assert len(needles) >= 14 * 5
    for where, value in server_db_values(live):
        assert not find_leaks(value, needles), where
    for f in live.server.data_dir.rglob("*"):
        if f.is_file() and f.name != "master.key":
            assert not find_leaks(f.read_bytes(), needles), f
    assert len(live.responses) >= 5
    for what, body in live.scan_text():
        assert not find_leaks(body, needles), what
    master = live.server.data_dir / "master.key"
    if live.pkcs11 is not None:
        _token_keys_are_sensitive(live.pkcs11)
        assert not master.exists()  # no software keys, no master key
    else:  # generated on first start, owner-only
        assert stat.S_IMODE(master.stat().st_mode) == 0o600


def _token_keys_are_sensitive(token: dict[str, str]) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive, NoSuchToken

    lib = pkcs11.lib(token["module"])
    try:
        tok = lib.get_token(token_label=token["label"])
    except NoSuchToken:  # the module was initialised before this token existed
        lib.reinitialize()
        tok = lib.get_token(token_label=token["label"])
    with tok.open(user_pin=token["pin"]) as session:
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
        assert len(keys) >= 5 + 6 + 3
        for key in keys:
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
            assert key[Attribute.NEVER_EXTRACTABLE] is True
            with pytest.raises(AttributeSensitive):
                key[Attribute.VALUE if key.key_type == pkcs11.KeyType.EC
                    else Attribute.PRIVATE_EXPONENT]
