"""C2SP signed notes and transparency-log checkpoints.

Scope: encoding, signing and verifying the log's tree heads as
c2sp.org/tlog-checkpoint checkpoints inside c2sp.org/signed-note notes. No
key storage: signing goes through a ``sign(message) -> signature`` callback so
the private key stays in the key store; verification takes a ``cryptography``
public key.

Checkpoint body (the note text)::

    <origin>\\n
    <tree size, ASCII decimal, no leading zeros>\\n
    <base64 of the 32-byte RFC 9162 root hash>\\n
    [<extension line>\\n ...]

Signed note: the text, a blank line, then signature lines
``"\\u2014 <key name> <base64(4-byte key id || signature)>\\n"``.

Signature types (the assigned bytes of c2sp.org/signed-note):

* ``0x01`` Ed25519 over the note text.
  key id = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4].
* ``0x02`` ECDSA "as implemented by github.com/transparency-dev/witness" (the
  format of Sigstore Rekor's and other logs' checkpoints): an ASN.1 DER
  ECDSA signature over SHA-256(note text), on P-256 (recommended; P-384 and
  P-521 are accepted too, still with SHA-256 as the type requires).
  key id = SHA-256(DER SubjectPublicKeyInfo)[:4] -- the key name is not part
  of it, so name and id are checked separately.

We use ``0x02`` for our key store's ECDSA keys rather than a private ``0xff``
type, because the spec assigns it and existing verifiers understand it. With
a :class:`~sealkeeper.crypto.keystore.base.KeyHandle` the callback is
``lambda msg: handle.sign(Hashed.of(msg), SignatureScheme.ECDSA)``; for
Ed25519 it is ``private_key.sign``.

Verification follows the signed-note rules: signatures by other keys are
ignored, a signature by our key that fails rejects the note, and a note with
no valid signature by our key is rejected. Malformed notes raise
:class:`~sealkeeper.errors.InvalidInput`; unknown keys and bad signatures raise
:class:`~sealkeeper.errors.CryptoError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from sealkeeper.crypto.merkle import HASH_SIZE
from sealkeeper.errors import CryptoError, InvalidInput

__all__ = [
    "ECDSA_TYPE",
    "ED25519_TYPE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "encode_body",
    "key_id",
    "open_note",
    "parse_and_verify",
    "parse_body",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

ED25519_TYPE = 0x01
ECDSA_TYPE = 0x02
MAX_NOTE_SIZE = 1 << 20
MAX_SIGNATURES = 100
MAX_TREE_SIZE = (1 << 64) - 1

_DASH = "\u2014 "
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise InvalidInput(f"tree size {self.size} is out of range", field="size")
        if len(self.root_hash) != HASH_SIZE:
            raise InvalidInput(f"a root hash is {HASH_SIZE} bytes, got {len(self.root_hash)}",
                               field="root_hash")
        for line in self.extensions:
            _check_line(line, "extension line")


# --- checkpoint body -----------------------------------------------------------


def encode_body(cp: Checkpoint) -> str:
    """The note text of a checkpoint (ends with a newline)."""
    lines = [cp.origin, str(cp.size), base64.b64encode(cp.root_hash).decode(), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse_body(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly (the inverse of :func:`encode_body`)."""
    if not text.endswith("\n"):
        raise InvalidInput("checkpoint text does not end with a newline", field="note")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidInput(f"a checkpoint has at least 3 lines, got {len(lines)}", field="note")
    origin, size_line, root_line, *extensions = lines
    if not all(lines):
        raise InvalidInput("checkpoint lines must not be empty", field="note")
    if not _SIZE_RE.fullmatch(size_line):
        raise InvalidInput("checkpoint tree size is not a decimal number without leading zeros",
                           field="note")
    size = int(size_line)
    if size > MAX_TREE_SIZE:
        raise InvalidInput("checkpoint tree size is out of range", field="note")
    root_hash = _b64decode(root_line, "checkpoint root hash")
    if len(root_hash) != HASH_SIZE:
        raise InvalidInput(f"checkpoint root hash is not {HASH_SIZE} bytes", field="note")
    return Checkpoint(origin, size, root_hash, tuple(extensions))


# --- keys ----------------------------------------------------------------------


def key_id(key_name: str, public_key: PublicKeyTypes) -> bytes:
    """The 4-byte signed-note key ID of ``public_key`` under ``key_name``."""
    _check_key_name(key_name)
    return _key_id(key_name, *_key_material(public_key))


def verifier_key(key_name: str, public_key: PublicKeyTypes) -> str:
    """The ``<name>+<hex key id>+<base64(type || key)>`` string that verifiers configure."""
    _check_key_name(key_name)
    sig_type, material = _key_material(public_key)
    kid = _key_id(key_name, sig_type, material)
    return f"{key_name}+{kid.hex()}+{base64.b64encode(bytes([sig_type]) + material).decode()}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey | ec.EllipticCurvePublicKey]:
    """Parse a verifier key string into (key name, public key), checking its key ID."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise InvalidInput("a verifier key has the form name+keyid+key", field="verifier_key")
    name, hex_id, b64 = parts
    _check_key_name(name)
    raw = _b64decode(b64, "verifier key")
    if len(raw) < 2 or not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise InvalidInput("malformed verifier key", field="verifier_key")
    public_key: Ed25519PublicKey | ec.EllipticCurvePublicKey
    try:
        if raw[0] == ED25519_TYPE:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        elif raw[0] == ECDSA_TYPE:
            loaded = serialization.load_der_public_key(raw[1:])
            if not isinstance(loaded, ec.EllipticCurvePublicKey):
                raise InvalidInput("verifier key of type 0x02 is not an EC key",
                                   field="verifier_key")
            public_key = loaded
        else:
            raise InvalidInput(f"unsupported verifier key type 0x{raw[0]:02x}",
                               field="verifier_key")
    except ValueError as e:
        raise InvalidInput("verifier key material is invalid", field="verifier_key") from e
    if key_id(name, public_key).hex() != hex_id:
        raise InvalidInput("verifier key ID does not match the key", field="verifier_key")
    return name, public_key


# --- signed notes --------------------------------------------------------------


def sign_note(
    text: str, key_name: str, public_key: PublicKeyTypes, sign: Callable[[bytes], bytes]
) -> str:
    """Sign note ``text`` with the key behind ``sign``; returns the whole note.

    The signature is checked against ``public_key`` before it is returned, so
    a key store answering with the wrong key fails here, not at a verifier.
    """
    _check_key_name(key_name)
    if not text.endswith("\n") or "\n\n" in "\n" + text:
        raise InvalidInput("note text must be non-empty lines, each ending with a newline",
                           field="note")
    _check_note_chars(text)
    sig_type, material = _key_material(public_key)
    message = text.encode()
    signature = sign(message)
    _verify(public_key, sig_type, message, signature)
    blob = _key_id(key_name, sig_type, material) + signature
    return f"{text}\n{_DASH}{key_name} {base64.b64encode(blob).decode()}\n"


def open_note(note: str | bytes, key_name: str, public_key: PublicKeyTypes) -> str:
    """Verify a signed note and return its text (which ends with a newline)."""
    _check_key_name(key_name)
    sig_type, material = _key_material(public_key)
    expected_id = _key_id(key_name, sig_type, material)

    if isinstance(note, str):
        try:
            raw = note.encode("utf-8")
        except UnicodeEncodeError as e:  # lone surrogates
            raise InvalidInput("note is not valid UTF-8", field="note") from e
    else:
        raw = note
    if len(raw) > MAX_NOTE_SIZE:
        raise InvalidInput("note is too large", field="note")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput("note is not valid UTF-8", field="note") from e
    _check_note_chars(decoded)
    if not decoded.endswith("\n"):
        raise InvalidInput("note does not end with a newline", field="note")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise InvalidInput("note has no blank line before its signatures", field="note")
    text, sig_block = decoded[: split + 1], decoded[split + 2 :]
    sig_lines = sig_block[:-1].split("\n") if sig_block else []
    if not sig_lines:
        raise InvalidInput("note has no signature lines", field="note")
    if len(sig_lines) > MAX_SIGNATURES:
        raise InvalidInput(f"note has more than {MAX_SIGNATURES} signatures", field="note")

    seen: set[tuple[str, bytes]] = set()
    verified = False
    for line in sig_lines:
        name, kid, signature = _parse_signature_line(line)
        if (name, kid) in seen:
            raise InvalidInput(f"note has two signatures by key {name!r}", field="note")
        seen.add((name, kid))
        if name == key_name and kid == expected_id:
            _verify(public_key, sig_type, text.encode(), signature)
            verified = True
    if not verified:
        raise CryptoError(f"note has no signature by the known key {key_name!r}")
    return text


# --- checkpoints ---------------------------------------------------------------


def sign_checkpoint(
    cp: Checkpoint, key_name: str, public_key: PublicKeyTypes, sign: Callable[[bytes], bytes]
) -> str:
    """The full signed checkpoint note for ``cp``."""
    return sign_note(encode_body(cp), key_name, public_key, sign)


def parse_and_verify(note_text: str | bytes, key_name: str,
                     public_key: PublicKeyTypes) -> Checkpoint:
    """Verify a signed checkpoint note and return its checkpoint."""
    return parse_body(open_note(note_text, key_name, public_key))


# --- private helpers -----------------------------------------------------------


def _key_material(public_key: PublicKeyTypes) -> tuple[int, bytes]:
    """(signature type, public key encoding used in key IDs and verifier keys)."""
    if isinstance(public_key, Ed25519PublicKey):
        return ED25519_TYPE, public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, _EC_CURVES):
            raise InvalidInput(f"curve {public_key.curve.name} is not allowed in signed notes",
                               field="public_key")
        return ECDSA_TYPE, public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    raise InvalidInput(f"unsupported key type for signed notes: {type(public_key).__name__}",
                       field="public_key")


def _key_id(key_name: str, sig_type: int, material: bytes) -> bytes:
    if sig_type == ECDSA_TYPE:
        return hashlib.sha256(material).digest()[:4]
    return hashlib.sha256(key_name.encode() + b"\n" + bytes([sig_type]) + material).digest()[:4]


def _verify(public_key: PublicKeyTypes, sig_type: int, message: bytes, signature: bytes) -> None:
    try:
        if sig_type == ED25519_TYPE and isinstance(public_key, Ed25519PublicKey):
            public_key.verify(signature, message)
        elif sig_type == ECDSA_TYPE and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:  # pragma: no cover - _key_material ties the type to the key class
            raise CryptoError("signature type does not match the key")
    except (InvalidSignature, ValueError) as e:
        raise CryptoError("note signature does not verify") from e


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    if not line.startswith(_DASH):
        raise InvalidInput("malformed signature line in note", field="note")
    name, sep, b64 = line[len(_DASH):].partition(" ")
    if not sep:
        raise InvalidInput("malformed signature line in note", field="note")
    _check_key_name(name, field="note")
    blob = _b64decode(b64, "note signature")
    if len(blob) < 5:
        raise InvalidInput("note signature is too short", field="note")
    return name, blob[:4], blob[4:]


def _b64decode(value: str, what: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{what} is not valid base64", field="note") from e
    if base64.b64encode(decoded).decode() != value:  # refuse non-canonical encodings
        raise InvalidInput(f"{what} is not canonical base64", field="note")
    return decoded


def _check_key_name(name: str, *, field: str = "key_name") -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise InvalidInput("a key name is non-empty, without spaces or '+'", field=field)
    _check_note_chars(name)


def _check_line(line: str, what: str) -> None:
    if not line or "\n" in line:
        raise InvalidInput(f"a checkpoint {what} is one non-empty line", field="checkpoint")
    _check_note_chars(line)


def _check_note_chars(s: str) -> None:
    if any(c < " " and c != "\n" for c in s):
        raise InvalidInput("note contains a control character", field="note")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput("note is not valid UTF-8", field="note") from e
