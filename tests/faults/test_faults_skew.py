"""Clock skew of ±5 minutes against approvals, CRLs, OCSP responses and
time-stamps, with the tolerances documented in docs/operations.md:

- approvals live ``approval_ttl_seconds`` on the clock of the server that
  checks them; a server whose clock is behind the one that issued an approval
  still accepts it (there is no "issued in the future" refusal), one ahead
  sees it expire sooner;
- a seal certificate signs from ``CERT_SKEW`` (5 minutes) before its notBefore
  to ``CERT_SKEW`` after its notAfter (tests/faults/test_faults_adversarial.py);
- CRLs and OCSP responses are dated (thisUpdate) 5 minutes before they are
  made, so a relying party whose clock is up to 5 minutes behind ours takes
  them as current, and one up to 5 minutes ahead too (they stay valid for
  hours);
- a time-stamp's genTime is our clock (accuracy ``tsa_accuracy_seconds``):
  a relying party ±5 minutes off validates the token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from factories import auth, build_world
from sealkeeper.runtime import Runtime
from sealkeeper.web.app import create_app

SKEWS = [timedelta(minutes=-5), timedelta(minutes=5)]


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def skewed(settings, engine, clock) -> Iterator[tuple[TestClient, object]]:
    """The app on a clock the test moves, with a world whose certificates were
    issued a day ago (so that only the revocation data is fresh)."""
    real_now = clock.now
    clock.now = real_now - timedelta(days=1)
    rt = Runtime.build(settings, engine=engine, clock=clock)
    world = build_world(rt)
    clock.now = real_now
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c, world


def _d(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# -- approvals -----------------------------------------------------------------------


def test_approval_lifetime_is_measured_on_the_server_clock(skewed, clock):
    client, world = skewed
    a = world.a
    emp, seal = auth(a.tokens["employee"]), a.seals["contract"]
    assert client.post("/api/v1/me/approval-password", headers=emp,
                       json={"approval_password": "1234"}).status_code == 201
    ttl = client.app.state.runtime.settings.approval_ttl_seconds

    def approve(x: bytes) -> dict:
        r = client.post("/api/v1/approvals", headers=emp, json={
            "seal_id": seal, "digests": [_d(x)], "approval_password": "1234"})
        assert r.status_code == 201, r.text
        return r.json()

    def sign(ap: str, x: bytes):
        return client.post("/api/v1/sign", headers=emp, json={
            "seal_id": seal, "approval": ap, "documents": [{"file_name": "f", "digest": _d(x)}]})

    start = clock.now
    for skew in SKEWS:
        # The answer tells the lifetime relative to now, for clients whose clock is off.
        clock.now = start
        ap = approve(b"rel")
        assert ap["expires_in"] == ttl
        assert datetime.fromisoformat(ap["expires_at"]) == start + timedelta(seconds=ttl)
        # A server clock stepped by the skew after the approval was given.
        clock.now = start + skew
        r = sign(ap["approval"], b"rel")
        if skew < timedelta(0) or skew < timedelta(seconds=ttl):
            assert r.status_code == 200, r.text   # behind: lives |skew| longer
        else:
            assert r.status_code == 403 and "expired" in r.json()["message"]
    # Behind by 5 minutes: accepted right up to the issuing clock's expiry.
    clock.now = start
    ap = approve(b"edge")["approval"]
    clock.now = start + timedelta(seconds=ttl - 1)
    assert sign(ap, b"edge").status_code == 200
    clock.now = start
    ap = approve(b"late")["approval"]
    clock.now = start + timedelta(seconds=ttl)
    assert sign(ap, b"late").status_code == 403


# -- CRL and OCSP ------------------------------------------------------------------------


def _seal_chain(client, world) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    r = client.get(f"/api/v1/seals/{world.a.seals['contract']}/chain.pem",
                   headers=auth(world.a.tokens["eseal_admin"]))
    assert r.status_code == 200, r.text
    leaf, issuing, root = x509.load_pem_x509_certificates(r.content)
    return leaf, issuing, root


def _validate(leaf, issuing, root, moment: datetime, *, crls=(), ocsps=()) -> None:
    vc = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))],
        other_certs=[asn1_x509.Certificate.load(
            issuing.public_bytes(serialization.Encoding.DER))],
        crls=list(crls), ocsps=list(ocsps), moment=moment, revocation_mode="require")
    validator = CertificateValidator(
        asn1_x509.Certificate.load(leaf.public_bytes(serialization.Encoding.DER)),
        validation_context=vc)
    asyncio.run(validator.async_validate_usage(set()))


@pytest.mark.parametrize("skew", SKEWS, ids=["behind", "ahead"])
def test_crl_is_current_for_relying_parties_five_minutes_off(skew, skewed, clock):
    client, world = skewed
    leaf, issuing, root = _seal_chain(client, world)
    crl = client.get("/pki/crl/issuing.crl")
    root_crl = client.get("/pki/crl/root.crl")
    assert crl.status_code == 200 and root_crl.status_code == 200
    parsed = x509.load_der_x509_crl(crl.content)
    assert parsed.last_update_utc <= clock.now - timedelta(minutes=5)
    assert parsed.next_update_utc is not None and parsed.next_update_utc > clock.now + skew
    _validate(leaf, issuing, root, clock.now + skew, crls=[crl.content, root_crl.content])


@pytest.mark.parametrize("skew", SKEWS, ids=["behind", "ahead"])
def test_ocsp_is_current_for_relying_parties_five_minutes_off(skew, skewed, clock):
    client, world = skewed
    leaf, issuing, root = _seal_chain(client, world)
    req = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuing, hashes.SHA256()).build()
    r = client.post("/pki/ocsp", content=req.public_bytes(serialization.Encoding.DER),
                    headers={"content-type": "application/ocsp-request"})
    assert r.status_code == 200
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.this_update_utc <= clock.now - timedelta(minutes=5)
    assert resp.produced_at_utc == clock.now  # signed now, dated for the skew
    root_crl = client.get("/pki/crl/root.crl").content  # the issuing CA's own status
    _validate(leaf, issuing, root, clock.now + skew, crls=[root_crl],
              ocsps=[asn1_ocsp.OCSPResponse.load(r.content)])


# -- time-stamps ------------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS, ids=["behind", "ahead"])
def test_timestamp_validates_for_relying_parties_five_minutes_off(skew, skewed, clock):
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data

    client, world = skewed
    imprint = hashlib.sha256(b"stamped").digest()
    req = tsp.TimeStampReq({"version": "v1", "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": imprint}})
    r = client.post("/pki/tsa", content=req.dump(),
                    headers={"content-type": "application/timestamp-query"})
    assert r.status_code == 200
    token = tsp.TimeStampResp.load(r.content)["time_stamp_token"]
    info = token["content"]["encap_content_info"]["content"].parsed
    gen_time = info["gen_time"].native
    accuracy = client.app.state.runtime.settings.tsa_accuracy_seconds
    assert abs(gen_time - clock.now) <= timedelta(seconds=accuracy)
    _leaf, issuing, root = _seal_chain(client, world)
    vc = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))],
        other_certs=[asn1_x509.Certificate.load(
            issuing.public_bytes(serialization.Encoding.DER))],
        moment=clock.now + skew, revocation_mode="soft-fail")
    status = asyncio.run(validate_tst_signed_data(token["content"], vc, lambda _alg: imprint))
    assert status["intact"] and status["valid"], status
    assert status["trust_problem_indic"] is None and status["validation_path"], status
