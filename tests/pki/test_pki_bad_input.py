"""Issue 3: bad input to the PKI endpoints answers a proper error, never 500.

Against the running server (both key stores): garbage, empty, truncated and
oversized OCSP requests get an OCSPResponse with an error status (or the
service's 413 JSON error when the body is over the server-wide limit);
requests about certificates of another CA or unknown serials get a signed
"unknown"; garbage time-stamp queries get a TimeStampResp rejection with the
right failure bit; unknown CRLs are 404. Afterwards the server log holds no
traceback and no 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asn1crypto import cms, core, tsp
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from pki_live import Live, der, gettable, ocsp_get_path, ocsp_request_der, openssl

OCSP_TYPE = "application/ocsp-response"
TS_TYPE = "application/timestamp-reply"


def _ocsp_error(r: httpx.Response) -> ocsp.OCSPResponseStatus:
    assert r.status_code < 500, (r.status_code, r.content[:200])
    assert r.headers["content-type"] == OCSP_TYPE, r.headers
    status = ocsp.load_der_ocsp_response(r.content).response_status
    assert status != ocsp.OCSPResponseStatus.SUCCESSFUL
    return status


def _real_request(live: Live) -> bytes:
    cert = live.current(live.seal_of_type("official")["seal_id"])
    return ocsp_request_der(cert, live.ca("issuing"), nonce=os.urandom(16))


def _other_ca_certificate() -> tuple[x509.Certificate, x509.Certificate]:
    """A CA and a certificate it issued, both unknown to the server."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
    now = datetime.now(UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
            .issuer_name(name).public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
            .sign(key, hashes.SHA256()))
    return ca, leaf


def test_garbage_ocsp_requests_get_ocsp_errors(live: Live) -> None:
    real = _real_request(live)
    cases = {
        "random bytes": os.urandom(300),
        "empty": b"",
        "truncated real request": real[: len(real) // 2],
        "real request plus trailing bytes": real + b"\x00\x00",
        "a DER NULL": b"\x05\x00",
        "a huge length header": b"\x30\x84\x7f\xff\xff\xff" + b"\x00" * 32,
        "deep nesting": b"\x30\x80" * 2000,
        "a certificate instead": der(live.ca("issuing")),
        "text": b"GET / HTTP/1.1\r\n\r\n",
    }
    for what, body in cases.items():
        r = live.post("/pki/ocsp", content=body,
                      headers={"Content-Type": "application/ocsp-request"})
        assert r.status_code == 400, (what, r.status_code)
        assert _ocsp_error(r) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST, what
    # Over the protocol limit (64 KiB): still an OCSP answer, 413.
    r = live.post("/pki/ocsp", content=os.urandom(100_000))
    assert r.status_code == 413
    assert _ocsp_error(r) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # Over the server-wide body limit (1 MiB): the service's JSON 413.
    r = live.post("/pki/ocsp", content=os.urandom(2 * 1024 * 1024))
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("path", [
    "!!!", "AAAA", "%ff%fe", "not-base64-%%%", "MA==", "A" * 4000, "a/b/c", "%20",
])
def test_garbage_ocsp_get_paths_get_ocsp_errors(live: Live, path: str) -> None:
    r = live.get(f"/pki/ocsp/{path}")
    assert r.status_code == 400, r.status_code
    assert _ocsp_error(r) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_for_unknown_issuers_and_serials_answers_unknown(live: Live) -> None:
    issuing = live.ca("issuing")
    other_ca, other_leaf = _other_ca_certificate()
    ours = live.current(live.seal_of_type("official")["seal_id"])
    # A certificate of another CA, named with its own issuer: unknown, signed.
    # The same serial as one of ours, but another issuer: still unknown.
    forged = (x509.CertificateBuilder().subject_name(other_leaf.subject)
              .issuer_name(other_ca.subject).public_key(other_leaf.public_key())
              .serial_number(ours.serial_number).not_valid_before(other_leaf.not_valid_before_utc)
              .not_valid_after(other_leaf.not_valid_after_utc)
              .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    # A serial our issuing CA never issued.
    never = (x509.CertificateBuilder().subject_name(ours.subject).issuer_name(issuing.subject)
             .public_key(ours.public_key()).serial_number(12345)
             .not_valid_before(ours.not_valid_before_utc)
             .not_valid_after(ours.not_valid_after_utc)
             .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    for what, cert, issuer in (("other CA", other_leaf, other_ca),
                               ("our serial, other issuer", forged, other_ca),
                               ("never issued", never, issuing)):
        for algorithm in (hashes.SHA1(), hashes.SHA256()):
            req = ocsp_request_der(cert, issuer, algorithm, nonce=b"nonce-" + os.urandom(8))
            r = live.post("/pki/ocsp", content=req)
            assert r.status_code == 200, (what, r.status_code)
            resp = ocsp.load_der_ocsp_response(r.content)
            assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, what
            assert resp.certificate_status == ocsp.OCSPCertStatus.UNKNOWN, what
            assert resp.serial_number == cert.serial_number
            (responder,) = resp.certificates
            responder.public_key().verify(  # type: ignore[union-attr]
                resp.signature, resp.tbs_response_bytes,
                ec.ECDSA(resp.signature_hash_algorithm))  # type: ignore[arg-type,call-arg]
    # The same through GET.
    req = gettable(lambda: ocsp_request_der(other_leaf, other_ca, nonce=os.urandom(16)))
    r = live.get(ocsp_get_path(req))
    assert r.status_code == 200
    assert ocsp.load_der_ocsp_response(r.content).certificate_status == \
        ocsp.OCSPCertStatus.UNKNOWN


def _raw_ocsp_request(issuer: x509.Certificate, serial: int, *, algorithm: str = "sha1",
                      count: int = 1, nonce: bytes | None = None) -> bytes:
    """An OCSPRequest built field by field (so that fields can be odd)."""
    spki = asn1_x509.Certificate.load(der(issuer))["tbs_certificate"]
    name_hash = hashlib.new(algorithm if algorithm in hashlib.algorithms_available else "sha1",
                            spki["subject"].dump()).digest()
    key_hash = hashlib.new(algorithm if algorithm in hashlib.algorithms_available else "sha1",
                           spki["subject_public_key_info"]["public_key"].contents[1:]).digest()
    one = {"req_cert": {"hash_algorithm": {"algorithm": algorithm},
                        "issuer_name_hash": name_hash, "issuer_key_hash": key_hash,
                        "serial_number": serial}}
    tbs: dict[str, object] = {"request_list": [one] * count}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "critical": False,
                                      "extn_value": nonce}]
    return bytes(asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump())


def test_odd_ocsp_fields_get_unknown_or_malformed(live: Live) -> None:
    issuing = live.ca("issuing")
    unknown = {
        "negative serial": _raw_ocsp_request(issuing, -5),
        "zero serial": _raw_ocsp_request(issuing, 0),
        "1000-bit serial": _raw_ocsp_request(issuing, 1 << 1000),
        "MD5 CertID": _raw_ocsp_request(issuing, 5, algorithm="md5"),
        "unknown hash OID": _raw_ocsp_request(issuing, 5, algorithm="1.2.3.4.5"),
        "twenty certificates": _raw_ocsp_request(issuing, 7, count=20),
    }
    for what, body in unknown.items():
        r = live.post("/pki/ocsp", content=body)
        assert r.status_code == 200, (what, r.status_code)
        resp = ocsp.load_der_ocsp_response(r.content)
        assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, what
        assert {s.certificate_status for s in resp.responses} == {
            ocsp.OCSPCertStatus.UNKNOWN}, what
    malformed = {
        "a 200-byte nonce": _raw_ocsp_request(issuing, 5, nonce=b"x" * 200),
        "500 certificates": _raw_ocsp_request(issuing, 5, count=500),
        "no certificate": _raw_ocsp_request(issuing, 5, count=0),
    }
    for what, body in malformed.items():
        r = live.post("/pki/ocsp", content=body)
        assert r.status_code == 400, (what, r.status_code)
        assert _ocsp_error(r) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST, what


def _ts_request(digest: bytes, algorithm: str = "sha256", **extra: object) -> bytes:
    req: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                            "hashed_message": digest},
        "cert_req": True, **extra,
    }
    return bytes(tsp.TimeStampReq(req).dump())


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp (asn1crypto's lacks OPTIONAL on the token)."""

    _fields = [("status", tsp.PKIStatusInfo),
               ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def _ts_rejection(live: Live, r: httpx.Response) -> tuple[set[str], str]:
    """Failure bits and text of a rejection; openssl must read it as one too."""
    assert r.status_code < 500, (r.status_code, r.content[:200])
    assert r.headers["content-type"] == TS_TYPE
    resp = _TimeStampResp.load(r.content, strict=True)
    status = resp["status"]
    assert status["status"].native == "rejection"
    assert resp["time_stamp_token"].native is None
    text = " ".join(status["status_string"].native or [])
    out = openssl("ts", "-reply", "-in", live.path("rejected.tsr", r.content), "-text").stdout
    assert "Status: Rejected." in out and "TST info:\nNot included." in out, out
    return set(status["fail_info"].native or ()), text


def test_garbage_timestamp_queries_are_rejected(live: Live) -> None:
    ok = _ts_request(hashlib.sha256(b"x").digest())
    cases: dict[str, tuple[bytes, str]] = {
        "random bytes": (os.urandom(200), "bad_data_format"),
        "empty": (b"", "bad_data_format"),
        "truncated": (ok[:-5], "bad_data_format"),
        "SHA-1 imprint": (_ts_request(hashlib.sha1(b"x").digest(), "sha1"), "bad_alg"),
        "MD5 imprint": (_ts_request(hashlib.md5(b"x").digest(), "md5"), "bad_alg"),
        "SHA-256 imprint of 20 bytes": (_ts_request(b"\x01" * 20), "bad_data_format"),
        "SHA-256 imprint of 64 bytes": (_ts_request(b"\x01" * 64), "bad_data_format"),
        "SHA-512 imprint of 32 bytes": (_ts_request(b"\x01" * 32, "sha512"),
                                        "bad_data_format"),
        "unknown policy": (_ts_request(b"\x01" * 32, req_policy="1.2.3.4.5"),
                           "unaccepted_policy"),
        "huge nonce": (_ts_request(b"\x01" * 32, nonce=1 << 1000), "bad_data_format"),
        "an extension": (_ts_request(b"\x01" * 32, extensions=[{
            "extn_id": "1.2.3.4", "critical": True, "extn_value": core.OctetString(b"x")}]),
            "unaccepted_extensions"),
        "an OCSP request": (_real_request(live), "bad_data_format"),
    }
    for what, (body, failure) in cases.items():
        r = live.post("/pki/tsa", content=body,
                      headers={"Content-Type": "application/timestamp-query"})
        fail_info, text = _ts_rejection(live, r)
        assert failure in fail_info, (what, fail_info, text)
        assert text, what
    # Version 2 requests are refused (asn1crypto does not name that version).
    v2 = bytearray(ok)
    assert v2[2:5] == b"\x02\x01\x01"
    v2[4] = 2
    fail_info, _ = _ts_rejection(live, live.post("/pki/tsa", content=bytes(v2)))
    assert fail_info & {"bad_request", "bad_data_format"}
    # Over the protocol limit: a rejection, 413; over the server limit: JSON 413.
    r = live.post("/pki/tsa", content=os.urandom(100_000))
    assert r.status_code == 413
    _ts_rejection(live, r)
    r = live.post("/pki/tsa", content=os.urandom(2 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    # And a good query still works afterwards.
    r = live.post("/pki/tsa", content=ok)
    assert tsp.TimeStampResp.load(r.content)["status"]["status"].native == "granted"


@pytest.mark.parametrize("path", [
    "/pki/crl/nope.crl", "/pki/crl/", "/pki/crl/ocsp.crl", "/pki/crl/tsa.crl",
    "/pki/crl/ROOT.CRL", "/pki/crl/..%2Froot.crt", "/pki/crl/root.crl.bak", "/pki/nope.pem",
])
def test_unknown_crls_and_files_are_404(live: Live, path: str) -> None:
    r = live.get(path)
    assert r.status_code == 404, (path, r.status_code)


def test_wrong_methods_are_405(live: Live) -> None:
    assert live.get("/pki/tsa").status_code == 405
    assert live.post("/pki/crl/root.crl").status_code == 405
    assert live.http.put("/pki/ocsp", content=b"x").status_code == 405


def test_no_server_error_was_logged(live: Live) -> None:
    """Runs after the garbage above (same module, same server)."""
    log = live.server.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert not re.search(r'" 5\d\d ', log), [ln for ln in log.splitlines()
                                             if re.search(r'" 5\d\d ', ln)]


def test_ocsp_get_base64_ending_in_a_slash(live: Live) -> None:
    cert = live.current(live.seal_of_type("official")["seal_id"])
    issuing = live.ca("issuing")
    for i in range(3000):  # nonce lengths vary so that some request has no padding
        req = ocsp_request_der(cert, issuing, nonce=os.urandom(16 + i % 3))
        if base64.b64encode(req).endswith(b"/"):
            break
    else:
        pytest.skip("no request ending in '/' found")
    # Sent either way: the slash URL-encoded (as RFC 6960 A.1 says) or raw.
    for path in (ocsp_get_path(req), "/pki/ocsp/" + base64.b64encode(req).decode()):
        r = live.get(path)
        assert r.status_code == 200, (path, r.status_code)
        resp = ocsp.load_der_ocsp_response(r.content)
        assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
