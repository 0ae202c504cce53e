"""The log key: what signs the organizations' checkpoints.

Scope: :class:`LogSigner`, a signing callback and its public key, built
from a key in the key store (the private key never leaves the store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, KeyStore, SignatureScheme
from sealkeeper.errors import ConfigurationError

__all__ = ["LogSigner", "SignerSource"]


@dataclass(frozen=True, slots=True)
class LogSigner:
    """Signs checkpoint notes.

    ``sign`` receives the note text and returns the signed-note signature
    (for ECDSA keys: a DER ECDSA signature over SHA-256 of the text, signed-note
    type 0x02). ``key_name`` is the signed-note key name; when ``None`` each
    organization's checkpoint origin is used, as the signed-note spec advises.
    """

    sign: Callable[[bytes], bytes]
    public_key: PublicKeyTypes
    key_name: str | None = None

    @classmethod
    def from_key_store(cls, store: KeyStore, key_ref: bytes, algorithm: KeyAlgorithm,
                       key_name: str | None = None) -> LogSigner:
        """A signer over an EC key of the key store (RSA has no signed-note type)."""
        if algorithm.is_rsa:
            raise ConfigurationError("the log key must be an EC key (P-256 or P-384)")

        def sign(message: bytes) -> bytes:
            return store.sign_digest(key_ref, Hashed.of(message), SignatureScheme.ECDSA)

        return cls(sign=sign, public_key=store.public_key(key_ref), key_name=key_name)

    @classmethod
    def from_key_handle(cls, handle: KeyHandle, key_name: str | None = None) -> LogSigner:
        """A signer over a key-store key (e.g. the CA's ``log`` key)."""
        return cls.from_key_store(handle.store, handle.key_ref, handle.algorithm, key_name)


SignerSource = LogSigner | Callable[[], LogSigner]
"""A signer, or a function building one when a checkpoint is first signed (so
that appending never needs the log key)."""
