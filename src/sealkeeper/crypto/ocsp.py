"""OCSP (RFC 6960) requests and responses, signed by a delegated responder.

Scope: parse an OCSP request (DER, or the base64 path of a GET), build a
BasicOCSPResponse answering every requested certificate, and the unsigned
error responses. Certificates whose CertID (SHA-1, SHA-256, SHA-384 or
SHA-512 issuer hashes) does not name our issuing CA are answered "unknown".

Both request and response are handled with asn1crypto: cryptography's OCSP
API accepts only one certificate per request and response. The response
data is signed through the key handle with the shared helpers of
:mod:`sealkeeper.crypto.signing`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from urllib.parse import unquote

from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sealkeeper.crypto.digests import DigestAlgorithm
from sealkeeper.crypto.keystore.base import KeyHandle, SignatureScheme
from sealkeeper.crypto.signing import (
    as_utc,
    sign_bytes,
    signature_algorithm_identifier,
    signing_params,
)
from sealkeeper.errors import InvalidInput

__all__ = [
    "MAX_REQUESTS",
    "CertStatus",
    "CertStatusInfo",
    "OcspCertRequest",
    "OcspErrorStatus",
    "ParsedOcspRequest",
    "build_response",
    "decode_get_path",
    "error_response",
    "parse_request",
]

MAX_REQUESTS = 100              # certificates per request
_MAX_REQUEST_SIZE = 64 * 1024   # bytes of DER
_MAX_NONCE_SIZE = 128           # raw extnValue octets (RFC 8954 wants 1..32 + header)
_CERT_ID_HASHES = frozenset({"sha1", "sha256", "sha384", "sha512"})

# RFC 5280 CRLReason codes by cryptography's flag.
_REASON_CODES = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "key_compromise",
    x509.ReasonFlags.ca_compromise: "ca_compromise",
    x509.ReasonFlags.affiliation_changed: "affiliation_changed",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessation_of_operation",
    x509.ReasonFlags.certificate_hold: "certificate_hold",
    x509.ReasonFlags.remove_from_crl: "remove_from_crl",
    x509.ReasonFlags.privilege_withdrawn: "privilege_withdrawn",
    x509.ReasonFlags.aa_compromise: "aa_compromise",
}


class CertStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CertStatusInfo:
    """What the CA knows about one serial number."""

    status: CertStatus
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if (self.status is CertStatus.REVOKED) != (self.revoked_at is not None):
            raise ValueError("revoked_at is required for, and only for, revoked certificates")

    @classmethod
    def good(cls) -> CertStatusInfo:
        return cls(CertStatus.GOOD)

    @classmethod
    def revoked(cls, revoked_at: datetime,
                reason: x509.ReasonFlags | None = None) -> CertStatusInfo:
        return cls(CertStatus.REVOKED, revoked_at, reason)

    @classmethod
    def unknown(cls) -> CertStatusInfo:
        return cls(CertStatus.UNKNOWN)


class OcspErrorStatus(StrEnum):
    """Unsuccessful OCSPResponseStatus values (RFC 6960 4.2.1)."""

    MALFORMED_REQUEST = "malformed_request"
    INTERNAL_ERROR = "internal_error"
    TRY_LATER = "try_later"
    SIGN_REQUIRED = "sign_required"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class OcspCertRequest:
    """One requested certificate; ``cert_id_der`` is echoed in the answer."""

    hash_algorithm: str          # "sha1", "sha256", ... or a dotted OID
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    cert_id_der: bytes


@dataclass(frozen=True, slots=True)
class ParsedOcspRequest:
    requests: tuple[OcspCertRequest, ...]
    nonce: bytes | None          # raw extnValue octets of the nonce extension, echoed as is


def decode_get_path(path_part: str) -> bytes:
    """DER of a GET request: the URL-encoded base64 path segment (RFC 6960 A.1).

    Standard and URL-safe alphabets are accepted, with or without padding.
    """
    # "/" is a base64 character: drop at most the one separating slash in front.
    text = unquote(path_part).strip().removeprefix("/")
    if not text or len(text) > _MAX_REQUEST_SIZE * 2:
        raise InvalidInput("the OCSP GET path is empty or too long", field="request")
    text = text.replace("-", "+").replace("_", "/").replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput("the OCSP GET path is not base64", field="request") from e


def parse_request(der: bytes) -> ParsedOcspRequest:
    """Parse an OCSPRequest; :class:`InvalidInput` on anything malformed.

    A request signature, if any, is ignored (we do not require signed requests).
    """
    if not der or len(der) > _MAX_REQUEST_SIZE:
        raise InvalidInput("the OCSP request is empty or too large", field="request")
    try:
        tbs = asn1_ocsp.OCSPRequest.load(der, strict=True)["tbs_request"]
        tbs.native  # noqa: B018 -- forces the lazy parse of every field
        requests = tuple(_cert_request(item["req_cert"]) for item in tbs["request_list"])
        nonce = _nonce(tbs)
    except InvalidInput:
        raise
    except Exception as e:  # asn1crypto raises assorted errors on garbage
        raise InvalidInput("the OCSP request is not a valid DER OCSPRequest",
                           field="request") from e
    if not requests:
        raise InvalidInput("the OCSP request names no certificate", field="request")
    if len(requests) > MAX_REQUESTS:
        raise InvalidInput(f"the OCSP request names more than {MAX_REQUESTS} certificates",
                           field="request")
    return ParsedOcspRequest(requests, nonce)


def build_response(responder_handle: KeyHandle, responder_cert: x509.Certificate,
                   issuer_cert: x509.Certificate, request: ParsedOcspRequest,
                   status_lookup: Callable[[int], CertStatusInfo], now: datetime,
                   next_update_seconds: int, *, scheme: SignatureScheme | None = None,
                   digest: DigestAlgorithm | None = None,
                   backdate: timedelta = timedelta(0)) -> bytes:
    """A successful OCSPResponse (DER) signed by the delegated responder.

    ``status_lookup`` is called only for serials whose CertID names
    ``issuer_cert``; ``next_update_seconds`` <= 0 omits nextUpdate. thisUpdate
    is ``now - backdate`` (never before a revocation it reports), so relying
    parties whose clocks run up to ``backdate`` behind take it as current;
    producedAt is ``now``.
    """
    now = as_utc(now, "now").replace(microsecond=0)
    issuer_der = issuer_cert.public_bytes(serialization.Encoding.DER)
    responder_der = responder_cert.public_bytes(serialization.Encoding.DER)
    next_update = now + timedelta(seconds=next_update_seconds)
    responses = []
    for item in request.requests:
        info = (status_lookup(item.serial) if _names_issuer(item, issuer_der)
                else CertStatusInfo.unknown())
        this_update = now - backdate
        if info.revoked_at is not None:
            revoked = as_utc(info.revoked_at, "revoked_at").replace(microsecond=0)
            this_update = min(now, max(this_update, revoked))
        single: dict[str, object] = {
            "cert_id": asn1_ocsp.CertId.load(item.cert_id_der),
            "cert_status": _cert_status(info),
            "this_update": this_update,
        }
        if next_update_seconds > 0:
            single["next_update"] = next_update
        responses.append(single)
    data: dict[str, object] = {
        "version": "v1",
        "responder_id": asn1_ocsp.ResponderId(name="by_key",
                                              value=_key_hash(responder_der, "sha1")),
        "produced_at": now,
        "responses": responses,
    }
    if request.nonce is not None:
        data["response_extensions"] = [
            {"extn_id": "nonce", "critical": False,
             "extn_value": core.ParsableOctetString(request.nonce)}]
    tbs = asn1_ocsp.ResponseData(data)
    tbs_der = tbs.dump()
    params = signing_params(responder_handle, scheme, digest)
    signature = sign_bytes(responder_handle, tbs_der, params, responder_cert.public_key())
    basic = asn1_ocsp.BasicOCSPResponse({
        "tbs_response_data": tbs,
        "signature_algorithm": signature_algorithm_identifier(params),
        "signature": signature,
        "certs": [asn1_x509.Certificate.load(responder_der)],
    })
    response: bytes = asn1_ocsp.OCSPResponse({
        "response_status": "successful",
        "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
    }).dump()
    return response


def error_response(status: OcspErrorStatus) -> bytes:
    """An unsigned OCSPResponse carrying only an error status."""
    response: bytes = asn1_ocsp.OCSPResponse({"response_status": status.value}).dump()
    return response


# --------------------------------------------------------------------------- helpers


def _cert_request(cert_id: asn1_ocsp.CertId) -> OcspCertRequest:
    oid = cert_id["hash_algorithm"]["algorithm"]
    if core.ObjectIdentifier(oid.dotted).contents != oid.contents:  # asn1crypto is lenient
        raise InvalidInput("the OCSP request has a malformed CertID hash algorithm",
                           field="request")
    return OcspCertRequest(
        hash_algorithm=oid.native,
        issuer_name_hash=cert_id["issuer_name_hash"].native,
        issuer_key_hash=cert_id["issuer_key_hash"].native,
        serial=cert_id["serial_number"].native,
        cert_id_der=cert_id.dump(),
    )


def _nonce(tbs: asn1_ocsp.TBSRequest) -> bytes | None:
    for ext in tbs["request_extensions"] or ():
        if ext["extn_id"].native == "nonce":
            raw: bytes = ext["extn_value"].contents
            if not raw or len(raw) > _MAX_NONCE_SIZE:
                raise InvalidInput("the OCSP nonce is empty or too long", field="request")
            return raw
    return None


def _names_issuer(item: OcspCertRequest, issuer_der: bytes) -> bool:
    if item.hash_algorithm not in _CERT_ID_HASHES:
        return False
    name_hash, key_hash = _issuer_hashes(issuer_der, item.hash_algorithm)
    return item.issuer_name_hash == name_hash and item.issuer_key_hash == key_hash


@lru_cache(maxsize=32)
def _issuer_hashes(issuer_der: bytes, algorithm: str) -> tuple[bytes, bytes]:
    cert = asn1_x509.Certificate.load(issuer_der)
    name_der = cert["tbs_certificate"]["subject"].dump()
    return (hashlib.new(algorithm, name_der, usedforsecurity=False).digest(),
            _key_hash(issuer_der, algorithm))


@lru_cache(maxsize=32)
def _key_hash(cert_der: bytes, algorithm: str) -> bytes:
    """Hash of the subjectPublicKey BIT STRING value (without the unused-bits octet)."""
    cert = asn1_x509.Certificate.load(cert_der)
    key_bits = cert["tbs_certificate"]["subject_public_key_info"]["public_key"].contents[1:]
    return hashlib.new(algorithm, key_bits, usedforsecurity=False).digest()


def _cert_status(info: CertStatusInfo) -> asn1_ocsp.CertStatus:
    if info.status is CertStatus.GOOD:
        return asn1_ocsp.CertStatus(name="good", value=asn1_ocsp.StatusGood())
    if info.status is CertStatus.UNKNOWN:
        return asn1_ocsp.CertStatus(name="unknown", value=asn1_ocsp.StatusUnknown())
    assert info.revoked_at is not None
    revoked: dict[str, object] = {
        "revocation_time": as_utc(info.revoked_at, "revoked_at").replace(microsecond=0)}
    if info.reason is not None and info.reason is not x509.ReasonFlags.unspecified:
        revoked["revocation_reason"] = _REASON_CODES[info.reason]
    return asn1_ocsp.CertStatus(name="revoked", value=asn1_ocsp.RevokedInfo(revoked))
