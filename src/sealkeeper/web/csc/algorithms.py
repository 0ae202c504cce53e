"""Signature algorithms of the CSC API, by OID: what ``key/algo`` lists for a
seal's key, and how a ``signAlgo`` (+ ``hashAlgo``, ``signAlgoParams``) maps
to a :class:`SignatureScheme`, a digest algorithm and, for RSASSA-PSS, the
salt length the client declared (which the signature must then use)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from asn1crypto import algos

from sealkeeper.crypto.digests import DigestAlgorithm
from sealkeeper.crypto.keystore.base import KeyAlgorithm, SignatureScheme
from sealkeeper.web.csc.errors import CscError, invalid

ECDSA_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_SHA384 = "1.2.840.10045.4.3.3"
ECDSA_SHA512 = "1.2.840.10045.4.3.4"
RSA_SHA256 = "1.2.840.113549.1.1.11"
RSA_SHA384 = "1.2.840.113549.1.1.12"
RSA_SHA512 = "1.2.840.113549.1.1.13"
RSA_PSS = "1.2.840.113549.1.1.10"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"   # PKCS#1 v1.5, the hash named by hashAlgo

_SHA256, _SHA384, _SHA512 = DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, \
    DigestAlgorithm.SHA512

#: signAlgo -> (scheme, implied digest algorithm or None when hashAlgo names it)
_ALGOS: dict[str, tuple[SignatureScheme, DigestAlgorithm | None]] = {
    ECDSA_SHA256: (SignatureScheme.ECDSA, _SHA256),
    ECDSA_SHA384: (SignatureScheme.ECDSA, _SHA384),
    ECDSA_SHA512: (SignatureScheme.ECDSA, _SHA512),
    RSA_SHA256: (SignatureScheme.RSA_PKCS1V15, _SHA256),
    RSA_SHA384: (SignatureScheme.RSA_PKCS1V15, _SHA384),
    RSA_SHA512: (SignatureScheme.RSA_PKCS1V15, _SHA512),
    RSA_ENCRYPTION: (SignatureScheme.RSA_PKCS1V15, None),
    RSA_PSS: (SignatureScheme.RSA_PSS, None),
}

EC_ALGOS = [ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512]
RSA_ALGOS = [RSA_SHA256, RSA_SHA384, RSA_SHA512, RSA_PSS, RSA_ENCRYPTION]
ALL_ALGOS = EC_ALGOS + RSA_ALGOS


@dataclass(frozen=True, slots=True)
class KeyInfo:
    algos: list[str]
    length: int
    curve: str | None


_KEYS = {
    KeyAlgorithm.EC_P256: KeyInfo(EC_ALGOS, 256, "1.2.840.10045.3.1.7"),
    KeyAlgorithm.EC_P384: KeyInfo(EC_ALGOS, 384, "1.3.132.0.34"),
    KeyAlgorithm.RSA_2048: KeyInfo(RSA_ALGOS, 2048, None),
    KeyAlgorithm.RSA_3072: KeyInfo(RSA_ALGOS, 3072, None),
}


def key_info(algorithm: KeyAlgorithm) -> KeyInfo:
    return _KEYS[algorithm]


@dataclass(frozen=True, slots=True)
class SignSpec:
    scheme: SignatureScheme
    digest: DigestAlgorithm
    pss_salt_length: int | None = None


def _pss(params_b64: str | None, hash_algo: DigestAlgorithm | None,
         hash_name: str) -> tuple[DigestAlgorithm, int]:
    if params_b64 is None:
        raise invalid("Missing (or invalid type) string parameter signAlgoParams "
                      "(RSASSA-PSS needs its parameters)")
    try:
        der = base64.b64decode(params_b64, validate=True)
        params = algos.RSASSAPSSParams.load(der, strict=True)
        native = params.native
    except (binascii.Error, ValueError, TypeError, OSError) as e:
        raise invalid("Invalid parameter signAlgoParams: not base64 of DER "
                      "RSASSA-PSS-params") from e
    except Exception as e:  # asn1crypto raises assorted errors on garbage
        raise invalid("Invalid parameter signAlgoParams: not base64 of DER "
                      "RSASSA-PSS-params") from e
    name = native["hash_algorithm"]["algorithm"]
    digest = {d.value: d for d in DigestAlgorithm}.get(name)
    if digest is None:
        raise invalid(f"Invalid parameter signAlgoParams: hash algorithm {name} is not "
                      "supported; use SHA-256, SHA-384 or SHA-512")
    mgf = native["mask_gen_algorithm"]
    if mgf["algorithm"] != "mgf1" or (mgf["parameters"] or {}).get("algorithm") != name:
        raise invalid("Invalid parameter signAlgoParams: the mask generation function "
                      "must be MGF1 with the same hash algorithm")
    if native["trailer_field"] not in ("trailer_field_bc", 1):
        raise invalid("Invalid parameter signAlgoParams: the trailer field must be 1")
    if hash_algo is not None and hash_algo is not digest:
        raise invalid(f"String parameter {hash_name} contradicts with signAlgoParams")
    salt = native["salt_length"]
    if not isinstance(salt, int) or salt < 0:
        raise invalid("Invalid parameter signAlgoParams: invalid salt length")
    return digest, salt


def sign_spec(sign_algo: str, hash_algo: DigestAlgorithm | None, params_b64: str | None,
              key: KeyAlgorithm | None, *, hash_name: str = "hashAlgo") -> SignSpec:
    """What a signHash request asks for; refused when it does not fit the key
    (``key`` None: not known yet, the signing service checks it)."""
    entry = _ALGOS.get(sign_algo.strip())
    if entry is None:
        raise invalid(f"Invalid parameter signAlgo: {sign_algo[:80]!r} is not supported; "
                      f"use one of {', '.join(ALL_ALGOS)}")
    scheme, implied = entry
    salt: int | None = None
    if scheme is SignatureScheme.RSA_PSS:
        digest, salt = _pss(params_b64, hash_algo, hash_name)
    elif implied is not None:
        if hash_algo is not None and hash_algo is not implied:
            raise invalid(f"String parameter {hash_name} contradicts with signAlgo parameter")
        digest = implied
    elif hash_algo is None:
        raise invalid(f"Missing (or invalid type) string parameter {hash_name} "
                      f"(signAlgo {sign_algo} does not name a hash algorithm)")
    else:
        digest = hash_algo
    if key is not None and sign_algo.strip() not in _KEYS[key].algos:
        raise CscError(f"Invalid parameter signAlgo: the credential's {key.value} key "
                       f"signs with {', '.join(_KEYS[key].algos)}")
    return SignSpec(scheme, digest, salt)
