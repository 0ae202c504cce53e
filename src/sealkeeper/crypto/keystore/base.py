"""The narrow key-store interface: generate, public key, sign a digest, destroy,
and, for decryption keys only, unwrap a content-encryption key.

A key store is stateless towards the database: :meth:`KeyStore.generate`
returns an opaque ``key_ref`` (bytes) that the caller stores with the seal.
For the software store the ref is the private key sealed with AES-256-GCM
under the master key; for PKCS#11 it names the key object in the token. The
private key itself never leaves the key store unencrypted.

A key's :class:`KeyPurpose` is fixed when it is generated: a signing key never
decrypts and a decryption key never signs. Decryption keys offer exactly two
operations, enough for CMS recipients (RFC 5652): :meth:`KeyStore.decrypt_key`
(RSAES-OAEP of a wrapped content-encryption key) and
:meth:`KeyStore.derive_shared` (the raw ECDH secret with a sender's ephemeral
key; the KDF and AES key unwrap happen outside, in
:mod:`sealkeeper.crypto.envelope`). Neither reveals anything beyond the content
key of that one message, which the caller returns to its user anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from sealkeeper.crypto.digests import Hashed
from sealkeeper.errors import InvalidInput


class KeyAlgorithm(StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"

    @property
    def is_rsa(self) -> bool:
        return self in (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072)


class SignatureScheme(StrEnum):
    """How a digest is turned into a signature."""

    ECDSA = "ecdsa"          # DER-encoded ECDSA-Sig-Value
    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"      # MGF1 with the digest's hash, salt length = digest size
    #                          unless the caller asks for another (``pss_salt_length``)


class KeyPurpose(StrEnum):
    """What a key may do, fixed at generation."""

    SIGN = "sign"            # sign_digest only
    DECRYPT = "decrypt"      # decrypt_key (RSA) / derive_shared (EC) only


class OaepHash(StrEnum):
    """Hash of RSAES-OAEP (also the MGF1 hash; the label is always empty).

    SHA-1 is allowed here: OAEP does not rely on collision resistance, and it is
    the RFC 3560 default that ``openssl cms -keyopt rsa_padding_mode:oaep`` uses.
    """

    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


_RSA_BITS = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}


def check_pss_salt_length(algorithm: KeyAlgorithm, hashed: Hashed, salt_length: int) -> int:
    """The salt length if an RSA-PSS signature of ``hashed`` with this key can use
    it (0 up to emLen - hLen - 2, RFC 8017 9.1.1), else :class:`InvalidInput`."""
    bits = _RSA_BITS.get(algorithm)
    if bits is None:
        raise InvalidInput(f"a {algorithm.value} key does not sign with RSA-PSS",
                           field="scheme")
    top = (bits - 1 + 7) // 8 - hashed.algorithm.size - 2
    if isinstance(salt_length, bool) or not isinstance(salt_length, int) \
            or not 0 <= salt_length <= top:
        raise InvalidInput(f"the RSA-PSS salt length must be 0 to {top} for a "
                           f"{algorithm.value} key and {hashed.algorithm.value}",
                           field="pss_salt_length")
    return salt_length


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    key_ref: bytes
    public_key: PublicKeyTypes


class KeyStore(Protocol):
    name: str

    def generate(self, algorithm: KeyAlgorithm, *, label: str,
                 purpose: KeyPurpose = KeyPurpose.SIGN) -> GeneratedKey: ...

    def public_key(self, key_ref: bytes) -> PublicKeyTypes: ...

    def sign_digest(self, key_ref: bytes, hashed: Hashed, scheme: SignatureScheme, *,
                    pss_salt_length: int | None = None) -> bytes:
        """Sign ``hashed``. ``pss_salt_length`` (RSA-PSS only; default: the digest
        size) lets a caller meet the parameters a client asked for (CSC
        ``signAlgoParams``); values outside 0..max raise :class:`InvalidInput`."""
        ...

    def destroy(self, key_ref: bytes) -> None: ...

    def pepper_mac(self, data: bytes) -> bytes:
        """Keyed MAC (HMAC-SHA256) with the pepper held inside the key store."""
        ...

    def decrypt_key(self, key_ref: bytes, encrypted_key: bytes, oaep_hash: OaepHash) -> bytes:
        """RSAES-OAEP decryption (MGF1 with ``oaep_hash``, empty label) of a wrapped
        content-encryption key with an RSA :attr:`KeyPurpose.DECRYPT` key.
        Raises :class:`CryptoError` when the key is not such a key or the
        ciphertext does not decrypt."""
        ...

    def derive_shared(self, key_ref: bytes, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """The ECDH shared secret Z (RFC 5753 / SEC 1: the x-coordinate, as many
        bytes as the field) of an EC :attr:`KeyPurpose.DECRYPT` key and a
        sender's ephemeral public key on the same curve. Raises
        :class:`CryptoError` otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class KeyHandle:
    """A key inside a key store, with what is needed to use it."""

    store: KeyStore
    key_ref: bytes
    algorithm: KeyAlgorithm

    def sign(self, hashed: Hashed, scheme: SignatureScheme, *,
             pss_salt_length: int | None = None) -> bytes:
        if pss_salt_length is None:
            return self.store.sign_digest(self.key_ref, hashed, scheme)
        return self.store.sign_digest(self.key_ref, hashed, scheme,
                                      pss_salt_length=pss_salt_length)

    def public_key(self) -> PublicKeyTypes:
        return self.store.public_key(self.key_ref)

    def default_scheme(self) -> SignatureScheme:
        return SignatureScheme.RSA_PKCS1V15 if self.algorithm.is_rsa else SignatureScheme.ECDSA
