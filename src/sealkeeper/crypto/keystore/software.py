"""Software key store (the default): private keys sealed under a master key.

Scope: loading or creating the 32-byte master key, generating EC / RSA keys
with ``cryptography``, sealing their PKCS#8 DER with AES-256-GCM into an
opaque ``key_ref``, signing digests from an in-process cache of opened keys,
the pepper MAC, and for decryption keys RSA-OAEP decryption and ECDH.

``key_ref`` layout (version 1)::

    b"SKSW" | version (1 byte) | len(algorithm) (1 byte) | algorithm (ASCII)
            | nonce (12 bytes) | AES-256-GCM ciphertext + tag

A decryption key (:attr:`KeyPurpose.DECRYPT`) has the magic ``b"SKSD"``
instead. The header (everything before the nonce) is the GCM associated data,
so the algorithm, version and purpose cannot be swapped without the tag
failing. The AES key
and the pepper key are derived from the master key with HKDF-SHA256 (distinct
``info`` strings); the master key itself is not kept by the store, and is never
logged, printed or shown in ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import threading
from collections import OrderedDict
from pathlib import Path

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import (
    GeneratedKey,
    KeyAlgorithm,
    KeyPurpose,
    OaepHash,
    SignatureScheme,
    check_pss_salt_length,
)
from sealkeeper.errors import ConfigurationError, CryptoError, InvalidInput

__all__ = ["MASTER_KEY_FILENAME", "MASTER_KEY_SIZE", "SoftwareKeyStore", "load_master_key"]

MASTER_KEY_SIZE = 32
MASTER_KEY_FILENAME = "master.key"

_MAGIC = b"SKSW"
_MAGIC_DECRYPT = b"SKSD"
_VERSION = 1
_NONCE_SIZE = 12
_WRAP_INFO = b"sealkeeper key wrap v1"
_PEPPER_INFO = b"sealkeeper pepper v1"
_DEFAULT_CACHE_SIZE = 1024

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_HASHES: dict[DigestAlgorithm, type[hashes.HashAlgorithm]] = {
    DigestAlgorithm.SHA256: hashes.SHA256,
    DigestAlgorithm.SHA384: hashes.SHA384,
    DigestAlgorithm.SHA512: hashes.SHA512,
}
# Built once: the per-signature path only looks these up.
_PREHASHED = {alg: Prehashed(h()) for alg, h in _HASHES.items()}
_ECDSA = {alg: ec.ECDSA(p) for alg, p in _PREHASHED.items()}
_PSS = {alg: padding.PSS(mgf=padding.MGF1(h()), salt_length=alg.size)
        for alg, h in _HASHES.items()}
_PKCS1V15 = padding.PKCS1v15()

_CURVES: dict[KeyAlgorithm, type[ec.EllipticCurve]] = {
    KeyAlgorithm.EC_P256: ec.SECP256R1,
    KeyAlgorithm.EC_P384: ec.SECP384R1,
}
_RSA_BITS = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}
_OAEP_HASHES: dict[OaepHash, type[hashes.HashAlgorithm]] = {
    OaepHash.SHA1: hashes.SHA1, OaepHash.SHA256: hashes.SHA256,
    OaepHash.SHA384: hashes.SHA384, OaepHash.SHA512: hashes.SHA512,
}


# --------------------------------------------------------------------------- master key

def load_master_key(data_dir: Path, *, env_value: str | None, file: Path | None,
                    create: bool) -> bytes:
    """Return the 32-byte master key.

    Sources, in order: ``env_value`` (base64 of 32 bytes), ``file`` (raw 32
    bytes or base64 text), else ``<data_dir>/master.key``. The data-directory
    file is generated on first start when ``create`` is true (mode 0600,
    written to a fresh ``O_EXCL`` file then linked into place, so concurrent
    first starts agree on one key). A key file whose mode gives group or other
    users any access is refused. Raises :class:`ConfigurationError`; messages
    never contain key material.
    """
    if env_value is not None and env_value.strip():
        if file is not None:
            raise ConfigurationError(
                "set the master key either in the environment or as a file, not both",
                field="master_key_file")
        return _decode_key_text(env_value, source="the master key environment variable",
                                field="master_key_env")
    if file is not None:
        return _read_key_file(Path(file), field="master_key_file")
    path = Path(data_dir) / MASTER_KEY_FILENAME
    if not path.exists():
        if not create:
            raise ConfigurationError(f"master key file {path} does not exist",
                                     field="master_key_file")
        _create_key_file(path)
    return _read_key_file(path, field="master_key_file")


def _decode_key_text(text: str | bytes, *, source: str, field: str) -> bytes:
    raw = text.strip().encode("ascii", "replace") if isinstance(text, str) else text.strip()
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        try:
            key = base64.urlsafe_b64decode(raw)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"{source} is not valid base64", field=field) from None
    if len(key) != MASTER_KEY_SIZE:
        raise ConfigurationError(
            f"{source} must encode exactly {MASTER_KEY_SIZE} bytes (got {len(key)})",
            field=field)
    return key


def _read_key_file(path: Path, *, field: str) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigurationError(f"master key file {path} does not exist", field=field) from None
    except OSError as e:
        raise ConfigurationError(f"cannot access master key file {path}: {e.strerror}",
                                 field=field) from e
    if not stat.S_ISREG(st.st_mode):
        raise ConfigurationError(f"master key file {path} is not a regular file", field=field)
    if st.st_mode & 0o077:
        raise ConfigurationError(
            f"master key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must not be "
            "accessible by group or others (chmod 600)", field=field)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"cannot read master key file {path}: {e.strerror}",
                                 field=field) from e
    if len(data) == MASTER_KEY_SIZE:
        return data
    return _decode_key_text(data, source=f"master key file {path}", field=field)


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (0600) unless another process wins the race."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(secrets.token_bytes(MASTER_KEY_SIZE)) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic; fails if the file appeared meanwhile
        except FileExistsError:
            return
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- key refs

def _header(algorithm: KeyAlgorithm, purpose: KeyPurpose = KeyPurpose.SIGN) -> bytes:
    name = algorithm.value.encode("ascii")
    magic = _MAGIC_DECRYPT if purpose is KeyPurpose.DECRYPT else _MAGIC
    return magic + bytes((_VERSION, len(name))) + name


def _purpose(key_ref: bytes) -> KeyPurpose:
    """The purpose a ref's header names (authentic once the ref has opened)."""
    return KeyPurpose.DECRYPT if bytes(key_ref).startswith(_MAGIC_DECRYPT) else KeyPurpose.SIGN


def _parse_ref(key_ref: bytes) -> tuple[KeyAlgorithm, bytes, bytes, bytes]:
    """Split a ref into (algorithm, header/AAD, nonce, ciphertext)."""
    if not isinstance(key_ref, bytes | bytearray | memoryview):
        raise CryptoError("malformed software key reference")
    ref = bytes(key_ref)
    if len(ref) < len(_MAGIC) + 2 or not ref.startswith((_MAGIC, _MAGIC_DECRYPT)):
        raise CryptoError("malformed software key reference")
    version, name_len = ref[len(_MAGIC)], ref[len(_MAGIC) + 1]
    if version != _VERSION:
        raise CryptoError(f"unsupported software key reference version {version}")
    end = len(_MAGIC) + 2 + name_len
    try:
        algorithm = KeyAlgorithm(ref[len(_MAGIC) + 2:end].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise CryptoError("malformed software key reference") from None
    nonce, ciphertext = ref[end:end + _NONCE_SIZE], ref[end + _NONCE_SIZE:]
    if len(nonce) != _NONCE_SIZE or len(ciphertext) <= 16:
        raise CryptoError("malformed software key reference")
    return algorithm, ref[:end], nonce, ciphertext


def _matches(algorithm: KeyAlgorithm, key: _PrivateKey) -> bool:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = _CURVES.get(algorithm)
        return curve is not None and isinstance(key.curve, curve)
    return _RSA_BITS.get(algorithm) == key.key_size


def _check_scheme(algorithm: KeyAlgorithm, scheme: SignatureScheme) -> None:
    ok = (scheme is not SignatureScheme.ECDSA) if algorithm.is_rsa \
        else (scheme is SignatureScheme.ECDSA)
    if not ok:
        raise InvalidInput(f"signature scheme {scheme.value} does not fit a "
                           f"{algorithm.value} key", field="scheme")


def _hkdf(master_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


# --------------------------------------------------------------------------- the store

class SoftwareKeyStore:
    """Key store whose refs are private keys sealed under the master key.

    Opened keys are kept in a bounded in-process LRU cache keyed by
    ``sha256(key_ref)`` (opening an RSA key costs ~35 ms; signing from the
    cache costs microseconds). Thread-safe.
    """

    name: str = "software"

    def __init__(self, master_key: bytes, *, cache_size: int = _DEFAULT_CACHE_SIZE) -> None:
        if not isinstance(master_key, bytes) or len(master_key) != MASTER_KEY_SIZE:
            raise ConfigurationError(f"the master key must be {MASTER_KEY_SIZE} bytes")
        if cache_size < 1:
            raise ConfigurationError("the key cache size must be at least 1")
        self._aead = AESGCM(_hkdf(master_key, _WRAP_INFO))
        self._pepper_key = _hkdf(master_key, _PEPPER_INFO)
        self._cache: OrderedDict[bytes, tuple[KeyAlgorithm, _PrivateKey]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SoftwareKeyStore(cached_keys={len(self._cache)})"

    # -- KeyStore interface

    def generate(self, algorithm: KeyAlgorithm, *, label: str,
                 purpose: KeyPurpose = KeyPurpose.SIGN) -> GeneratedKey:
        """Generate a key and return its sealed ref. ``label`` is not stored;
        ``purpose`` is sealed into the ref's header."""
        algorithm = KeyAlgorithm(algorithm)
        purpose = KeyPurpose(purpose)
        key: _PrivateKey
        if algorithm.is_rsa:
            key = rsa.generate_private_key(public_exponent=65537,
                                           key_size=_RSA_BITS[algorithm])
        else:
            key = ec.generate_private_key(_CURVES[algorithm]())
        der = key.private_bytes(serialization.Encoding.DER,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        header = _header(algorithm, purpose)
        nonce = secrets.token_bytes(_NONCE_SIZE)
        key_ref = header + nonce + self._aead.encrypt(nonce, der, header)
        self._remember(hashlib.sha256(key_ref).digest(), algorithm, key)
        return GeneratedKey(key_ref=key_ref, public_key=key.public_key())

    def public_key(self, key_ref: bytes) -> PublicKeyTypes:
        return self._open(key_ref)[1].public_key()

    def sign_digest(self, key_ref: bytes, hashed: Hashed, scheme: SignatureScheme, *,
                    pss_salt_length: int | None = None) -> bytes:
        algorithm, key = self._open(key_ref)
        if _purpose(key_ref) is not KeyPurpose.SIGN:
            raise CryptoError("this key is a decryption key; it does not sign")
        _check_scheme(algorithm, scheme)
        try:
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key.sign(hashed.digest, _ECDSA[hashed.algorithm])
            pad: padding.AsymmetricPadding = (
                _PKCS1V15 if scheme is SignatureScheme.RSA_PKCS1V15 else _PSS[hashed.algorithm])
            if scheme is SignatureScheme.RSA_PSS and pss_salt_length is not None:
                pad = padding.PSS(mgf=padding.MGF1(_HASHES[hashed.algorithm]()),
                                  salt_length=check_pss_salt_length(algorithm, hashed,
                                                                    pss_salt_length))
            return key.sign(hashed.digest, pad, _PREHASHED[hashed.algorithm])
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise CryptoError(f"signing with the {algorithm.value} key failed") from e

    def destroy(self, key_ref: bytes) -> None:
        """Forget the opened key. The sealed ref lives only in the caller's row:
        deleting that row is what destroys a software key."""
        with self._lock:
            self._cache.pop(hashlib.sha256(key_ref).digest(), None)

    def pepper_mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 under a key derived from the master key (HKDF, "sealkeeper pepper v1")."""
        return hmac.digest(self._pepper_key, data, "sha256")

    def decrypt_key(self, key_ref: bytes, encrypted_key: bytes, oaep_hash: OaepHash) -> bytes:
        """RSAES-OAEP decryption with an RSA decryption key (see :class:`KeyStore`)."""
        key = self._decryption_key(key_ref)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CryptoError("RSA-OAEP needs an RSA decryption key")
        h = _OAEP_HASHES[OaepHash(oaep_hash)]
        try:
            return key.decrypt(bytes(encrypted_key),
                               padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
        except ValueError:
            raise CryptoError("the wrapped key does not decrypt with this key") from None

    def derive_shared(self, key_ref: bytes, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """ECDH with an EC decryption key (see :class:`KeyStore`)."""
        key = self._decryption_key(key_ref)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CryptoError("ECDH needs an EC decryption key")
        if not isinstance(peer_public_key, ec.EllipticCurvePublicKey) \
                or peer_public_key.curve.name != key.curve.name:
            raise CryptoError("the sender's key is not on the decryption key's curve")
        try:
            return key.exchange(ec.ECDH(), peer_public_key)
        except ValueError:
            raise CryptoError("ECDH with the sender's key failed") from None

    # -- internals

    def _decryption_key(self, key_ref: bytes) -> _PrivateKey:
        key = self._open(key_ref)[1]
        if _purpose(key_ref) is not KeyPurpose.DECRYPT:
            raise CryptoError("this key is a signing key; it does not decrypt")
        return key

    def _open(self, key_ref: bytes) -> tuple[KeyAlgorithm, _PrivateKey]:
        try:
            cache_key = hashlib.sha256(key_ref).digest()
        except TypeError:
            raise CryptoError("malformed software key reference") from None
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None:
                self._cache.move_to_end(cache_key)
                return hit
        algorithm, header, nonce, ciphertext = _parse_ref(key_ref)
        try:
            der = self._aead.decrypt(nonce, ciphertext, header)
        except InvalidTag:
            raise CryptoError("the key reference cannot be opened: wrong master key "
                              "or tampered reference") from None
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise CryptoError("the sealed key material is not a valid private key") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) \
                or not _matches(algorithm, key):
            raise CryptoError(f"the sealed key is not a {algorithm.value} key")
        self._remember(cache_key, algorithm, key)
        return algorithm, key

    def _remember(self, cache_key: bytes, algorithm: KeyAlgorithm, key: _PrivateKey) -> None:
        with self._lock:
            self._cache[cache_key] = (algorithm, key)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
