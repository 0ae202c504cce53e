"""PKCS#11 key store: keys generated and used inside a token (HSM, SoftHSM2).

Scope: one logged-in session per store, key generation in the token
(private keys sensitive, non-extractable, persistent), signing a digest with
the raw mechanisms (``ECDSA``, ``RSA_PKCS`` over a DigestInfo, ``RSA_PKCS_PSS``),
reading public keys back as ``cryptography`` objects, destroying objects, the
pepper MAC (``SHA256_HMAC`` with a generic secret key kept in the token),
decryption keys (RSA: decrypt-only, ``RSA_PKCS_OAEP``; EC: derive-only,
``ECDH1_DERIVE`` with the NULL KDF, the shared secret read back from a
non-persistent session object that is destroyed at once), and recovery when
the token goes away.

``key_ref`` layout (version 1)::

    b"SKP1" | len(algorithm) (1 byte) | algorithm (ASCII) | CKA_ID (16 random bytes)

Threading: python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module
that the application will not call it from several threads at once (SoftHSM2
then disables its own locks). So every call into one module goes through one
process-wide lock per module path, and one session per store is enough.
Login state belongs to the process and token: a second store on a token this
process is already logged in to reuses that login (its own PIN is not
checked). Use the same module path string everywhere in a process: the lock
and python-pkcs11's loaded-module cache are keyed by it.

Failures: errors meaning "token / session / library gone" drop the connection
and retry once with a fresh one (which also covers another store having
re-initialised the shared library); if that fails too the call raises
:class:`KeyStoreUnavailable`, and the next call after ``reconnect_interval``
seconds tries again, so the store recovers without a restart once the token
is back. A wrong PIN raises :class:`ConfigurationError` and is not retried
(retrying would lock the token's user PIN).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from asn1crypto import algos, core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pkcs11 import KDF, MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.types import DecryptMixin, DeriveMixin, Key, SignMixin
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import (
    GeneratedKey,
    KeyAlgorithm,
    KeyPurpose,
    OaepHash,
    SignatureScheme,
    check_pss_salt_length,
)
from sealkeeper.errors import (
    ConfigurationError,
    CryptoError,
    InvalidInput,
    KeyStoreUnavailable,
)

__all__ = ["PEPPER_KEY_LABEL", "Pkcs11KeyStore"]

PEPPER_KEY_LABEL = "sealkeeper-pepper-v1"

_MAGIC = b"SKP1"
_ID_SIZE = 16
_KEY_CACHE_MAX = 4096
_T = TypeVar("_T")

_CURVES = {
    KeyAlgorithm.EC_P256: ("secp256r1", ec.SECP256R1),
    KeyAlgorithm.EC_P384: ("secp384r1", ec.SECP384R1),
}
_RSA_BITS = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}

_HASH_MECHANISMS = {
    DigestAlgorithm.SHA256: (Mechanism.SHA256, MGF.SHA256),
    DigestAlgorithm.SHA384: (Mechanism.SHA384, MGF.SHA384),
    DigestAlgorithm.SHA512: (Mechanism.SHA512, MGF.SHA512),
}
# RFC 8017 9.2 DigestInfo prefixes (AlgorithmIdentifier with NULL parameters).
_DIGEST_INFO_PREFIX = {
    alg: algos.DigestInfo({
        "digest_algorithm": {"algorithm": alg.value, "parameters": core.Null()},
        "digest": bytes(alg.size),
    }).dump()[:-alg.size]
    for alg in DigestAlgorithm
}

_SIGN_ONLY = MechanismFlag.SIGN | MechanismFlag.VERIFY
_PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
}
_PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
# Decryption keys: RSA keys decrypt (OAEP), EC keys derive (ECDH); neither signs.
_DECRYPT_PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: False,
    Attribute.WRAP: False,
}
_DECRYPT_PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: False,
    Attribute.UNWRAP: False,
}
# The ECDH secret: a session object we may read, destroyed right after.
_SHARED_SECRET_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: False,
    Attribute.SENSITIVE: False,
    Attribute.EXTRACTABLE: True,
}
_OAEP_MECHANISMS = {
    OaepHash.SHA1: (Mechanism.SHA_1, MGF.SHA1),
    OaepHash.SHA256: (Mechanism.SHA256, MGF.SHA256),
    OaepHash.SHA384: (Mechanism.SHA384, MGF.SHA384),
    OaepHash.SHA512: (Mechanism.SHA512, MGF.SHA512),
}
_SECRET_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
}

# Errors that mean the token, the session or the library is gone.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    p11e.DeviceError, p11e.DeviceMemory, p11e.DeviceRemoved, p11e.GeneralError,
    p11e.NoSuchToken, p11e.SessionClosed, p11e.SessionCount, p11e.SessionHandleInvalid,
    p11e.SlotIDInvalid, p11e.TokenNotPresent, p11e.TokenNotRecognised, p11e.UserNotLoggedIn,
)
# A cached object handle is no longer valid (object deleted elsewhere).
_STALE: tuple[type[Exception], ...] = (p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid)
_BAD_PIN: tuple[type[Exception], ...] = (
    p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange, p11e.PinExpired, p11e.PinLocked,
)

_LIB_LOCKS: dict[str, threading.RLock] = {}
_LIB_LOCKS_GUARD = threading.Lock()
# Bumped (under the module's lock) each time a store re-initialises a module:
# after C_Finalize/C_Initialize the module hands out session and object
# handles from the start again, so a handle kept from before may now name
# another store's session or another token's object. Connections from an
# older generation are discarded without being used or closed.
_LIB_GENERATIONS: dict[str, int] = {}


def _lib_lock(module: str) -> threading.RLock:
    with _LIB_LOCKS_GUARD:
        return _LIB_LOCKS.setdefault(module, threading.RLock())


def _reinitialize(module: str) -> None:
    """C_Finalize + C_Initialize; call with the module's lock held."""
    _LIB_GENERATIONS[module] = _LIB_GENERATIONS.get(module, 0) + 1
    pkcs11.lib(module).reinitialize()


def _is_unavailable(e: Exception) -> bool:
    # CKR_CRYPTOKI_NOT_INITIALIZED surfaces as a bare PKCS11Error.
    return isinstance(e, _UNAVAILABLE) or type(e) is p11e.PKCS11Error


# --------------------------------------------------------------------------- key refs

@dataclass(frozen=True, slots=True)
class _Ref:
    algorithm: KeyAlgorithm
    cka_id: bytes

    def encode(self) -> bytes:
        name = self.algorithm.value.encode("ascii")
        return _MAGIC + bytes((len(name),)) + name + self.cka_id

    @classmethod
    def decode(cls, key_ref: bytes) -> _Ref:
        ref = bytes(key_ref) if isinstance(key_ref, bytes | bytearray | memoryview) else b""
        if len(ref) < len(_MAGIC) + 1 or not ref.startswith(_MAGIC):
            raise CryptoError("malformed PKCS#11 key reference")
        end = len(_MAGIC) + 1 + ref[len(_MAGIC)]
        try:
            algorithm = KeyAlgorithm(ref[len(_MAGIC) + 1:end].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise CryptoError("malformed PKCS#11 key reference") from None
        cka_id = ref[end:]
        if len(cka_id) != _ID_SIZE:
            raise CryptoError("malformed PKCS#11 key reference")
        return cls(algorithm, cka_id)


def _check_scheme(algorithm: KeyAlgorithm, scheme: SignatureScheme) -> None:
    ok = (scheme is not SignatureScheme.ECDSA) if algorithm.is_rsa \
        else (scheme is SignatureScheme.ECDSA)
    if not ok:
        raise InvalidInput(f"signature scheme {scheme.value} does not fit a "
                           f"{algorithm.value} key", field="scheme")


def _mechanism(hashed: Hashed, scheme: SignatureScheme,
               salt_length: int) -> tuple[bytes, Mechanism, Any]:
    """(data to sign, mechanism, mechanism parameter) for a digest and scheme."""
    if scheme is SignatureScheme.ECDSA:
        return hashed.digest, Mechanism.ECDSA, None
    if scheme is SignatureScheme.RSA_PKCS1V15:
        return _DIGEST_INFO_PREFIX[hashed.algorithm] + hashed.digest, Mechanism.RSA_PKCS, None
    hash_mech, mgf = _HASH_MECHANISMS[hashed.algorithm]
    return hashed.digest, Mechanism.RSA_PKCS_PSS, (hash_mech, mgf, salt_length)


def _public_from_object(obj: Key, algorithm: KeyAlgorithm) -> PublicKeyTypes:
    """Convert a PKCS#11 public key object to a cryptography public key."""
    try:
        if algorithm.is_rsa:
            n = int.from_bytes(obj[Attribute.MODULUS], "big")
            e = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
            public: PublicKeyTypes = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            public = serialization.load_der_public_key(encode_ec_public_key(obj))  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise CryptoError("the token returned an unusable public key") from e
    if algorithm.is_rsa:
        ok = isinstance(public, rsa.RSAPublicKey) and public.key_size == _RSA_BITS[algorithm]
    else:
        ok = isinstance(public, ec.EllipticCurvePublicKey) \
            and isinstance(public.curve, _CURVES[algorithm][1])
    if not ok:
        raise CryptoError(f"the key in the token is not a {algorithm.value} key")
    return public


# --------------------------------------------------------------------------- the store

@dataclass(slots=True)
class _Connection:
    session: pkcs11.Session
    generation: int
    keys: dict[bytes, SignMixin] = field(default_factory=dict)
    pepper: SignMixin | None = None


class Pkcs11KeyStore:
    """Key store over a PKCS#11 module and a token found by its label.

    The connection is opened lazily on first use (so the store survives
    ``fork``) and re-opened after failures; see the module docstring.
    """

    name: str = "pkcs11"

    def __init__(self, module: str | Path, token_label: str, pin: str, *,
                 reconnect_interval: float = 1.0) -> None:
        module = str(module)
        if not Path(module).is_file():
            raise ConfigurationError(f"PKCS#11 module {module} does not exist",
                                     field="pkcs11_module")
        if not token_label:
            raise ConfigurationError("the PKCS#11 token label is empty",
                                     field="pkcs11_token_label")
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._reconnect_interval = reconnect_interval
        self._lock = _lib_lock(module)
        self._conn: _Connection | None = None
        self._pid = os.getpid()
        self._retry_after = 0.0
        self._pin_rejected = False

    def __repr__(self) -> str:
        state = "connected" if self._conn is not None else "disconnected"
        return f"Pkcs11KeyStore(module={self._module!r}, token={self._token_label!r}, {state})"

    # -- KeyStore interface

    def generate(self, algorithm: KeyAlgorithm, *, label: str,
                 purpose: KeyPurpose = KeyPurpose.SIGN) -> GeneratedKey:
        """Generate a key pair in the token (persistent; private key sensitive,
        non-extractable) under a random CKA_ID and ``label``. A signing key only
        signs; a decryption key only decrypts (RSA) or derives (EC)."""
        ref = _Ref(KeyAlgorithm(algorithm), secrets.token_bytes(_ID_SIZE))
        purpose = KeyPurpose(purpose)
        if purpose is KeyPurpose.DECRYPT:
            return self._generate_decryption_key(ref, label)

        def op(conn: _Connection) -> PublicKeyTypes:
            public_template = dict(_PUBLIC_TEMPLATE)
            if ref.algorithm.is_rsa:
                key_type, bits = KeyType.RSA, _RSA_BITS[ref.algorithm]
            else:
                key_type, bits = KeyType.EC, None
                public_template[Attribute.EC_PARAMS] = \
                    encode_named_curve_parameters(_CURVES[ref.algorithm][0])
            pub, priv = conn.session.generate_keypair(
                key_type, bits, id=ref.cka_id, label=label, store=True,
                capabilities=_SIGN_ONLY, public_template=public_template,
                private_template=_PRIVATE_TEMPLATE)
            if isinstance(priv, SignMixin):
                _remember(conn.keys, ref.cka_id, priv)
            return _public_from_object(pub, ref.algorithm)

        return GeneratedKey(key_ref=ref.encode(), public_key=self._call(op))

    def public_key(self, key_ref: bytes) -> PublicKeyTypes:
        ref = _Ref.decode(key_ref)

        def op(conn: _Connection) -> PublicKeyTypes:
            obj = _find_one(conn.session, ObjectClass.PUBLIC_KEY, ref.cka_id)
            return _public_from_object(obj, ref.algorithm)

        return self._call(op)

    def sign_digest(self, key_ref: bytes, hashed: Hashed, scheme: SignatureScheme, *,
                    pss_salt_length: int | None = None) -> bytes:
        ref = _Ref.decode(key_ref)
        _check_scheme(ref.algorithm, scheme)
        salt = hashed.algorithm.size
        if scheme is SignatureScheme.RSA_PSS and pss_salt_length is not None:
            salt = check_pss_salt_length(ref.algorithm, hashed, pss_salt_length)
        data, mechanism, param = _mechanism(hashed, scheme, salt)

        def op(conn: _Connection) -> bytes:
            return _private_key(conn, ref.cka_id).sign(
                data, mechanism=mechanism, mechanism_param=param)

        signature = self._call(op)
        if scheme is SignatureScheme.ECDSA:
            return encode_ecdsa_signature(signature)
        return signature

    def destroy(self, key_ref: bytes) -> None:
        """Delete the key pair's objects from the token (no error if already gone)."""
        ref = _Ref.decode(key_ref)

        def op(conn: _Connection) -> None:
            conn.keys.pop(ref.cka_id, None)
            for obj_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in list(conn.session.get_objects(
                        {Attribute.CLASS: obj_class, Attribute.ID: ref.cka_id})):
                    obj.destroy()

        self._call(op)

    def pepper_mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 with a generic secret key held in the token under
        :data:`PEPPER_KEY_LABEL` (created, non-extractable, on first use)."""

        def op(conn: _Connection) -> bytes:
            if conn.pepper is None:
                conn.pepper = _pepper_key(conn.session)
            return conn.pepper.sign(data, mechanism=Mechanism.SHA256_HMAC)

        return self._call(op)

    def decrypt_key(self, key_ref: bytes, encrypted_key: bytes, oaep_hash: OaepHash) -> bytes:
        """``RSA_PKCS_OAEP`` with an RSA decryption key (see :class:`KeyStore`).
        Tokens differ in the OAEP hashes they accept (SoftHSM2 2.6: SHA-1 only);
        a refused one raises :class:`CryptoError`."""
        ref = _Ref.decode(key_ref)
        if not ref.algorithm.is_rsa:
            raise CryptoError("RSA-OAEP needs an RSA decryption key")
        hash_mech, mgf = _OAEP_MECHANISMS[OaepHash(oaep_hash)]
        data = bytes(encrypted_key)

        def op(conn: _Connection) -> bytes:
            key = _find_one(conn.session, ObjectClass.PRIVATE_KEY, ref.cka_id)
            if not isinstance(key, DecryptMixin):
                raise CryptoError("this key is not a decryption key")
            try:
                out = key.decrypt(data, mechanism=Mechanism.RSA_PKCS_OAEP,
                                  mechanism_param=(hash_mech, mgf, None))
            except p11e.GeneralError:
                # SoftHSM2 answers a ciphertext that fails the OAEP check with
                # CKR_GENERAL_ERROR. If the token still answers, it was the data:
                # do not take the token for gone (that would refuse everyone).
                _probe_token(conn.session)
                raise CryptoError("the wrapped key does not decrypt with this key") from None
            assert isinstance(out, bytes)
            return out

        return self._call(op)

    def derive_shared(self, key_ref: bytes, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """``ECDH1_DERIVE`` (NULL KDF) with an EC decryption key (see :class:`KeyStore`)."""
        ref = _Ref.decode(key_ref)
        curve = _CURVES.get(ref.algorithm)
        if curve is None:
            raise CryptoError("ECDH needs an EC decryption key")
        if not isinstance(peer_public_key, ec.EllipticCurvePublicKey) \
                or not isinstance(peer_public_key.curve, curve[1]):
            raise CryptoError("the sender's key is not on the decryption key's curve")
        point = peer_public_key.public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
        size = (peer_public_key.curve.key_size + 7) // 8

        def op(conn: _Connection) -> bytes:
            key = _find_one(conn.session, ObjectClass.PRIVATE_KEY, ref.cka_id)
            if not isinstance(key, DeriveMixin):
                raise CryptoError("this key is not a decryption key")
            secret = key.derive_key(KeyType.GENERIC_SECRET, size * 8,
                                    mechanism=Mechanism.ECDH1_DERIVE,
                                    mechanism_param=(KDF.NULL, None, point),
                                    template=_SHARED_SECRET_TEMPLATE)
            try:
                value = bytes(secret[Attribute.VALUE])
            finally:
                with contextlib.suppress(p11e.PKCS11Error):
                    secret.destroy()
            if len(value) != size:
                raise CryptoError("the token returned a shared secret of the wrong size")
            return value

        return self._call(op)

    def close(self) -> None:
        """Close the session (logs out). The store reconnects on its next use."""
        with self._lock:
            self._drop(close=True)

    def _generate_decryption_key(self, ref: _Ref, label: str) -> GeneratedKey:
        def op(conn: _Connection) -> PublicKeyTypes:
            public_template = dict(_DECRYPT_PUBLIC_TEMPLATE)
            private_template = dict(_DECRYPT_PRIVATE_TEMPLATE)
            if ref.algorithm.is_rsa:
                key_type, bits = KeyType.RSA, _RSA_BITS[ref.algorithm]
                capabilities = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
                public_template[Attribute.ENCRYPT] = True
                private_template.update({Attribute.DECRYPT: True, Attribute.DERIVE: False})
            else:
                key_type, bits = KeyType.EC, None
                capabilities = MechanismFlag.DERIVE
                public_template[Attribute.ENCRYPT] = False
                public_template[Attribute.EC_PARAMS] = \
                    encode_named_curve_parameters(_CURVES[ref.algorithm][0])
                private_template.update({Attribute.DECRYPT: False, Attribute.DERIVE: True})
            pub, _ = conn.session.generate_keypair(
                key_type, bits, id=ref.cka_id, label=label, store=True,
                capabilities=capabilities, public_template=public_template,
                private_template=private_template)
            return _public_from_object(pub, ref.algorithm)

        return GeneratedKey(key_ref=ref.encode(), public_key=self._call(op))

    # -- connection handling

    def _call(self, op: Callable[[_Connection], _T]) -> _T:
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return op(conn)
                except _STALE as e:
                    conn.keys.clear()
                    conn.pepper = None
                    if attempt == 2:
                        raise CryptoError("the key object vanished from the token") from e
                except p11e.PKCS11Error as e:
                    if not _is_unavailable(e):
                        raise CryptoError(
                            f"the PKCS#11 token refused the operation ({type(e).__name__})"
                        ) from e
                    self._drop(close=True)
                    if attempt == 2:
                        self._retry_after = time.monotonic() + self._reconnect_interval
                        raise KeyStoreUnavailable(
                            f"PKCS#11 token {self._token_label!r} is unavailable "
                            f"({type(e).__name__})") from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> _Connection:
        if self._pid != os.getpid():  # forked: the parent's sessions are not ours
            self._conn = None
            self._pid = os.getpid()
            with contextlib.suppress(Exception):
                _reinitialize(self._module)
        if self._conn is not None:
            if self._conn.generation == _LIB_GENERATIONS.get(self._module, 0):
                return self._conn
            self._conn = None  # the module was re-initialised: these handles are void
        if self._pin_rejected:
            raise ConfigurationError(
                f"the PIN for PKCS#11 token {self._token_label!r} was rejected; "
                "fix it and restart", field="pkcs11_pin")
        if time.monotonic() < self._retry_after:
            raise KeyStoreUnavailable(f"PKCS#11 token {self._token_label!r} is unavailable")
        try:
            session = self._open_session()
            self._conn = _Connection(session, _LIB_GENERATIONS.get(self._module, 0))
        except _BAD_PIN as e:
            self._pin_rejected = True
            raise ConfigurationError(
                f"login to PKCS#11 token {self._token_label!r} failed: the PIN was rejected "
                f"({type(e).__name__})", field="pkcs11_pin") from e
        except (p11e.PKCS11Error, OSError, RuntimeError) as e:
            self._retry_after = time.monotonic() + self._reconnect_interval
            raise KeyStoreUnavailable(
                f"cannot open PKCS#11 token {self._token_label!r} ({type(e).__name__})") from e
        return self._conn

    def _open_session(self) -> pkcs11.Session:
        lib = pkcs11.lib(self._module)
        try:
            token = lib.get_token(token_label=self._token_label)
        except p11e.MultipleTokensReturned as e:
            raise ConfigurationError(
                f"more than one PKCS#11 token is labelled {self._token_label!r}",
                field="pkcs11_token_label") from e
        except p11e.PKCS11Error:
            # The module may only see tokens present at C_Initialize: look again.
            _reinitialize(self._module)
            token = lib.get_token(token_label=self._token_label)
        try:
            return token.open(rw=True, user_pin=self._pin)
        except p11e.UserAlreadyLoggedIn:
            # Login state is per application: another session of this process
            # (another store on the same token) is already logged in.
            return token.open(rw=True)

    def _drop(self, *, close: bool) -> None:
        conn, self._conn = self._conn, None
        current = conn is not None and conn.generation == _LIB_GENERATIONS.get(self._module, 0)
        if conn is not None and close and current:
            with contextlib.suppress(Exception):
                conn.session.close()


# --------------------------------------------------------------------------- object helpers

def _remember(cache: dict[bytes, SignMixin], cka_id: bytes, key: SignMixin) -> None:
    if len(cache) >= _KEY_CACHE_MAX:
        cache.clear()
    cache[cka_id] = key


def _find_one(session: pkcs11.Session, object_class: ObjectClass, cka_id: bytes) -> Key:
    try:
        return session.get_key(object_class=object_class, id=cka_id)
    except p11e.NoSuchKey as e:
        _probe_token(session)
        raise CryptoError("the key is not in the PKCS#11 token (destroyed?)") from e
    except p11e.MultipleObjectsReturned as e:
        raise CryptoError("several objects in the PKCS#11 token share this key id") from e


def _probe_token(session: pkcs11.Session) -> None:
    """Raise the module's error if the token itself is gone.

    Some modules (SoftHSM2 when its token directory vanishes) keep sessions
    open but show an empty token; C_GetTokenInfo then fails. Without this
    check a missing token would look like a missing key.
    """
    session.token.slot.get_token()


def _private_key(conn: _Connection, cka_id: bytes) -> SignMixin:
    key = conn.keys.get(cka_id)
    if key is None:
        obj = _find_one(conn.session, ObjectClass.PRIVATE_KEY, cka_id)
        if not isinstance(obj, SignMixin):
            raise CryptoError("the private key in the token cannot sign")
        key = obj
        _remember(conn.keys, cka_id, key)
    return key


def _pepper_key(session: pkcs11.Session) -> SignMixin:
    """Find the pepper key, creating it if missing.

    Should two processes create it at the same moment, every process picks the
    one with the smallest CKA_ID, so all agree on one key.
    """
    query = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: PEPPER_KEY_LABEL}
    found = list(session.get_objects(query))
    if not found:
        _probe_token(session)  # never create a second pepper in a token that is failing
        session.generate_key(
            KeyType.GENERIC_SECRET, 256, id=secrets.token_bytes(_ID_SIZE),
            label=PEPPER_KEY_LABEL, store=True, capabilities=_SIGN_ONLY,
            template=_SECRET_TEMPLATE)
        found = list(session.get_objects(query))
    keys = [obj for obj in found if isinstance(obj, SignMixin)]
    if not keys:
        raise CryptoError(f"the PKCS#11 object {PEPPER_KEY_LABEL!r} cannot compute a MAC")
    return min(keys, key=lambda k: bytes(k[Attribute.ID] or b""))
