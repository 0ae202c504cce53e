"""The CSC API over HTTP (TestClient, SQLite and PostgreSQL): every method at
/csc/v1 and /csc/v2 with the v1 and v2 field names, and the refusals, which are
always application/json {"error", "error_description"} with a CSC code, never
a 500."""

from __future__ import annotations

import base64
import datetime
import hashlib
import logging

import pytest
from asn1crypto import algos, cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from factories import PASSWORD, auth

VERSIONS = ["v1", "v2"]
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def h(data: bytes, alg: str = "sha256") -> str:
    return b64(hashlib.new(alg, data).digest())


def set_pin(client, token: str, pin: str = "1234") -> None:
    r = client.post("/api/v1/me/approval-password", headers=auth(token),
                    json={"approval_password": pin})
    assert r.status_code == 201, r.text


def csc(client, version: str, method: str, token: str | None, body, *, raw: bool = False):
    headers = auth(token) if token else {}
    if raw:
        return client.post(f"/csc/{version}/{method}", headers=headers, content=body)
    return client.post(f"/csc/{version}/{method}", headers=headers, json=body)


def refused(r, status: int, error: str = "invalid_request", *, says: str | None = None) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    if says:
        assert says.lower() in body["error_description"].lower(), body
    return str(body["error_description"])


def authorize(client, version, token, cid, hashes_b64, pin="1234", *, v2_names=None):
    v2 = (version == "v2") if v2_names is None else v2_names
    body = {"credentialID": cid, "numSignatures": len(hashes_b64)}
    if v2:
        body |= {"hashes": hashes_b64, "hashAlgorithmOID": SHA256,
                 "authData": [{"id": "PIN", "value": pin}]}
    else:
        body |= {"hash": hashes_b64, "PIN": pin}
    return csc(client, version, "credentials/authorize", token, body)


def sign_hash(client, version, token, cid, sad, hashes_b64, *, sign_algo=ECDSA_SHA256,
              v2_names=None, **extra):
    v2 = (version == "v2") if v2_names is None else v2_names
    body = {"credentialID": cid, "SAD": sad, "signAlgo": sign_algo, **extra}
    body |= {"hashes": hashes_b64, "hashAlgorithmOID": SHA256} if v2 else \
        {"hash": hashes_b64, "hashAlgo": SHA256}
    return csc(client, version, "signatures/signHash", token, body)


def usage_entries(runtime, org_id):
    from sqlalchemy import select

    from sealkeeper.audit.models import LogEntry

    with runtime.session_factory() as s:
        return list(s.scalars(select(LogEntry).where(LogEntry.organization_id == org_id)
                              .order_by(LogEntry.seq)))


def security_events(runtime, org_id):
    from sqlalchemy import select

    from sealkeeper.audit.models import SecurityEvent

    with runtime.session_factory() as s:
        return list(s.scalars(select(SecurityEvent)
                              .where(SecurityEvent.organization_id == org_id)
                              .order_by(SecurityEvent.created_at)))


def quota_balance(client, world) -> int:
    r = client.get(f"/api/v1/organizations/{world.a.id}/quota",
                   headers=auth(world.a.tokens["account_admin"]))
    assert r.status_code == 200, r.text
    return int(r.json()["balance"])


# -- info, list, credential info ----------------------------------------------

def test_info_needs_no_token(client):
    for version in VERSIONS:
        for r in (client.post(f"/csc/{version}/info", json={}),
                  client.post(f"/csc/{version}/info"),
                  client.get(f"/csc/{version}/info")):
            assert r.status_code == 200, r.text
            info = r.json()
            assert info["specs"] == {"v1": "1.0.4.0", "v2": "2.0.0.2"}[version]
            assert info["name"] == "sealkeeper" and info["authType"] == ["external"]
            assert set(info["methods"]) == {
                "info", "credentials/list", "credentials/info", "credentials/authorize",
                "credentials/extendTransaction", "signatures/signHash", "signatures/timestamp"}
            for key in ("logo", "region", "lang", "description"):
                assert isinstance(info[key], str) and info[key]
        if version == "v2":
            assert ECDSA_SHA256 in info["signAlgorithms"]["algos"]
        logo = client.get(info["logo"].replace("http://testserver", ""))
        assert logo.status_code == 200 and logo.content.startswith(b"\x89PNG")


def _check_list(client, world):
    for version in VERSIONS:
        a = world.a
        r = csc(client, version, "credentials/list", a.tokens["employee"], {})
        assert r.status_code == 200, r.text
        assert sorted(r.json()["credentialIDs"]) == sorted(
            [a.personal["employee"], a.seals["contract"]])
        assert "credentialInfos" not in r.json()
        # employee2 has no grant: only the personal seal; an outsider has none
        r = csc(client, version, "credentials/list", a.tokens["employee2"], {})
        assert r.json()["credentialIDs"] == [a.personal["employee2"]]
        r = csc(client, version, "credentials/list", world.outsider_token, {})
        assert r.json()["credentialIDs"] == []
        # with details (v2), signer first in the chain
        r = csc(client, version, "credentials/list", a.tokens["employee"],
                {"credentialInfo": True, "certificates": "chain", "certInfo": True,
                 "authInfo": True, "onlyValid": True})
        assert r.status_code == 200, r.text
        infos = {i["credentialID"]: i for i in r.json()["credentialInfos"]}
        assert set(infos) == set(r.json()["credentialIDs"]) and r.json()["onlyValid"] is True
        contract = infos[a.seals["contract"]]
        assert len(contract["cert"]["certificates"]) == 3
        assert contract["multisign"] == 100 and contract["SCAL"] == "2"


def _check_info(client, world):
    for version in VERSIONS:
        a = world.a
        r = csc(client, version, "credentials/info", a.tokens["employee"],
                {"credentialID": a.seals["contract"], "certificates": "chain", "certInfo": True,
                 "authInfo": True})
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["key"] == {"status": "enabled", "len": 256, "curve": "1.2.840.10045.3.1.7",
                               "algo": [ECDSA_SHA256, "1.2.840.10045.4.3.3",
                                        "1.2.840.10045.4.3.4"]}
        certs = [x509.load_der_x509_certificate(base64.b64decode(c))
                 for c in info["cert"]["certificates"]]
        assert len(certs) == 3
        signer, issuing, root = certs
        assert signer.issuer == issuing.subject and issuing.issuer == root.subject
        assert root.issuer == root.subject
        assert info["cert"]["status"] == "valid"
        assert info["cert"]["subjectDN"] == signer.subject.rfc4514_string()
        assert info["cert"]["issuerDN"] == issuing.subject.rfc4514_string()
        assert int(info["cert"]["serialNumber"], 16) == signer.serial_number
        assert len(info["cert"]["validFrom"]) == 15 and info["cert"]["validTo"].endswith("Z")
        assert info["authMode"] == "explicit" and info["SCAL"] == "2"
        assert info["PIN"]["presence"] == "true" and info["PIN"]["format"] == "N"
        assert info["multisign"] == 100 and info["lang"]
        if version == "v2":
            assert info["auth"]["mode"] == "explicit"
            assert info["auth"]["objects"][0]["id"] == "PIN"
        # certificates: single (the default) and none
        r = csc(client, version, "credentials/info", a.tokens["employee"],
                {"credentialID": a.seals["contract"]})
        assert len(r.json()["cert"]["certificates"]) == 1
        r = csc(client, version, "credentials/info", a.tokens["employee"],
                {"credentialID": a.seals["contract"], "certificates": "none"})
        assert "certificates" not in r.json()["cert"]


def _check_info_refusals(client, world):
    for version in VERSIONS:
        a, emp = world.a, world.a.tokens["employee"]
        # unknown, another organization's, not granted: all "Invalid parameter credentialID"
        for cid in ("SEAL-AAAA-BBBB-CCCC-DDDD", world.b.seals["contract"], a.seals["official"],
                    a.personal["employee2"]):
            refused(csc(client, version, "credentials/info", emp, {"credentialID": cid}), 400,
                    says="Invalid parameter credentialID")
        refused(csc(client, version, "credentials/info", emp, {}), 400,
                says="Missing (or invalid type) string parameter credentialID")
        refused(csc(client, version, "credentials/info", emp, {"credentialID": 12}), 400,
                says="string parameter credentialID")
        refused(csc(client, version, "credentials/info", emp,
                    {"credentialID": a.seals["contract"], "certificates": "all"}), 400,
                says="Invalid parameter certificates")
        refused(csc(client, version, "credentials/list", emp, {"userID": "someone"}), 400,
                says="userID")
        # tokens
        refused(csc(client, version, "credentials/info", None,
                    {"credentialID": a.seals["contract"]}), 401, "invalid_token")
        r = csc(client, version, "credentials/list", "sk_not_a_token", {})
        refused(r, 401, "invalid_token")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = client.post(f"/csc/{version}/credentials/list", headers={"Authorization": "Basic x"})
        refused(r, 401, "invalid_token")


def test_credentials_list_and_info(client, world):
    _check_list(client, world)
    _check_info(client, world)
    _check_info_refusals(client, world)


# -- authorize and signHash ---------------------------------------------------

def test_authorize_and_sign_hash(client, world, runtime):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    for version, names in [(v, n) for v in VERSIONS for n in VERSIONS]:
        cid = a.seals["contract"]
        digests = [hashlib.sha256(f"doc {i} {version} {names}".encode()).digest()
                   for i in range(3)]
        hs = [b64(d) for d in digests]
        before = quota_balance(client, world)
        r = authorize(client, version, emp, cid, hs, v2_names=names == "v2")
        assert r.status_code == 200, r.text
        sad, expires = r.json()["SAD"], r.json()["expiresIn"]
        assert sad.startswith("ska_") and 0 < expires <= 300
        r = sign_hash(client, version, emp, cid, sad, hs, v2_names=names == "v2")
        assert r.status_code == 200, r.text
        sigs = [base64.b64decode(s) for s in r.json()["signatures"]]
        assert len(sigs) == 3
        info = csc(client, version, "credentials/info", emp, {"credentialID": cid}).json()
        key = x509.load_der_x509_certificate(
            base64.b64decode(info["cert"]["certificates"][0])).public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        for d, sig in zip(digests, sigs, strict=True):  # DER ECDSA, in the order given
            key.verify(sig, d, ec.ECDSA(Prehashed(hashes.SHA256())))
        # one quota unit and one usage-log entry per signature, with the API label
        assert quota_balance(client, world) == before - 3
        mine = {d.hex() for d in digests}
        entries = [e for e in usage_entries(runtime, a.id)
                   if e.kind == "signature" and e.file_digest in mine]
        assert len(entries) == 3
        assert {e.api for e in entries} == {f"csc-{version}"}
        assert sorted(e.file_digest for e in entries) == sorted(d.hex() for d in digests)
        assert {e.seal_id for e in entries} == {cid}
        # the SAD is single-use
        r = sign_hash(client, version, emp, cid, sad, hs, v2_names=names == "v2")
        refused(r, 400, says="already used")
        assert quota_balance(client, world) == before - 3


@pytest.mark.parametrize("version", VERSIONS)
def test_sad_is_bound_to_hashes_seal_user_and_time(client, world, runtime, version):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    cid = a.seals["contract"]
    h1, h2 = h(b"one"), h(b"two")
    sad = authorize(client, version, emp, cid, [h1]).json()["SAD"]
    # another hash, another seal, another user: refused, and the SAD stays usable
    refused(sign_hash(client, version, emp, cid, sad, [h2]), 400,
            says="Hash is not authorized by the SAD")
    refused(sign_hash(client, version, emp, cid, sad, [h1, h2]), 400,
            says="Hash is not authorized by the SAD")
    refused(sign_hash(client, version, emp, a.personal["employee"], sad, [h1]), 400,
            says="another seal")
    other = a.tokens["employee2"]
    refused(sign_hash(client, version, other, cid, sad, [h1]), 403, "access_denied")
    r = client.post(f"/api/v1/seals/{cid}/grants", headers=auth(a.tokens["eseal_admin"]),
                    json={"user_id": a.users["employee2"]})
    assert r.status_code == 201, r.text
    refused(sign_hash(client, version, other, cid, sad, [h1]), 400, says="Invalid parameter SAD")
    refused(sign_hash(client, version, emp, cid, "ska_forged", [h1]), 400,
            says="Invalid parameter SAD")
    r = sign_hash(client, version, emp, cid, sad, [h1])
    assert r.status_code == 200, r.text
    # expiry
    sad = authorize(client, version, emp, cid, [h2]).json()["SAD"]
    real = runtime.clock
    later = real() + datetime.timedelta(minutes=6)
    runtime.clock = lambda: later
    try:
        refused(sign_hash(client, version, emp, cid, sad, [h2]), 400, says="SAD expired")
    finally:
        runtime.clock = real


def test_grant_withdrawn_after_authorize_refuses(client, world):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    cid = a.seals["contract"]
    sad = authorize(client, "v1", emp, cid, [h(b"x")]).json()["SAD"]
    version = "v2"   # a SAD from /csc/v1 is good at /csc/v2 too
    r = client.delete(f"/api/v1/seals/{cid}/grants/{a.users['employee']}",
                      headers=auth(a.tokens["eseal_admin"]))
    assert r.status_code == 200, r.text
    refused(sign_hash(client, version, emp, cid, sad, [h(b"x")]), 403, "access_denied",
            says="grant")


@pytest.mark.parametrize("version", VERSIONS)
def test_wrong_pin_and_lock(client, world, runtime, version, caplog):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp, "2468")
    cid = a.seals["contract"]
    code = "invalid_pin" if version == "v1" else "invalid_authentication_data"
    with caplog.at_level(logging.INFO, logger="sealkeeper.csc"):
        for i in range(5):
            text = refused(authorize(client, version, emp, cid, [h(b"x")], "1357"), 400, code,
                           says="The PIN is invalid")
            assert ("left" in text) == (i < 4)
    # the refusal is logged fully on the server (pyHanko never shows it)
    assert any("The PIN is invalid" in rec.getMessage() and a.emails["employee"]
               in rec.getMessage() for rec in caplog.records)
    refused(authorize(client, version, emp, cid, [h(b"x")], "2468"), 400,
            says="PIN locked" if version == "v1" else "Credential locked")
    # every refusal is in the security log: who, which seal, what, why, which API
    events = security_events(runtime, a.id)
    assert sorted((e.action, e.reason) for e in events) == \
        [("authorize", "approval_refused")] * 5 + [("authorize", "signing_locked")]
    assert {(e.user_id, e.seal_id, e.api) for e in events} == \
        {(a.users["employee"], cid, f"csc-{version}")}
    # malformed PINs are malformed requests, not tries
    other = a.tokens["employee2"]
    set_pin(client, other, "1111")
    for bad in ("12345", "abcd", ""):
        refused(authorize(client, version, other, a.personal["employee2"], [h(b"x")], bad), 400,
                says="PIN")
    r = authorize(client, version, other, a.personal["employee2"], [h(b"x")], "1111")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("version", VERSIONS)
def test_authorize_refusals(client, world, version):
    a, emp = world.a, world.a.tokens["employee"]
    cid = a.seals["contract"]
    # no approval password yet
    refused(authorize(client, version, emp, cid, [h(b"x")]), 400, says="approval password")
    set_pin(client, emp)
    good = {"credentialID": cid, "numSignatures": 1, "hash": [h(b"x")], "PIN": "1234"}

    def check(body, says, status=400, error="invalid_request"):
        refused(csc(client, version, "credentials/authorize", emp, body), status, error,
                says=says)

    check({**good, "numSignatures": 2}, "numSignatures")
    check({**good, "numSignatures": 0}, "Invalid value for parameter numSignatures")
    check({**good, "numSignatures": "1"}, "integer parameter numSignatures")
    check({**good, "numSignatures": True}, "integer parameter numSignatures")
    check({k: v for k, v in good.items() if k != "numSignatures"}, "numSignatures")
    check({**good, "numSignatures": 101, "hash": [h(str(i).encode()) for i in range(101)]},
          "Numbers of signatures is too high")
    check({k: v for k, v in good.items() if k != "hash"}, "parameter hash")
    check({**good, "hash": []}, "Empty hash")
    check({**good, "hash": "abc"}, "array parameter hash")
    check({**good, "hash": ["not base64!"]}, "Invalid Base64 hash")
    check({**good, "hash": [b64(b"short")]}, "Invalid digest value length")
    check({**good, "hash": [h(b"x")], "hashAlgo": SHA384}, "Invalid digest value length")
    check({**good, "hashAlgo": "1.3.14.3.2.26"}, "too weak")
    check({**good, "hashAlgo": "1.2.3"}, "Invalid parameter hashAlgo")
    check({**good, "hash": [h(b"x"), h(b"y", "sha512")], "numSignatures": 2},
          "Invalid digest value length")
    check({k: v for k, v in good.items() if k != "PIN"}, "PIN")
    check({k: v for k, v in good.items() if k != "PIN"} | {"authData": [{"id": "OTP"}]},
          "authData")
    check({k: v for k, v in good.items() if k != "PIN"} | {"authData": "1234"}, "authData")
    check({**good, "credentialID": world.b.seals["contract"]}, "credentialID")
    check({**good, "credentialID": a.seals["official"]}, "grant", 403, "access_denied")
    check({**good, "PIN": PASSWORD}, "Invalid parameter PIN")   # the account password is not it
    # v2 names with v1 values mixed in are fine; hashAlgorithmOID names the algorithm
    r = csc(client, version, "credentials/authorize", emp,
            {"credentialID": cid, "numSignatures": 1, "hashes": [h(b"x", "sha384")],
             "hashAlgorithmOID": SHA384, "authData": [{"id": "PIN", "value": "1234"}]})
    assert r.status_code == 200, r.text


def test_sign_hash_refusals(client, world):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    for version in VERSIONS:
        cid = a.seals["contract"]
        x = h(b"x")
        sad = authorize(client, version, emp, cid, [x]).json()["SAD"]

        def check(says, status=400, error="invalid_request", **over):
            body = {"credentialID": cid, "SAD": sad, "hash": [x], "hashAlgo": SHA256,
                    "signAlgo": ECDSA_SHA256, **over}
            body = {k: v for k, v in body.items() if v is not None}
            refused(csc(client, version, "signatures/signHash", emp, body), status, error,
                    says=says)

        check("string parameter signAlgo", signAlgo=None)
        check("Invalid parameter signAlgo", signAlgo="1.2.840.113549.1.1.11")   # RSA for an EC key
        check("Invalid parameter signAlgo", signAlgo="1.2.840.113549.1.1.10",
              signAlgoParams=b64(b"\x30\x00"))
        check("Invalid parameter signAlgo", signAlgo="1.2.3.4")
        check("contradicts", hashAlgo=SHA384)
        check("contradicts", signAlgo="1.2.840.10045.4.3.3")
        check("string parameter SAD", SAD=None)
        check("string parameter SAD", SAD=["x"])
        check("hash", hash=None)
        check("Invalid Base64", hash=["%%%"])
        check("Invalid digest value length", hash=[b64(b"\x00" * 31)])
        check("operationMode", operationMode="A")
        # nothing above consumed the SAD
        r = sign_hash(client, version, emp, cid, sad, [x], v2_names=False)
        assert r.status_code == 200, r.text


def test_extend_transaction(client, world, runtime):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    for version in VERSIONS:
        cid = a.seals["contract"]
        x = h(b"x")
        sad = authorize(client, version, emp, cid, [x]).json()["SAD"]
        real = runtime.clock
        later = real() + datetime.timedelta(minutes=4)
        runtime.clock = lambda: later
        try:
            names = {"hashes": [x]} if version == "v2" else {"hash": [x]}
            r = csc(client, version, "credentials/extendTransaction", emp,
                    {"credentialID": cid, "SAD": sad, **names})
            assert r.status_code == 200, r.text
            assert r.json()["expiresIn"] == 300
            new_sad = r.json()["SAD"]
            refused(csc(client, version, "credentials/extendTransaction", emp,
                        {"credentialID": cid, "SAD": sad, "hash": [h(b"y")]}), 400,
                    says="Hash is not authorized by the SAD")
            refused(csc(client, version, "credentials/extendTransaction", emp,
                        {"credentialID": a.personal["employee"], "SAD": sad}), 400,
                    says="another seal")
            refused(csc(client, version, "credentials/extendTransaction", emp,
                        {"credentialID": cid}), 400, says="parameter SAD")
        finally:
            runtime.clock = real
        even_later = real() + datetime.timedelta(minutes=8)   # past the first expiry
        runtime.clock = lambda: even_later
        try:
            r = sign_hash(client, version, emp, cid, new_sad, [x])
            assert r.status_code == 200, r.text
            refused(csc(client, version, "credentials/extendTransaction", emp,
                        {"credentialID": cid, "SAD": new_sad}), 400, says="already used")
        finally:
            runtime.clock = real


def test_quota_exhausted_refuses_the_whole_batch(client, world, runtime):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    cid = a.seals["contract"]
    from sqlalchemy import update

    from sealkeeper.orgs.models import Organization

    with runtime.session_factory() as s:
        s.execute(update(Organization).where(Organization.id == a.id)
                  .values(quota_balance=1))
        s.commit()
    hs = [h(b"1"), h(b"2")]
    sad = authorize(client, "v2", emp, cid, hs).json()["SAD"]
    refused(sign_hash(client, "v2", emp, cid, sad, hs), 403, "access_denied", says="quota")
    assert quota_balance(client, world) == 1
    assert not [e for e in usage_entries(runtime, a.id) if e.kind == "signature"]


def test_disabled_seal(client, world):
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    cid = a.seals["contract"]
    sad = authorize(client, "v1", emp, cid, [h(b"x")]).json()["SAD"]
    r = client.post(f"/api/v1/seals/{cid}/disable", headers=auth(a.tokens["eseal_admin"]))
    assert r.status_code == 200, r.text
    info = csc(client, "v1", "credentials/info", emp, {"credentialID": cid}).json()
    assert info["key"]["status"] == "disabled"
    refused(sign_hash(client, "v1", emp, cid, sad, [h(b"x")]), 400, says="disabled")


# -- RSA: PKCS#1 v1.5 and PSS with the client's parameters -------------------------

@pytest.fixture
def rsa_runtime(settings, databases):
    """RSA-2048 seal keys. Algorithm handling does not depend on the database, so
    this runs on SQLite only (RSA key generation for two worlds is the slow part)."""
    from sealkeeper.runtime import Runtime

    engine = databases.get("sqlite")
    yield Runtime.build(settings.model_copy(update={"seal_key_algorithm": "rsa-2048"}),
                        engine=engine)
    databases.clean("sqlite")


def _pss_params(salt: int, alg: str = "sha256", mgf_alg: str | None = None) -> str:
    return b64(algos.RSASSAPSSParams({
        "hash_algorithm": {"algorithm": alg},
        "mask_gen_algorithm": {"algorithm": "mgf1",
                               "parameters": {"algorithm": mgf_alg or alg}},
        "salt_length": salt}).dump())


def test_rsa_pkcs1_and_pss(rsa_runtime):
    from fastapi.testclient import TestClient

    from factories import build_world
    from sealkeeper.web.app import create_app

    rt = rsa_runtime
    world = build_world(rt)
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        a, emp = world.a, world.a.tokens["employee"]
        set_pin(client, emp)
        cid = a.seals["contract"]
        info = csc(client, "v2", "credentials/info", emp, {"credentialID": cid}).json()
        assert info["key"]["len"] == 2048 and "curve" not in info["key"]
        assert {"1.2.840.113549.1.1.11", "1.2.840.113549.1.1.10"} <= set(info["key"]["algo"])
        key = x509.load_der_x509_certificate(
            base64.b64decode(info["cert"]["certificates"][0])).public_key()
        d = hashlib.sha256(b"rsa doc").digest()

        def signed(sign_algo, **extra):
            sad = authorize(client, "v2", emp, cid, [b64(d)]).json()["SAD"]
            r = sign_hash(client, "v2", emp, cid, sad, [b64(d)], sign_algo=sign_algo, **extra)
            assert r.status_code == 200, r.text
            return base64.b64decode(r.json()["signatures"][0])

        key.verify(signed("1.2.840.113549.1.1.11"), d, padding.PKCS1v15(),
                   Prehashed(hashes.SHA256()))
        key.verify(signed("1.2.840.113549.1.1.1"), d, padding.PKCS1v15(),
                   Prehashed(hashes.SHA256()))
        for salt in (32, 222, 0):   # the salt length the client declared is used
            sig = signed("1.2.840.113549.1.1.10", signAlgoParams=_pss_params(salt))
            key.verify(sig, d, padding.PSS(padding.MGF1(hashes.SHA256()), salt),
                       Prehashed(hashes.SHA256()))
        sad = authorize(client, "v2", emp, cid, [b64(d)]).json()["SAD"]
        for extra, says in (
                ({}, "signAlgoParams"),
                ({"signAlgoParams": "not base64"}, "signAlgoParams"),
                ({"signAlgoParams": b64(b"\x30\x03\x02\x01\x05")}, "signAlgoParams"),
                ({"signAlgoParams": _pss_params(223)}, "salt length"),
                ({"signAlgoParams": _pss_params(32, "sha1")}, "sha1"),
                ({"signAlgoParams": _pss_params(32, mgf_alg="sha512")}, "MGF1"),
                ({"signAlgoParams": _pss_params(32, "sha384")}, "contradicts")):
            r = sign_hash(client, "v2", emp, cid, sad, [b64(d)],
                          sign_algo="1.2.840.113549.1.1.10", **extra)
            refused(r, 400, says=says)
        refused(sign_hash(client, "v2", emp, cid, sad, [b64(d)], sign_algo=ECDSA_SHA256), 400,
                says="Invalid parameter signAlgo")


# -- timestamp -----------------------------------------------------------------

def test_timestamp(client, world, runtime):
    for version in VERSIONS:
        emp = world.a.tokens["employee"]
        before = quota_balance(client, world)
        d = hashlib.sha256(b"stamp me").digest()
        r = csc(client, version, "signatures/timestamp", emp,
                {"hash": b64(d), "hashAlgo": SHA256, "nonce": "0a1b2c3d4e5f"})
        assert r.status_code == 200, r.text
        token = cms.ContentInfo.load(base64.b64decode(r.json()["timestamp"]))
        tst = token["content"]["encap_content_info"]["content"].parsed
        assert isinstance(tst, tsp.TSTInfo)
        assert tst["message_imprint"]["hashed_message"].native == d
        assert tst["nonce"].native == 0x0A1B2C3D4E5F
        assert quota_balance(client, world) == before      # not a signature: no quota
        for body, says in (({"hashAlgo": SHA256}, "parameter hash"),
                           ({"hash": b64(d)}, "hashAlgo"),
                           ({"hash": "@@", "hashAlgo": SHA256}, "Invalid Base64"),
                           ({"hash": b64(d[:20]), "hashAlgo": SHA256}, "digest value length"),
                           ({"hash": b64(d), "hashAlgo": "1.2.840.113549.2.5"}, "too weak"),
                           ({"hash": b64(d), "hashAlgo": SHA256, "nonce": "xyz"}, "nonce"),
                           ({"hash": b64(d), "hashAlgo": SHA256, "nonce": "f" * 200}, "nonce")):
            refused(csc(client, version, "signatures/timestamp", emp, body), 400, says=says)
        refused(csc(client, version, "signatures/timestamp", None,
                    {"hash": b64(d), "hashAlgo": SHA256}), 401, "invalid_token")


# -- garbage -----------------------------------------------------------------------

BAD_BODIES = [b"not json", b"[]", b"null", b'{"a": ', b"\xff\xfe\x00", b"1e999999", b'"str"',
              b'{"credentialID": "\\u0000"}', b"{" * 5000]
WRONG = [123, -1, 1.5, True, None, [], {}, "x" * 20000, "\u0000", [{}], ["\u0000"]]
FIELDS = {
    "credentials/list": ["userID", "credentialInfo", "certificates", "onlyValid", "maxResults"],
    "credentials/info": ["credentialID", "certificates"],
    "credentials/authorize": ["credentialID", "numSignatures", "hash", "hashes", "hashAlgo",
                              "PIN", "authData"],
    "credentials/extendTransaction": ["credentialID", "SAD", "hashes", "hashAlgorithmOID"],
    "signatures/signHash": ["credentialID", "SAD", "hash", "hashAlgo", "signAlgo",
                            "signAlgoParams", "operationMode"],
    "signatures/timestamp": ["hash", "hashAlgo", "nonce"],
}


def test_garbage_never_500(client, world):
    """Malformed bodies and wrong types in every parameter: a CSC refusal, never a 500
    (the handlers are shared by v1 and v2, so one version is enough)."""
    a, emp = world.a, world.a.tokens["employee"]
    set_pin(client, emp)
    cid = a.seals["contract"]
    sad = authorize(client, "v2", emp, cid, [h(b"g")]).json()["SAD"]
    good = {"credentialID": cid, "numSignatures": 1, "hash": [h(b"g")], "hashAlgo": SHA256,
            "PIN": "1234", "SAD": sad, "signAlgo": ECDSA_SHA256}
    for method, fields in FIELDS.items():
        for raw in BAD_BODIES:
            r = csc(client, "v2", method, emp, raw, raw=True)
            if r.status_code == 200:
                assert method == "credentials/list", (method, raw)
                continue
            refused(r, 400)
        r = client.post(f"/csc/v2/{method}", headers={**auth(emp),
                        "content-type": "application/json"}, content=b"x" * (1 << 21))
        assert r.status_code == 413
        for field in fields:
            for wrong in WRONG:
                r = csc(client, "v2", method, emp, {**good, field: wrong})
                assert r.status_code < 500, (method, field, wrong, r.text)
                assert r.headers["content-type"].startswith("application/json")
                if r.status_code >= 400:
                    assert set(r.json()) == {"error", "error_description"}, r.text


def test_unknown_paths_and_methods(client, world):
    for version in VERSIONS:
        emp = world.a.tokens["employee"]
        refused(client.get(f"/csc/{version}/credentials/list", headers=auth(emp)), 405)
        refused(client.post(f"/csc/{version}/signatures/signDoc", headers=auth(emp), json={}), 501)
        refused(client.post(f"/csc/{version}/auth/login", json={}), 501)
        refused(client.post(f"/csc/{version}/nothing/here", json={}), 404)
        refused(client.post("/csc/v3/info", json={}), 404)
        refused(client.post(f"/csc/{version}/info", content=b"{bad", headers={
            "content-type": "application/json"}), 400, says="JSON")
        # a CSC method under the JSON API's error format is not mixed up
        r = client.get("/api/v1/nothing")
        assert "message" in r.json()

