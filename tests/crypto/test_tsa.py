"""RFC 3161 time-stamping (tsa), driven and checked by openssl and pyHanko."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pki_fixtures import NOW, PROFILES, Pki, build_test_pki, openssl, pem, write
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import SignatureScheme
from sealkeeper.crypto.tsa import (
    TimeStampAuthority,
    TsaFailure,
    _TimeStampResp,
    rejection_response,
)
from sealkeeper.errors import ConfigurationError, InvalidInput

POLICY = "1.3.6.1.4.1.99999.2.1"


@pytest.fixture(scope="module", params=PROFILES)
def pki(request: pytest.FixtureRequest) -> Pki:
    return build_test_pki(request.param)


def _tsa(pki: Pki, scheme: SignatureScheme | None = None) -> TimeStampAuthority:
    """The TSA signs with its key's default scheme (PKCS#1 v1.5 for RSA) unless told:
    ``openssl ts -verify`` cannot check RSA-PSS tokens (openssl/openssl#7904), so in
    the ``pss`` profile only the certificates are PSS-signed here."""
    return TimeStampAuthority(pki.tsa_handle, pki.tsa, [pki.issuing], POLICY, scheme=scheme)


@pytest.fixture()
def files(pki: Pki, tmp_path: Path) -> Path:
    write(tmp_path / "root.pem", pem(pki.root))
    write(tmp_path / "chain.pem", pem(pki.tsa, pki.issuing))
    write(tmp_path / "data.bin", b"the document" * 100)
    return tmp_path


def _query(d: Path, *options: str) -> bytes:
    openssl("ts", "-query", "-data", d / "data.bin", *options, "-out", d / "q.tsq")
    return (d / "q.tsq").read_bytes()


def _verify(d: Path) -> str:
    return openssl("ts", "-verify", "-in", d / "r.tsr", "-queryfile", d / "q.tsq", "-CAfile",
                   d / "root.pem", "-untrusted", d / "chain.pem").stdout


@pytest.mark.parametrize("options", [["-sha256", "-cert"], ["-sha512", "-cert"],
                                     ["-sha384", "-no_nonce"], ["-sha256"]])
def test_openssl_verifies_the_response(pki: Pki, files: Path, options: list[str]) -> None:
    query = _query(files, *options)
    write(files / "r.tsr", _tsa(pki).respond(query, NOW, 4242))
    assert "Verification: OK" in _verify(files)
    text = openssl("ts", "-reply", "-in", files / "r.tsr", "-text").stdout
    assert "Status: Granted." in text
    assert f"Policy OID: {POLICY}" in text
    assert "Serial number: 0x1092" in text
    assert "Accuracy: 0x01 seconds" in text
    assert "Ordering: no" in text
    assert "TSA: DirName:/C=FI/O=sealkeeper/CN=sealkeeper Time Stamping Authority" in text
    assert ("Nonce: unspecified" in text) == ("-no_nonce" in options)


def test_token_contents(pki: Pki, files: Path) -> None:
    query = tsp.TimeStampReq.load(_query(files, "-sha256", "-cert"))
    resp = tsp.TimeStampResp.load(_tsa(pki).respond(query.dump(), NOW, 7))
    signed = resp["time_stamp_token"]["content"]
    info = signed["encap_content_info"]["content"].parsed
    assert info["message_imprint"].dump() == query["message_imprint"].dump()
    assert info["nonce"].native == query["nonce"].native
    assert info["gen_time"].native == NOW
    assert info["version"].native == "v1"
    certs = [c.chosen.dump() for c in signed["certificates"]]
    assert pki.tsa.public_bytes(serialization.Encoding.DER) in certs
    assert pki.issuing.public_bytes(serialization.Encoding.DER) in certs
    attrs = {a["type"].native for a in signed["signer_infos"][0]["signed_attrs"]}
    assert attrs == {"content_type", "message_digest", "signing_certificate_v2"}


def test_cert_req_false_leaves_certificates_out(pki: Pki, files: Path) -> None:
    resp = tsp.TimeStampResp.load(_tsa(pki).respond(_query(files, "-sha256"), NOW, 8))
    assert not resp["time_stamp_token"]["content"]["certificates"]


def test_fractional_gen_time() -> None:
    pki = build_test_pki("ec")
    moment = NOW + timedelta(microseconds=250_000)
    token = cms.ContentInfo.load(_tsa(pki).stamp(Hashed.of(b"x"), moment, 1))
    gen_time = token["content"]["encap_content_info"]["content"].parsed["gen_time"]
    assert gen_time.native == moment and gen_time.contents.endswith(b".25Z")


def _context(pki: Pki) -> ValidationContext:
    root = pki.root.public_bytes(serialization.Encoding.DER)
    return ValidationContext(trust_roots=[asn1_x509.Certificate.load(root)],
                             allow_fetching=False, revocation_mode="soft-fail",
                             moment=NOW + timedelta(hours=1))


def test_stamp_returns_a_token_openssl_and_pyhanko_accept(pki: Pki, files: Path) -> None:
    imprint = Hashed.of((files / "data.bin").read_bytes(), DigestAlgorithm.SHA256)
    token = _tsa(pki).stamp(imprint, NOW, 99)
    write(files / "token.der", token)
    out = openssl("ts", "-verify", "-in", files / "token.der", "-token_in", "-digest",
                  imprint.digest.hex(), "-CAfile", files / "root.pem", "-untrusted",
                  files / "chain.pem").stdout
    assert "Verification: OK" in out
    signed = cms.ContentInfo.load(token)["content"]
    status = asyncio.run(validate_tst_signed_data(signed, _context(pki),
                                                  lambda _alg: imprint.digest))
    assert status["intact"] and status["valid"]
    assert status["trust_problem_indic"] is None  # None: the path to our root validated
    assert status["timestamp"] == NOW


def test_rsa_pss_token_verifies_with_openssl_cms_and_pyhanko(tmp_path: Path) -> None:
    pki, files = build_test_pki("pss"), tmp_path
    write(files / "root.pem", pem(pki.root))
    write(files / "chain.pem", pem(pki.tsa, pki.issuing))
    imprint = Hashed.of(b"document", DigestAlgorithm.SHA256)
    token = _tsa(pki, SignatureScheme.RSA_PSS).stamp(imprint, NOW, 3)
    signer = cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].native == "rsassa_pss"
    out = openssl("cms", "-verify", "-inform", "DER", "-in", write(files / "t.der", token),
                  "-CAfile", files / "root.pem", "-purpose", "timestampsign", "-out",
                  files / "tst.der").stdout
    assert "Verification successful" in out
    assert tsp.TSTInfo.load((files / "tst.der").read_bytes())["serial_number"].native == 3
    status = asyncio.run(validate_tst_signed_data(
        cms.ContentInfo.load(token)["content"], _context(pki), lambda _alg: imprint.digest))
    assert status["intact"] and status["valid"] and status["trust_problem_indic"] is None


def _rejection(der: bytes) -> tuple[str, set[str]]:
    resp = _TimeStampResp.load(der)
    assert not resp["time_stamp_token"]
    return resp["status"]["status"].native, resp["status"]["fail_info"].native


def _request(algorithm: str, digest: bytes, **fields: object) -> bytes:
    der: bytes = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest},
        **fields}).dump()
    return der


@pytest.mark.parametrize("request_der, failure", [
    (b"", "bad_data_format"),
    (b"garbage", "bad_data_format"),
    (b"\x30\x03\x02\x01\x01", "bad_data_format"),
    (os.urandom(500), "bad_data_format"),
    (_request("sha1", b"\x00" * 20), "bad_alg"),
    (_request("md5", b"\x00" * 16), "bad_alg"),
    (_request("sha256", b"\x00" * 20), "bad_data_format"),
    (_request("sha512", b"\x00" * 32), "bad_data_format"),
    (_request("sha256", b"\x00" * 32, req_policy="1.2.3.4"), "unaccepted_policy"),
    (_request("sha256", b"\x00" * 32, nonce=1 << 600), "bad_data_format"),
    (_request("sha256", b"\x00" * 32, extensions=[{
        "extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]),
     "unaccepted_extensions"),
    (tsp.TimeStampReq({"version": 2, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 32}}).dump(),
     "bad_request"),
], ids=["empty", "garbage", "short", "random", "sha1", "md5", "sha256-20", "sha512-32",
        "policy", "huge-nonce", "extension", "version"])
def test_bad_requests_are_rejected_with_a_response(request_der: bytes, failure: str) -> None:
    pki = build_test_pki("ec")
    status, fail_info = _rejection(_tsa(pki).respond(request_der, NOW, 1))
    assert status == "rejection" and fail_info == {failure}


def test_openssl_reads_a_rejection(pki: Pki, files: Path) -> None:
    query = _query(files, "-sha1")
    write(files / "r.tsr", _tsa(pki).respond(query, NOW, 1))
    text = openssl("ts", "-reply", "-in", files / "r.tsr", "-text").stdout
    assert "Status: Rejected." in text and "unrecognized or unsupported algorithm" in text
    out = openssl("ts", "-verify", "-in", files / "r.tsr", "-queryfile", files / "q.tsq",
                  "-CAfile", files / "root.pem", check=False)
    assert out.returncode != 0


def test_matching_policy_is_accepted(pki: Pki, files: Path) -> None:
    query = _query(files, "-sha256", "-cert", "-tspolicy", POLICY)
    write(files / "r.tsr", _tsa(pki).respond(query, NOW, 5))
    assert "Verification: OK" in _verify(files)


def test_rejection_response_for_system_failure() -> None:
    status, fail_info = _rejection(rejection_response(TsaFailure.SYSTEM_FAILURE, "HSM down"))
    assert status == "rejection" and fail_info == {"system_failure"}


def test_configuration_is_checked() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(ConfigurationError, match="does not match"):
        TimeStampAuthority(pki.ocsp_handle, pki.tsa, [], POLICY)
    with pytest.raises(ConfigurationError, match="timeStamping"):
        TimeStampAuthority(pki.ocsp_handle, pki.ocsp, [], POLICY)
    with pytest.raises(InvalidInput):
        _tsa(pki).stamp(Hashed.of(b"x"), NOW, 0)
    with pytest.raises(InvalidInput):
        _tsa(pki).stamp(Hashed.of(b"x"), NOW.replace(tzinfo=None), 1)
