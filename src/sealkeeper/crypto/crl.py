"""Certificate revocation lists (RFC 5280 section 5) signed through a key handle.

Scope: build one complete CRL v2 (DER) for a CA from the list of its revoked
certificates: authorityKeyIdentifier, cRLNumber, and a reasonCode per entry
(omitted for ``unspecified``, as RFC 5280 5.3.1 recommends). Signing uses the
re-sign helpers of :mod:`sealkeeper.crypto.signing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sealkeeper.crypto.digests import DigestAlgorithm
from sealkeeper.crypto.keystore.base import KeyHandle, SignatureScheme
from sealkeeper.crypto.signing import (
    as_utc,
    authority_key_identifier,
    resign,
    sign_with_throwaway,
    signing_params,
)
from sealkeeper.errors import InvalidInput

__all__ = ["RevokedEntry", "build_crl"]

_MAX_CRL_NUMBER = (1 << 159) - 1  # at most 20 octets (RFC 5280 5.2.3)


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def build_crl(issuer_handle: KeyHandle, issuer_cert: x509.Certificate,
              revoked: Sequence[RevokedEntry], crl_number: int, this_update: datetime,
              next_update: datetime, *, scheme: SignatureScheme | None = None,
              digest: DigestAlgorithm | None = None) -> bytes:
    """Return the DER of a CRL issued by ``issuer_cert`` listing ``revoked``."""
    this_update = as_utc(this_update, "this_update").replace(microsecond=0)
    next_update = as_utc(next_update, "next_update").replace(microsecond=0)
    if next_update <= this_update:
        raise InvalidInput("nextUpdate must be after thisUpdate", field="next_update")
    if not 0 <= crl_number <= _MAX_CRL_NUMBER:
        raise InvalidInput("the CRL number must be a non-negative integer of at most "
                           "159 bits", field="crl_number")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(authority_key_identifier(issuer_cert), critical=False)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(_revoked(entry))
    params = signing_params(issuer_handle, scheme, digest)
    der = resign(sign_with_throwaway(builder, params), issuer_handle, params,
                 issuer_cert.public_key())
    # Round-trip through the parser: what we publish must load.
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.DER)


def _revoked(entry: RevokedEntry) -> x509.RevokedCertificate:
    if entry.serial <= 0:
        raise InvalidInput(f"invalid serial number {entry.serial}", field="revoked")
    if entry.reason is x509.ReasonFlags.remove_from_crl:
        raise InvalidInput("removeFromCRL only appears in delta CRLs", field="revoked")
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(as_utc(entry.revoked_at, "revoked_at").replace(microsecond=0))
    )
    if entry.reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(entry.reason), critical=False)
    return builder.build()
