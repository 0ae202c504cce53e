"""OCSP requests and responses (ocsp), driven and checked by openssl."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from pki_fixtures import NOW, PROFILES, Pki, build_test_pki, openssl, pem, write

from sealkeeper.crypto import ocsp
from sealkeeper.errors import InvalidInput

REVOKED_AT = NOW - timedelta(days=2)


@pytest.fixture(scope="module", params=PROFILES)
def pki(request: pytest.FixtureRequest) -> Pki:
    return build_test_pki(request.param)


@pytest.fixture()
def files(pki: Pki, tmp_path: Path) -> Path:
    write(tmp_path / "root.pem", pem(pki.root))
    write(tmp_path / "issuing.pem", pem(pki.issuing))
    return tmp_path


def _lookup(pki: Pki) -> Callable[[int], ocsp.CertStatusInfo]:
    def lookup(serial: int) -> ocsp.CertStatusInfo:
        if serial == pki.personal.serial_number:
            return ocsp.CertStatusInfo.revoked(REVOKED_AT, x509.ReasonFlags.key_compromise)
        if serial == pki.org_seal.serial_number:
            return ocsp.CertStatusInfo.good()
        return ocsp.CertStatusInfo.unknown()
    return lookup


def _openssl_request(d: Path, issuer: str, serials: list[int], *options: str) -> bytes:
    """``options`` go first (a CertID digest must precede -issuer / -serial)."""
    args: list[str | Path] = ["ocsp", *options, "-issuer", d / issuer]
    for serial in serials:
        args += ["-serial", hex(serial)]
    openssl(*args, "-reqout", d / "req.der")
    return (d / "req.der").read_bytes()


def _respond(pki: Pki, der: bytes) -> bytes:
    request = ocsp.parse_request(der)
    return ocsp.build_response(pki.ocsp_handle, pki.ocsp, pki.issuing, request, _lookup(pki),
                               NOW, 3600, scheme=pki.scheme)


def _statuses(d: Path, issuer: str, serials: list[int], *options: str) -> str:
    args: list[str | Path] = ["ocsp", *options, "-respin", d / "resp.der", "-issuer", d / issuer]
    for serial in serials:
        args += ["-serial", hex(serial)]
    return openssl(*args, "-no_nonce", "-CAfile", d / "root.pem", "-verify_other",
                   d / "issuing.pem").stdout


@pytest.mark.parametrize("digest", [[], ["-sha256"]], ids=["sha1-certid", "sha256-certid"])
def test_openssl_verifies_good_revoked_unknown(pki: Pki, files: Path,
                                               digest: list[str]) -> None:
    serials = [pki.org_seal.serial_number, pki.personal.serial_number, 0x99]
    req = _openssl_request(files, "issuing.pem", serials, *digest)
    write(files / "resp.der", _respond(pki, req))
    # Signature, responder chain and nonce against the request as sent.
    checked = openssl("ocsp", "-reqin", files / "req.der", "-respin", files / "resp.der",
                      "-CAfile", files / "root.pem", "-verify_other", files / "issuing.pem")
    assert "Response verify OK" in checked.stdout
    assert "Nonce" not in checked.stdout and "WARNING" not in checked.stdout
    out = _statuses(files, "issuing.pem", serials, *digest)
    assert "Response verify OK" in out
    assert f"{hex(serials[0])}: good" in out
    assert f"{hex(serials[1])}: revoked" in out
    assert "Reason: keyCompromise" in out
    assert f"Revocation Time: {REVOKED_AT:%b %e %H:%M:%S %Y} GMT" in out
    assert f"{hex(serials[2])}: unknown" in out


def test_certs_of_another_issuer_are_unknown(pki: Pki, files: Path) -> None:
    # Same serial as a good certificate, but the CertID names the root.
    serial = pki.org_seal.serial_number
    req = _openssl_request(files, "root.pem", [serial])
    write(files / "resp.der", _respond(pki, req))
    # openssl cannot accept our responder as authorized for root-issued certificates,
    # which is right: only the status is checked here.
    out = _statuses(files, "root.pem", [serial], "-noverify")
    assert f"{hex(serial)}: unknown" in out


def test_nonce_is_echoed_and_absent_when_not_asked(pki: Pki, files: Path) -> None:
    serials = [pki.org_seal.serial_number]
    req = _openssl_request(files, "issuing.pem", serials)
    parsed = ocsp.parse_request(req)
    assert parsed.nonce is not None
    resp = x509_ocsp.load_der_ocsp_response(_respond(pki, req))
    nonce = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert parsed.nonce.endswith(nonce)
    req = _openssl_request(files, "issuing.pem", serials, "-no_nonce")
    assert ocsp.parse_request(req).nonce is None
    resp = x509_ocsp.load_der_ocsp_response(_respond(pki, req))
    assert len(resp.extensions) == 0


def test_response_contents(pki: Pki, files: Path) -> None:
    serials = [pki.personal.serial_number, pki.org_seal.serial_number]
    der = _respond(pki, _openssl_request(files, "issuing.pem", serials))
    resp = x509_ocsp.load_der_ocsp_response(der)
    assert resp.response_status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificates == [pki.ocsp]
    assert resp.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(
        pki.ocsp.public_key()).digest
    assert resp.produced_at_utc == NOW
    singles = list(resp.responses)
    assert [s.serial_number for s in singles] == serials
    revoked, good = singles
    assert revoked.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_time_utc == REVOKED_AT
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    assert good.certificate_status is x509_ocsp.OCSPCertStatus.GOOD
    assert good.this_update_utc == NOW and good.next_update_utc == NOW + timedelta(hours=1)
    assert isinstance(good.hash_algorithm, hashes.SHA1)


def test_revoked_without_reason_and_no_next_update() -> None:
    pki = build_test_pki("ec")
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(
        pki.org_seal, pki.issuing, hashes.SHA256())
    req = builder.build().public_bytes(serialization.Encoding.DER)
    der = ocsp.build_response(pki.ocsp_handle, pki.ocsp, pki.issuing, ocsp.parse_request(req),
                              lambda _s: ocsp.CertStatusInfo.revoked(REVOKED_AT), NOW, 0)
    single = next(iter(x509_ocsp.load_der_ocsp_response(der).responses))
    assert single.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
    assert single.revocation_reason is None and single.next_update_utc is None
    assert isinstance(single.hash_algorithm, hashes.SHA256)


def test_get_path_decoding(pki: Pki, files: Path) -> None:
    req = _openssl_request(files, "issuing.pem", [pki.org_seal.serial_number])
    b64 = base64.b64encode(req).decode()
    assert ocsp.decode_get_path(quote(b64, safe="")) == req
    assert ocsp.decode_get_path(b64) == req
    urlsafe = base64.urlsafe_b64encode(req).decode().rstrip("=")
    assert ocsp.decode_get_path(urlsafe) == req
    for bad in ["", "%%%", "!!!!", "a" * 200_000]:
        with pytest.raises(InvalidInput):
            ocsp.decode_get_path(bad)


def test_garbage_requests_raise_invalid_input(pki: Pki, files: Path) -> None:
    good = _openssl_request(files, "issuing.pem", [pki.org_seal.serial_number])
    samples = [b"", b"\x30\x00", b"garbage", good[:-3], good + b"\x00", os.urandom(300),
               pki.ocsp.public_bytes(serialization.Encoding.DER), b"\x30" + b"\xff" * 9]
    samples += [good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:] for i in range(len(good))]
    answered = 0
    for sample in samples:
        try:
            parsed = ocsp.parse_request(sample)
        except InvalidInput:
            continue
        # Whatever parses must also get a signed answer (e.g. a flipped serial byte).
        x509_ocsp.load_der_ocsp_response(_respond(pki, sample))
        answered += len(parsed.requests)
    assert answered > 0


def test_too_many_certificates_are_refused() -> None:
    cert_id = asn1_ocsp.CertId({"hash_algorithm": {"algorithm": "sha1"},
                                "issuer_name_hash": b"\x00" * 20,
                                "issuer_key_hash": b"\x00" * 20, "serial_number": 1})
    request = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [
        {"req_cert": cert_id}] * (ocsp.MAX_REQUESTS + 1)}})
    with pytest.raises(InvalidInput, match="more than"):
        ocsp.parse_request(request.dump())


@pytest.mark.parametrize("status, text", [
    (ocsp.OcspErrorStatus.MALFORMED_REQUEST, "malformedrequest"),
    (ocsp.OcspErrorStatus.INTERNAL_ERROR, "internalerror"),
    (ocsp.OcspErrorStatus.UNAUTHORIZED, "unauthorized"),
    (ocsp.OcspErrorStatus.TRY_LATER, "trylater"),
])
def test_error_responses(status: ocsp.OcspErrorStatus, text: str, tmp_path: Path) -> None:
    der = ocsp.error_response(status)
    resp = x509_ocsp.load_der_ocsp_response(der)
    assert resp.response_status.name.replace("_", "").lower() == text
    out = openssl("ocsp", "-respin", write(tmp_path / "e.der", der), "-resp_text",
                  check=False).stdout
    assert text in out.lower().replace(" ", "")
