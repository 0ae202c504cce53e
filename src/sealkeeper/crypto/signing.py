"""Signing X.509, CRL, OCSP and CMS structures through a key handle.

Scope: the signing helpers shared by :mod:`~sealkeeper.crypto.x509ca`,
:mod:`~sealkeeper.crypto.crl`, :mod:`~sealkeeper.crypto.ocsp` and
:mod:`~sealkeeper.crypto.tsa`: choosing the signature scheme and digest of an
issuer key (:func:`signing_params`), signing bytes in the key store
(:func:`sign_bytes`), the matching AlgorithmIdentifier for structures built
with asn1crypto (:func:`signature_algorithm_identifier`), and the small
issuer helpers they all need (:func:`as_utc`, :func:`spki_der`,
:func:`authority_key_identifier`). No database, no HTTP.

Keys may live in an HSM, so we never hold the issuer's private key. The
cryptography builders need one to ``sign()``, hence the *re-sign* trick:
build with a throwaway key of the same type (same signatureAlgorithm, incl.
RSA-PSS parameters) with :func:`sign_with_throwaway`, keep the TBS bytes,
have the key store sign their digest, and splice the new signature into the
outer ``SEQUENCE { tbs, signatureAlgorithm, signature }`` (:func:`resign`).
Every signature is verified against the issuer key before it is returned,
which also catches a handle that does not match its certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from asn1crypto import algos, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PublicKeyTypes,
)

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, SignatureScheme
from sealkeeper.errors import CryptoError, InvalidInput

__all__ = [
    "SigningParams",
    "as_utc",
    "authority_key_identifier",
    "resign",
    "sign_bytes",
    "sign_with_throwaway",
    "signature_algorithm_identifier",
    "signing_params",
    "spki_der",
]


@dataclass(frozen=True, slots=True)
class SigningParams:
    """How an issuer key signs: signature scheme and digest algorithm."""

    scheme: SignatureScheme
    digest: DigestAlgorithm


def signing_params(handle: KeyHandle, scheme: SignatureScheme | None = None,
                   digest: DigestAlgorithm | None = None) -> SigningParams:
    """Defaults: the handle's default scheme; SHA-384 for P-384, else SHA-256."""
    scheme = scheme or handle.default_scheme()
    if handle.algorithm.is_rsa == (scheme is SignatureScheme.ECDSA):
        raise CryptoError(f"signature scheme {scheme.value} does not fit a "
                          f"{handle.algorithm.value} key")
    if digest is None:
        digest = (DigestAlgorithm.SHA384 if handle.algorithm is KeyAlgorithm.EC_P384
                  else DigestAlgorithm.SHA256)
    return SigningParams(scheme, digest)


def sign_bytes(handle: KeyHandle, data: bytes, params: SigningParams,
               verify_with: PublicKeyTypes) -> bytes:
    """Sign ``data`` (hashed here) in the key store and check the signature."""
    signature = handle.sign(Hashed.of(data, params.digest), params.scheme)
    try:
        if isinstance(verify_with, ec.EllipticCurvePublicKey):
            verify_with.verify(signature, data, ec.ECDSA(_hash(params)))
        elif isinstance(verify_with, rsa.RSAPublicKey):
            pad = _rsa_padding(params)
            if pad is None:
                raise CryptoError("an RSA key needs an RSA signature scheme")
            verify_with.verify(signature, data, pad, _hash(params))
        else:
            raise CryptoError(f"unsupported issuer key type {type(verify_with).__name__}")
    except InvalidSignature as e:
        raise CryptoError("the key store produced a signature that does not verify "
                          "under the issuer's public key (wrong key for this certificate?)"
                          ) from e
    return signature


def signature_algorithm_identifier(params: SigningParams) -> algos.SignedDigestAlgorithm:
    """The AlgorithmIdentifier for structures built with asn1crypto (OCSP, CMS).

    Encoded exactly as cryptography encodes it in the certificates we issue.
    """
    name = params.digest.value
    if params.scheme is SignatureScheme.ECDSA:
        return algos.SignedDigestAlgorithm({"algorithm": f"{name}_ecdsa"})
    if params.scheme is SignatureScheme.RSA_PKCS1V15:
        return algos.SignedDigestAlgorithm({"algorithm": f"{name}_rsa",
                                            "parameters": core.Null()})
    return algos.SignedDigestAlgorithm({
        "algorithm": "rsassa_pss",
        "parameters": {
            "hash_algorithm": {"algorithm": name, "parameters": core.Null()},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {
                "algorithm": name, "parameters": core.Null()}},
            "salt_length": params.digest.size,
        },
    })


def sign_with_throwaway(builder: x509.CertificateBuilder
                        | x509.CertificateRevocationListBuilder
                        | x509.CertificateSigningRequestBuilder,
                        params: SigningParams) -> bytes:
    """DER of ``builder`` signed by a throwaway key; only fit for :func:`resign`."""
    key = _throwaway_key(params.scheme is not SignatureScheme.ECDSA)
    try:
        obj = builder.sign(key, _hash(params), rsa_padding=_rsa_padding(params))
    except ValueError as e:
        raise InvalidInput(f"cannot build the structure: {e}") from e
    return obj.public_bytes(serialization.Encoding.DER)


def resign(der: bytes, handle: KeyHandle, params: SigningParams,
           verify_with: PublicKeyTypes, *, tbs: bytes | None = None) -> bytes:
    """Replace the signature of a throwaway-signed structure by the handle's.

    ``der`` is the structure as built by cryptography; ``tbs`` optionally
    replaces its to-be-signed part (the CSR swaps in the real public key).
    """
    envelope = _SignedEnvelope.load(der)
    tbs_der = envelope["tbs"].dump() if tbs is None else tbs
    signature = sign_bytes(handle, tbs_der, params, verify_with)
    resigned: bytes = _SignedEnvelope({
        "tbs": core.Any.load(tbs_der),
        "signature_algorithm": envelope["signature_algorithm"],
        "signature": signature,
    }).dump()
    return resigned


def as_utc(value: datetime, field: str) -> datetime:
    """``value`` in UTC; :class:`InvalidInput` naming ``field`` if it is naive."""
    if value.tzinfo is None:
        raise InvalidInput(f"{field} must be a timezone-aware UTC datetime", field=field)
    return value.astimezone(UTC)


def spki_der(public_key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of ``public_key`` (to compare keys)."""
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def authority_key_identifier(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """AKI for what ``issuer_cert`` signs: its SKI, else one derived from its key."""
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


# --------------------------------------------------------------------------- helpers


_Hash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512

_HASHES: dict[DigestAlgorithm, type[_Hash]] = {
    DigestAlgorithm.SHA256: hashes.SHA256,
    DigestAlgorithm.SHA384: hashes.SHA384,
    DigestAlgorithm.SHA512: hashes.SHA512,
}


def _hash(params: SigningParams) -> _Hash:
    return _HASHES[params.digest]()


def _rsa_padding(params: SigningParams) -> padding.PSS | padding.PKCS1v15 | None:
    if params.scheme is SignatureScheme.RSA_PSS:
        return padding.PSS(mgf=padding.MGF1(_hash(params)), salt_length=padding.PSS.DIGEST_LENGTH)
    if params.scheme is SignatureScheme.RSA_PKCS1V15:
        return padding.PKCS1v15()
    return None


@cache
def _throwaway_key(rsa_key: bool) -> CertificateIssuerPrivateKeyTypes:
    """A key of the issuer's type, only for producing TBS bytes; never trusted."""
    if rsa_key:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class _SignedEnvelope(core.Sequence):  # type: ignore[misc]
    """Outer shape shared by Certificate, CertificateList and CertificationRequest."""

    _fields = [
        ("tbs", core.Any),
        ("signature_algorithm", algos.SignedDigestAlgorithm),
        ("signature", core.OctetBitString),
    ]
