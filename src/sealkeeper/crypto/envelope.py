"""The service's half of CMS EnvelopedData: unwrap one recipient's content key.

Scope: parse one CMS ``RecipientInfo`` (RFC 5652 6.2) that a client sends,
name the certificates it is addressed to, and recover the content-encryption
key with a decryption key held in a :class:`KeyStore`. The encrypted content
itself never reaches the service.

Supported recipients (anything else is refused with :class:`InvalidInput`):

- ``KeyTransRecipientInfo`` with RSAES-OAEP (RFC 3560; SHA-1/256/384/512, MGF1
  with the same hash, empty label). RSA PKCS#1 v1.5 key transport is refused:
  answering it would make the service a padding oracle.
- ``KeyAgreeRecipientInfo`` with ephemeral-static ECDH (RFC 5753): the
  originator's ephemeral key, ``dhSinglePass-stdDH-sha*kdf-scheme`` or the
  cofactor variant (the same on P-256 and P-384), the ANSI X9.63 KDF over
  ``ECC-CMS-SharedInfo``, and AES key wrap (RFC 3394, or RFC 5649 with padding).

The key store computes only the RSA decryption or the raw ECDH secret; the KDF
and the AES unwrap run here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms, core, keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_unwrap_with_padding,
)

from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, OaepHash
from sealkeeper.errors import CryptoError, InvalidInput

__all__ = ["MAX_RECIPIENT_INFO", "ParsedRecipient", "RecipientId", "UnwrapFailed",
           "parse_recipient_info", "unwrap_content_key"]

#: Largest RecipientInfo accepted (an RSA-4096 KTRI is about 700 bytes).
MAX_RECIPIENT_INFO = 16 * 1024
_MAX_CONTENT_KEY = 64
_FIELD = "recipient_info"

# dhSinglePass-{std,cofactor}DH-sha*kdf-scheme (SEC 1 / RFC 5753).
_ECDH_KDF_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.133.16.840.63.0.2": hashes.SHA1,    # stdDH-sha1kdf (OpenSSL's default)
    "1.3.132.1.11.0": hashes.SHA224,
    "1.3.132.1.11.1": hashes.SHA256,
    "1.3.132.1.11.2": hashes.SHA384,
    "1.3.132.1.11.3": hashes.SHA512,
    "1.3.133.16.840.63.0.3": hashes.SHA1,    # cofactorDH-sha1kdf
    "1.3.132.1.14.0": hashes.SHA224,
    "1.3.132.1.14.1": hashes.SHA256,
    "1.3.132.1.14.2": hashes.SHA384,
    "1.3.132.1.14.3": hashes.SHA512,
}
_WRAP_BITS = {"aes128_wrap": 128, "aes192_wrap": 192, "aes256_wrap": 256,
              "aes128_wrap_pad": 128, "aes192_wrap_pad": 192, "aes256_wrap_pad": 256}
_OAEP = {"sha1": OaepHash.SHA1, "sha256": OaepHash.SHA256, "sha384": OaepHash.SHA384,
         "sha512": OaepHash.SHA512}
_CURVES: dict[KeyAlgorithm, ec.EllipticCurve] = {
    KeyAlgorithm.EC_P256: ec.SECP256R1(), KeyAlgorithm.EC_P384: ec.SECP384R1()}
_NAMED_CURVES = {"secp256r1": KeyAlgorithm.EC_P256, "secp384r1": KeyAlgorithm.EC_P384}


class UnwrapFailed(CryptoError):
    """The recipient info is well formed but does not yield a content key with
    this key (wrong key, tampered or corrupted data)."""

    code = "unwrap_failed"


class EccCmsSharedInfo(core.Sequence):  # type: ignore[misc]
    """ECC-CMS-SharedInfo (RFC 5753 7.2): the X9.63 KDF's shared info."""

    _fields = [
        ("key_info", cms.KeyEncryptionAlgorithm),
        ("entity_u_info", core.OctetString, {"explicit": 0, "optional": True}),
        ("supp_pub_info", core.OctetString, {"explicit": 2}),
    ]


@dataclass(frozen=True, slots=True)
class RecipientId:
    """Who a recipient info is for: issuer and serial, or a key identifier."""

    issuer: Any = None          # asn1crypto Name (compared normalised)
    serial: int | None = None
    key_identifier: bytes | None = None

    def matches(self, certificate_der: bytes) -> bool:
        cert = asn1_x509.Certificate.load(certificate_der)
        if self.key_identifier is not None:
            return bool(cert.key_identifier == self.key_identifier)
        return bool(cert.serial_number == self.serial and cert.issuer == self.issuer)

    def describe(self) -> str:
        if self.key_identifier is not None:
            return f"subjectKeyIdentifier {self.key_identifier.hex()}"
        return f"serial {self.serial:x}" if self.serial is not None else "unknown"


@dataclass(frozen=True, slots=True)
class ParsedRecipient:
    """A parsed, supported recipient info. ``rids[i]`` names the certificate
    ``encrypted_keys[i]`` is for (one for key transport, one or more for key
    agreement)."""

    kind: str                   # "ktri" | "kari"
    scheme: str                 # e.g. "rsaes-oaep-sha256", "ecdh-x963-sha256-aes256-wrap"
    rids: list[RecipientId]
    encrypted_keys: list[bytes]
    oaep_hash: OaepHash | None = None                         # ktri
    kdf_hash: type[hashes.HashAlgorithm] | None = None        # kari
    wrap: Any = field(default=None, repr=False)               # kari: KeyWrapAlgorithm
    wrap_name: str = ""
    ukm: bytes | None = None
    originator_curve: str | None = None                       # None: the recipient's curve
    originator_point: bytes = b""


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, field=_FIELD)


def _rid(choice: Any) -> RecipientId:
    if choice.name == "issuer_and_serial_number":
        value = choice.chosen
        return RecipientId(issuer=value["issuer"], serial=int(value["serial_number"].native))
    if choice.name == "subject_key_identifier":
        return RecipientId(key_identifier=bytes(choice.chosen.native))
    if choice.name == "r_key_id":
        return RecipientId(key_identifier=bytes(choice.chosen["subjectKeyIdentifier"].native))
    raise _bad(f"unsupported recipient identifier {choice.name}")


def parse_recipient_info(der: bytes) -> ParsedRecipient:
    """Parse and check a DER ``RecipientInfo``; raises :class:`InvalidInput`
    naming what is wrong or unsupported."""
    if not isinstance(der, bytes) or not der:
        raise _bad("the recipient info is empty")
    if len(der) > MAX_RECIPIENT_INFO:
        raise _bad(f"the recipient info is larger than {MAX_RECIPIENT_INFO} bytes")
    try:
        info = cms.RecipientInfo.load(der, strict=True)
        name = info.name
        if name == "ktri":
            return _parse_ktri(info.chosen)
        if name == "kari":
            return _parse_kari(info.chosen)
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise _bad("the recipient info is not a valid DER CMS RecipientInfo") from e
    raise _bad(f"unsupported recipient info type {name}: use key transport (RSA-OAEP) "
               "or key agreement (ECDH)")


def _oaep_hash(algorithm: Any) -> OaepHash:
    alg = algorithm["algorithm"].native
    if alg == "rsaes_pkcs1v15":
        raise _bad("RSA PKCS#1 v1.5 key transport is not supported; encrypt with RSA-OAEP "
                   "(openssl: -keyopt rsa_padding_mode:oaep)")
    if alg != "rsaes_oaep":
        raise _bad(f"unsupported key transport algorithm {alg}")
    params = algorithm["parameters"]
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1" \
            or mgf["parameters"]["algorithm"].native != hash_name:
        raise _bad("RSA-OAEP must use MGF1 with the same hash as OAEP")
    source = params["p_source_algorithm"]
    if source["algorithm"].native != "p_specified" \
            or source["parameters"].native not in (b"", None):
        raise _bad("RSA-OAEP with a label is not supported")
    if hash_name not in _OAEP:
        raise _bad(f"unsupported RSA-OAEP hash {hash_name}")
    return _OAEP[hash_name]


def _parse_ktri(ktri: Any) -> ParsedRecipient:
    oaep = _oaep_hash(ktri["key_encryption_algorithm"])
    encrypted = ktri["encrypted_key"].native
    if not encrypted:
        raise _bad("the recipient info holds no encrypted key")
    return ParsedRecipient("ktri", f"rsaes-oaep-{oaep.value}", [_rid(ktri["rid"])],
                           [bytes(encrypted)], oaep_hash=oaep)


def _parse_kari(kari: Any) -> ParsedRecipient:
    algorithm = kari["key_encryption_algorithm"]
    oid = algorithm["algorithm"].dotted
    kdf_hash = _ECDH_KDF_HASHES.get(oid)
    if kdf_hash is None:
        raise _bad(f"unsupported key agreement algorithm {oid}: use "
                   "dhSinglePass-stdDH-sha*kdf-scheme (RFC 5753)")
    if isinstance(algorithm["parameters"], core.Void):
        raise _bad("the key agreement algorithm does not name its key wrap algorithm")
    wrap = cms.KeyEncryptionAlgorithm.load(algorithm["parameters"].dump())
    wrap_name = wrap["algorithm"].native
    if wrap_name not in _WRAP_BITS:
        raise _bad(f"unsupported key wrap algorithm {wrap_name}: use AES key wrap")
    originator = kari["originator"]
    if originator.name != "originator_key":
        raise _bad("key agreement needs the originator's ephemeral public key "
                   "(originatorKey)")
    pki = originator.chosen
    if pki["algorithm"]["algorithm"].native != "ec":
        raise _bad("the originator key is not an EC key")
    params = pki["algorithm"]["parameters"]
    curve: str | None = None
    if isinstance(params, keys.ECDomainParameters):
        if params.name == "named":
            curve = str(params.chosen.native)
        elif params.name != "implicit_ca":
            raise _bad("the originator key must name its curve")
    point = bytes(pki["public_key"].contents[1:])  # after the unused-bits octet
    rek = kari["recipient_encrypted_keys"]
    if len(rek) == 0:
        raise _bad("the recipient info holds no encrypted key")
    rids = [_rid(k["rid"]) for k in rek]
    encrypted = [bytes(k["encrypted_key"].native) for k in rek]
    ukm = kari["ukm"].native
    scheme = f"ecdh-x963-{kdf_hash.name}-{wrap_name.replace('_', '-')}"
    return ParsedRecipient("kari", scheme, rids, encrypted, kdf_hash=kdf_hash, wrap=wrap,
                           wrap_name=wrap_name, ukm=bytes(ukm) if ukm is not None else None,
                           originator_curve=curve, originator_point=point)


def _originator_key(recipient: ParsedRecipient,
                    algorithm: KeyAlgorithm) -> ec.EllipticCurvePublicKey:
    if recipient.originator_curve is not None \
            and _NAMED_CURVES.get(recipient.originator_curve) != algorithm:
        raise _bad("the originator key is on another curve than the recipient's key")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[algorithm],
                                                           recipient.originator_point)
    except ValueError:
        raise _bad("the originator key is not a valid point on the curve") from None


def unwrap_content_key(recipient: ParsedRecipient, index: int, handle: KeyHandle) -> bytes:
    """The content-encryption key of encrypted key ``index`` of ``recipient``,
    recovered with ``handle`` (a decryption key). Raises :class:`InvalidInput`
    when the recipient info does not fit the key's algorithm and
    :class:`UnwrapFailed` when it does not decrypt."""
    if not 0 <= index < len(recipient.encrypted_keys):
        raise _bad("no such encrypted key in the recipient info")
    wrapped = recipient.encrypted_keys[index]
    if recipient.kind == "ktri":
        if not handle.algorithm.is_rsa or recipient.oaep_hash is None:
            raise _bad("the recipient info uses RSA key transport but the key is an EC key")
        try:
            key = handle.store.decrypt_key(handle.key_ref, wrapped, recipient.oaep_hash)
        except CryptoError as e:
            raise UnwrapFailed("the content key does not decrypt with this key") from e
        return _checked(key)
    if handle.algorithm.is_rsa or recipient.kdf_hash is None:
        raise _bad("the recipient info uses ECDH key agreement but the key is an RSA key")
    peer = _originator_key(recipient, handle.algorithm)
    bits = _WRAP_BITS[recipient.wrap_name]
    shared_info = EccCmsSharedInfo({"key_info": recipient.wrap, "entity_u_info": recipient.ukm,
                                    "supp_pub_info": struct.pack(">I", bits)}).dump()
    try:
        z = handle.store.derive_shared(handle.key_ref, peer)
    except CryptoError as e:
        raise UnwrapFailed("ECDH with the originator key failed") from e
    kek = X963KDF(algorithm=recipient.kdf_hash(), length=bits // 8,
                  sharedinfo=shared_info).derive(z)
    unwrap = aes_key_unwrap_with_padding if recipient.wrap_name.endswith("_pad") \
        else aes_key_unwrap
    try:
        return _checked(unwrap(kek, wrapped))
    except (InvalidUnwrap, ValueError):
        raise UnwrapFailed("the content key does not unwrap with this key") from None


def _checked(key: bytes) -> bytes:
    if not 0 < len(key) <= _MAX_CONTENT_KEY:
        raise UnwrapFailed("the unwrapped content key has an implausible length")
    return key
