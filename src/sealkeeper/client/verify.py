"""Client-side checks of a CMS SignedData the server returned for one of our digests.

Scope: before a signature is embedded in a PDF or written next to a file, the
client makes sure it is what was asked for: a detached CMS SignedData with one
signer, over the digest we sent (messageDigest attribute and digest algorithm),
signed by the expected certificate, with a signature that verifies. A server
bug or a mixed-up batch then fails loudly instead of producing a document
that will never validate. Full validation (trust, revocation, timestamps) is
the job of the verification command, not of this module.
"""

from __future__ import annotations

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation.generic_cms import validate_sig_integrity

from sealkeeper.crypto.digests import Hashed
from sealkeeper.errors import CryptoError

__all__ = ["check_signature_for_digest", "has_signature_timestamp", "signer_info_of"]

_SIGNATURE_TIMESTAMP = "signature_time_stamp_token"


def _load(cms_der: bytes, what: str) -> cms.ContentInfo:
    if not isinstance(cms_der, bytes | bytearray) or not cms_der:
        raise CryptoError(f"the server returned no signature for {what}")
    try:
        info = cms.ContentInfo.load(bytes(cms_der), strict=True)
        content_type = info["content_type"].native
        if content_type == "signed_data":
            signed = info["content"]
            count = len(signed["signer_infos"])
            attached = signed["encap_content_info"]["content"].native is not None
    except Exception as e:  # asn1crypto raises assorted errors on garbage
        raise CryptoError(f"the server's signature for {what} is not valid DER CMS") from e
    if content_type != "signed_data":
        raise CryptoError(f"the server's signature for {what} is not a CMS SignedData")
    if count != 1:
        raise CryptoError(f"the server's signature for {what} has {count} signers, not one")
    if attached:
        raise CryptoError(f"the server's signature for {what} is not detached")
    return info


def signer_info_of(info: cms.ContentInfo) -> cms.SignerInfo:
    """The single SignerInfo of a ContentInfo accepted by :func:`check_signature_for_digest`."""
    signer: cms.SignerInfo = info["content"]["signer_infos"][0]
    return signer


def _signer_certificate(info: cms.ContentInfo, what: str,
                        expected_der: bytes | None) -> asn1_x509.Certificate:
    signer = signer_info_of(info)
    sid = signer["sid"]
    certs = [c.chosen for c in info["content"]["certificates"] or []
             if c.name == "certificate"]
    if expected_der is not None:
        expected = asn1_x509.Certificate.load(expected_der)
        certs = [expected, *certs]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if (cert.issuer == sid.chosen["issuer"]
                    and cert.serial_number == sid.chosen["serial_number"].native):
                break
        elif cert.key_identifier == sid.chosen.native:
            break
    else:
        raise CryptoError(f"the server's signature for {what} does not carry the "
                          "signer's certificate")
    if expected_der is not None and cert.dump() != expected.dump():
        raise CryptoError(f"the server's signature for {what} was made with another "
                          "certificate than the seal's")
    return cert


def check_signature_for_digest(cms_der: bytes, expected: Hashed, *, what: str,
                               signer_certificate: bytes | None = None) -> cms.ContentInfo:
    """Parse ``cms_der`` and check it signs ``expected``; return the parsed ContentInfo.

    ``what`` names the file in error messages. ``signer_certificate`` (DER),
    when known, must be the certificate that signed. Raises :class:`CryptoError`.
    """
    info = _load(cms_der, what)
    signer = signer_info_of(info)
    try:
        md_name = signer["digest_algorithm"]["algorithm"].native
    except Exception as e:
        raise CryptoError(f"the server's signature for {what} has an unreadable "
                          "digest algorithm") from e
    if md_name != expected.algorithm.value:
        raise CryptoError(f"the server's signature for {what} uses {md_name}, "
                          f"not {expected.algorithm.value}")
    cert = _signer_certificate(info, what, signer_certificate)
    try:
        intact, valid = validate_sig_integrity(signer, cert, "data", expected.digest)
    except Exception as e:  # pyHanko raises several error types on bad attributes
        raise CryptoError(f"the server's signature for {what} could not be checked: "
                          f"{e}") from e
    if not intact:
        raise CryptoError(f"the server's signature for {what} is over another document "
                          "digest than the one sent")
    if not valid:
        raise CryptoError(f"the server's signature for {what} does not verify with the "
                          "signer's certificate")
    return info


def has_signature_timestamp(info: cms.ContentInfo) -> bool:
    """Whether the signer carries an RFC 3161 signature time-stamp token."""
    unsigned = signer_info_of(info)["unsigned_attrs"]
    if unsigned.native is None:
        return False
    return any(attr["type"].native == _SIGNATURE_TIMESTAMP for attr in unsigned)
