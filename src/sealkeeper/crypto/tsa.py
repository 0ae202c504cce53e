"""RFC 3161 time-stamping: answer TimeStampReq, or stamp a digest directly.

Scope: parse a request, refuse what we do not support with a proper
TimeStampResp rejection (badAlg / badRequest / badDataFormat /
unacceptedPolicy / unacceptedExtension), and build the token: a CMS
SignedData over a TSTInfo, signed through the key handle, with signed
attributes contentType, messageDigest and signingCertificateV2 (RFC 5816).
The token is built with asn1crypto on each call (time-stamps are not on the
hot signing path).

Key-store failures propagate as exceptions; a transport answers them with
``rejection_response(TsaFailure.SYSTEM_FAILURE, ...)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyHandle, SignatureScheme
from sealkeeper.crypto.signing import (
    as_utc,
    sign_bytes,
    signature_algorithm_identifier,
    signing_params,
    spki_der,
)
from sealkeeper.errors import ConfigurationError, InvalidInput

__all__ = ["TimeStampAuthority", "TsaFailure", "rejection_response"]

_MAX_REQUEST_SIZE = 64 * 1024
_MAX_NONCE_BITS = 512
_IMPRINT_ALGORITHMS = {alg.value: alg for alg in DigestAlgorithm}


class TsaFailure(StrEnum):
    """PKIFailureInfo bits we may answer with (RFC 3161 2.4.2)."""

    BAD_ALG = "bad_alg"
    BAD_REQUEST = "bad_request"
    BAD_DATA_FORMAT = "bad_data_format"
    TIME_NOT_AVAILABLE = "time_not_available"
    UNACCEPTED_POLICY = "unaccepted_policy"
    UNACCEPTED_EXTENSION = "unaccepted_extensions"
    SYSTEM_FAILURE = "system_failure"


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """TimeStampResp; asn1crypto's own lacks ``OPTIONAL`` on the token (RFC 3161 2.4.2)."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class _Rejected(Exception):
    def __init__(self, failure: TsaFailure, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


def rejection_response(failure: TsaFailure, text: str) -> bytes:
    """A TimeStampResp with status rejection, the failure bit and a reason text."""
    response: bytes = _TimeStampResp({
        "status": {"status": "rejection", "status_string": [text],
                   "fail_info": {failure.value}},
    }).dump()
    return response


class TimeStampAuthority:
    """One time-stamping unit: its key handle, certificate and policy."""

    def __init__(self, handle: KeyHandle, tsa_cert: x509.Certificate,
                 chain: Sequence[x509.Certificate], policy_oid: str,
                 accuracy_seconds: int = 1, digest: DigestAlgorithm = DigestAlgorithm.SHA256,
                 *, scheme: SignatureScheme | None = None, include_tsa_name: bool = True
                 ) -> None:
        """``chain``: the issuing CA certificates sent along with the TSA's."""
        _check_tsa_certificate(tsa_cert)
        if spki_der(handle.public_key()) != spki_der(tsa_cert.public_key()):
            raise ConfigurationError("the TSA key does not match the TSA certificate")
        if accuracy_seconds < 0:
            raise ConfigurationError("the TSA accuracy must not be negative")
        self._handle = handle
        self._public_key = tsa_cert.public_key()
        self._policy = core.ObjectIdentifier(policy_oid)
        self._accuracy = accuracy_seconds
        self._params = signing_params(handle, scheme, digest)
        cert_der = tsa_cert.public_bytes(serialization.Encoding.DER)
        self._cert = asn1_x509.Certificate.load(cert_der)
        self._certs = [cms.CertificateChoices(name="certificate", value=c) for c in (
            self._cert,
            *(asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
              for c in chain))]
        self._tsa_name = (asn1_x509.GeneralName(name="directory_name",
                                                value=self._cert.subject)
                          if include_tsa_name else None)
        self._signing_certificate = tsp.SigningCertificateV2({"certs": [{
            "hash_algorithm": {"algorithm": digest.value},
            "cert_hash": hashlib.new(digest.value, cert_der).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName(name="directory_name",
                                                 value=self._cert.issuer)],
                "serial_number": self._cert.serial_number,
            },
        }]})

    def respond(self, request_der: bytes, now: datetime, serial: int) -> bytes:
        """Answer a TimeStampReq (DER) with a TimeStampResp (DER), granted or rejected."""
        try:
            imprint, nonce, cert_req = self._parse(request_der)
        except _Rejected as r:
            return rejection_response(r.failure, r.text)
        token = self._token(imprint, now, serial, nonce, include_certs=cert_req)
        response: bytes = _TimeStampResp({
            "status": {"status": "granted"},
            "time_stamp_token": token,
        }).dump()
        return response

    def stamp(self, message_imprint: Hashed, now: datetime, serial: int) -> bytes:
        """A time-stamp token (ContentInfo DER) over a digest, certificates included."""
        imprint = tsp.MessageImprint({
            "hash_algorithm": {"algorithm": message_imprint.algorithm.value},
            "hashed_message": message_imprint.digest,
        })
        token: bytes = self._token(imprint, now, serial, None, include_certs=True).dump()
        return token

    # ----------------------------------------------------------------------- internals

    def _parse(self, der: bytes) -> tuple[tsp.MessageImprint, int | None, bool]:
        if not der or len(der) > _MAX_REQUEST_SIZE:
            raise _Rejected(TsaFailure.BAD_DATA_FORMAT, "the request is empty or too large")
        try:
            req = tsp.TimeStampReq.load(der, strict=True)
            native = req.native
        except Exception as e:  # asn1crypto raises assorted errors on garbage
            raise _Rejected(TsaFailure.BAD_DATA_FORMAT,
                            "the request is not a DER TimeStampReq") from e
        if native["version"] != "v1":
            raise _Rejected(TsaFailure.BAD_REQUEST, "only TimeStampReq version 1 is supported")
        algorithm = _IMPRINT_ALGORITHMS.get(native["message_imprint"]["hash_algorithm"]
                                            ["algorithm"])
        if algorithm is None:
            raise _Rejected(TsaFailure.BAD_ALG, "the message imprint must use SHA-256, "
                            "SHA-384 or SHA-512")
        if len(native["message_imprint"]["hashed_message"]) != algorithm.size:
            raise _Rejected(TsaFailure.BAD_DATA_FORMAT, f"a {algorithm.value} message imprint "
                            f"is {algorithm.size} bytes")
        policy = native["req_policy"]
        if policy is not None and req["req_policy"].dotted != self._policy.dotted:
            raise _Rejected(TsaFailure.UNACCEPTED_POLICY,
                            f"only policy {self._policy.dotted} is supported")
        if native["extensions"]:
            raise _Rejected(TsaFailure.UNACCEPTED_EXTENSION, "no request extension is supported")
        nonce: int | None = native["nonce"]
        if nonce is not None and abs(nonce).bit_length() > _MAX_NONCE_BITS:
            raise _Rejected(TsaFailure.BAD_DATA_FORMAT, "the nonce is too long")
        return req["message_imprint"], nonce, bool(native["cert_req"])

    def _token(self, imprint: tsp.MessageImprint, now: datetime, serial: int,
               nonce: int | None, *, include_certs: bool) -> cms.ContentInfo:
        if serial <= 0:
            raise InvalidInput("the time-stamp serial number must be positive", field="serial")
        info: dict[str, object] = {
            "version": "v1",
            "policy": self._policy,
            "message_imprint": imprint,
            "serial_number": serial,
            "gen_time": as_utc(now, "now"),
        }
        if self._accuracy:
            info["accuracy"] = {"seconds": self._accuracy}
        if nonce is not None:
            info["nonce"] = nonce
        if self._tsa_name is not None:
            info["tsa"] = self._tsa_name
        tst_der = tsp.TSTInfo(info).dump()
        digest = self._params.digest
        signed_attrs = cms.CMSAttributes([
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "message_digest", "values": [hashlib.new(digest.value, tst_der).digest()]},
            {"type": "signing_certificate_v2", "values": [self._signing_certificate]},
        ])
        signature = sign_bytes(self._handle, signed_attrs.dump(), self._params,
                               self._public_key)
        signed_data: dict[str, object] = {
            "version": "v3",
            "digest_algorithms": [{"algorithm": digest.value}],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_der),
            },
            "signer_infos": [{
                "version": "v1",
                "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
                    "issuer": self._cert.issuer,
                    "serial_number": self._cert.serial_number,
                }),
                "digest_algorithm": {"algorithm": digest.value},
                "signed_attrs": signed_attrs,
                "signature_algorithm": signature_algorithm_identifier(self._params),
                "signature": signature,
            }],
        }
        if include_certs:
            signed_data["certificates"] = self._certs
        return cms.ContentInfo({"content_type": "signed_data",
                                "content": cms.SignedData(signed_data)})


def _check_tsa_certificate(cert: x509.Certificate) -> None:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    if (eku is None or not eku.critical
            or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]):
        raise ConfigurationError("the TSA certificate needs a critical extended key usage "
                                 "of timeStamping only (RFC 3161 2.3)")
