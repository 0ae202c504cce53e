"""Client-side checking of the usage log's cryptography: RFC 9162 Merkle
hashing and proofs, and C2SP signed-note checkpoints.

Used by ``sealkeeper verify`` (is a signature in the log?) and by
``sealkeeper log verify`` (is the log consistent, complete and unchanged?).
Like the rest of :mod:`sealkeeper.client` it imports no server code: it is an
independent implementation of what ``docs/merkle.md`` specifies, written only
with the standard library and ``cryptography`` (the tests cross-check it
against the server's ``sealkeeper.crypto.merkle`` and ``checkpoint``).

* Hashing (RFC 9162 section 2.1.1): ``leaf = SHA-256(0x00 || entry)``,
  ``node = SHA-256(0x01 || left || right)``, the empty tree ``SHA-256("")``.
* :func:`verify_inclusion` and :func:`verify_consistency` are the algorithms
  of RFC 9162 sections 2.1.3.2 and 2.1.4.2, with strict edges (equal sizes
  need an empty proof and equal roots; old size 0 needs an empty proof and
  the empty root).
* :class:`MerkleTree` holds every perfect subtree of a list of leaves, so the
  root of any prefix costs O(log n) once it is built (the verifier bisects
  with prefix roots to find the first bad entry).
* :func:`open_checkpoint` verifies a signed note (type ``0x01`` Ed25519 or
  ``0x02`` ECDSA over SHA-256) with a verifier key ``name+keyid+key`` and
  parses the checkpoint body strictly.

Errors: malformed input (a note, a key, a hash of the wrong length) raises
:class:`~sealkeeper.errors.InvalidInput`; a proof or signature that does not
verify raises :class:`~sealkeeper.errors.CryptoError`. Both carry a one-line
message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sealkeeper.errors import CryptoError, InvalidInput

__all__ = [
    "ECDSA_TYPE",
    "ED25519_TYPE",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "MerkleTree",
    "VerifierKey",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
ED25519_TYPE = 0x01
ECDSA_TYPE = 0x02
MAX_NOTE_SIZE = 1 << 20
MAX_SIGNATURES = 100
MAX_TREE_SIZE = (1 << 64) - 1

_DASH = "\u2014 "
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


# =========================================================================== hashing


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of already-hashed leaves (linear time, constant recursion depth)."""
    return MerkleTree(leaf_hashes).root()


class MerkleTree:
    """Every perfect subtree of a list of leaf hashes, built once (n - 1 hashes).

    ``levels[h][i]`` is the hash of leaves ``[i * 2**h, (i + 1) * 2**h)``;
    :meth:`root` gives the MTH of any prefix from O(log n) of them.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        for i, h in enumerate(leaf_hashes):
            _check_hash(h, f"leaf hash {i}", InvalidInput)
        self.levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1])
                                for i in range(0, len(below) - 1, 2)])

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def root(self, size: int | None = None) -> bytes:
        """The MTH of the first ``size`` leaves (default: all of them)."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise InvalidInput(f"a prefix of {n} leaves is outside a tree of {self.size}",
                               field="size")
        if n == 0:
            return EMPTY_ROOT
        # The perfect subtrees decomposing [0, n), largest first, folded right.
        parts: list[bytes] = []
        start = 0
        for level in range(n.bit_length() - 1, -1, -1):
            if n >> level & 1:
                parts.append(self.levels[level][start >> level])
                start += 1 << level
        acc = parts[-1]
        for h in reversed(parts[:-1]):
            acc = node_hash(h, acc)
        return acc


# =========================================================================== proofs


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     root: bytes) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` leaves with
    ``root`` (RFC 9162 section 2.1.3.2). Raises :class:`CryptoError`."""
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    for i, p in enumerate(path):
        _check_hash(p, f"inclusion proof element {i}")
    if not 0 <= index < size:
        raise CryptoError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise CryptoError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise CryptoError("inclusion proof is too short")
    if not hmac.compare_digest(r, root):
        raise CryptoError("inclusion proof does not lead to the root hash")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       path: Sequence[bytes]) -> None:
    """Check that the tree (``old_size``, ``old_root``) is a prefix of
    (``new_size``, ``new_root``) (RFC 9162 section 2.1.4.2). Raises
    :class:`CryptoError`."""
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    for i, p in enumerate(path):
        _check_hash(p, f"consistency proof element {i}")
    if old_size < 0 or old_size > new_size:
        raise CryptoError(f"tree size {old_size} cannot precede tree size {new_size}")
    if old_size == new_size:
        if path:
            raise CryptoError("a consistency proof between equal sizes must be empty")
        if not hmac.compare_digest(old_root, new_root):
            raise CryptoError("equal tree sizes with different root hashes")
        return
    if old_size == 0:
        if path:
            raise CryptoError("a consistency proof from the empty tree must be empty")
        if not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise CryptoError("the root of the empty tree is not SHA-256('')")
        return
    if not path:
        raise CryptoError("consistency proof is empty")
    nodes = list(path)
    if old_size & (old_size - 1) == 0:  # the old tree is a perfect subtree
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise CryptoError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise CryptoError("consistency proof is too short")
    if not hmac.compare_digest(fr, old_root):
        raise CryptoError("consistency proof does not lead to the old root hash")
    if not hmac.compare_digest(sr, new_root):
        raise CryptoError("consistency proof does not lead to the new root hash")


# =========================================================================== checkpoints


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A parsed signed-note verifier key ``name+keyid+base64(type || key)``."""

    name: str
    key_id: bytes
    type: int
    public_key: Ed25519PublicKey | ec.EllipticCurvePublicKey
    text: str


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string, checking that its key ID matches the key."""
    vkey = text.strip()
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise InvalidInput("a verifier key has the form name+keyid+key", field="key")
    name, hex_id, b64 = parts
    _check_key_name(name, "key")
    if not _KEY_ID_RE.fullmatch(hex_id):
        raise InvalidInput("the verifier key's id is not 8 hex digits", field="key")
    raw = _b64decode(b64, "verifier key", "key")
    if len(raw) < 2:
        raise InvalidInput("the verifier key is too short", field="key")
    public_key: Ed25519PublicKey | ec.EllipticCurvePublicKey
    try:
        if raw[0] == ED25519_TYPE:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        elif raw[0] == ECDSA_TYPE:
            loaded = serialization.load_der_public_key(raw[1:])
            if not isinstance(loaded, ec.EllipticCurvePublicKey) \
                    or not isinstance(loaded.curve, _EC_CURVES):
                raise InvalidInput("a verifier key of type 0x02 is an EC key on P-256, "
                                   "P-384 or P-521", field="key")
            public_key = loaded
        else:
            raise InvalidInput(f"unsupported verifier key type 0x{raw[0]:02x}", field="key")
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InvalidInput("the verifier key material is invalid", field="key") from e
    kid = _key_id(name, raw[0], raw[1:])
    if kid.hex() != hex_id:
        raise InvalidInput("the verifier key's id does not match the key", field="key")
    return VerifierKey(name, kid, raw[0], public_key, vkey)


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly (origin, decimal size, base64 root)."""
    if not text.endswith("\n"):
        raise InvalidInput("checkpoint text does not end with a newline", field="checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidInput(f"a checkpoint has at least 3 lines, got {len(lines)}",
                           field="checkpoint")
    if not all(lines):
        raise InvalidInput("checkpoint lines must not be empty", field="checkpoint")
    origin, size_line, root_line, *extensions = lines
    if not _SIZE_RE.fullmatch(size_line) or int(size_line) > MAX_TREE_SIZE:
        raise InvalidInput("the checkpoint's tree size is not a decimal number without "
                           "leading zeros", field="checkpoint")
    root = _b64decode(root_line, "checkpoint root hash", "checkpoint")
    if len(root) != HASH_SIZE:
        raise InvalidInput(f"the checkpoint's root hash is not {HASH_SIZE} bytes",
                           field="checkpoint")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def open_checkpoint(note: str | bytes, key: VerifierKey | str) -> Checkpoint:
    """Verify a C2SP signed-note checkpoint with ``key`` and return its body.

    Signatures by other keys (witness cosignatures, rotated keys) are ignored;
    a signature by ``key`` that fails, or none at all, raises
    :class:`CryptoError`; a malformed note raises :class:`InvalidInput`.
    """
    vkey = parse_verifier_key(key) if isinstance(key, str) else key
    raw = note.encode("utf-8", "surrogatepass") if isinstance(note, str) else note
    if len(raw) > MAX_NOTE_SIZE:
        raise InvalidInput("the checkpoint note is too large", field="checkpoint")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput("the checkpoint note is not UTF-8", field="checkpoint") from e
    if any(c < " " and c != "\n" for c in decoded):
        raise InvalidInput("the checkpoint note contains a control character",
                           field="checkpoint")
    if not decoded.endswith("\n"):
        raise InvalidInput("the checkpoint note does not end with a newline",
                           field="checkpoint")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise InvalidInput("the checkpoint is not a signed note (no blank line before "
                           "its signatures)", field="checkpoint")
    text, block = decoded[:split + 1], decoded[split + 2:]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise InvalidInput("the checkpoint note has no signature", field="checkpoint")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidInput(f"the checkpoint note has more than {MAX_SIGNATURES} signatures",
                           field="checkpoint")
    seen: set[tuple[str, bytes]] = set()
    verified = False
    for line in lines:
        if not line.startswith(_DASH):
            raise InvalidInput("malformed signature line in the checkpoint note",
                               field="checkpoint")
        name, sep, b64 = line[len(_DASH):].partition(" ")
        if not sep:
            raise InvalidInput("malformed signature line in the checkpoint note",
                               field="checkpoint")
        _check_key_name(name, "checkpoint")
        blob = _b64decode(b64, "checkpoint signature", "checkpoint")
        if len(blob) < 5:
            raise InvalidInput("a checkpoint signature is too short", field="checkpoint")
        if (name, blob[:4]) in seen:
            raise InvalidInput(f"the checkpoint note has two signatures by key {name!r}",
                               field="checkpoint")
        seen.add((name, blob[:4]))
        if name == vkey.name and blob[:4] == vkey.key_id:
            _verify_signature(vkey, text.encode("utf-8"), blob[4:])
            verified = True
    if not verified:
        raise CryptoError(f"the checkpoint is not signed by the log key {vkey.name!r}")
    return parse_checkpoint_body(text)


# =========================================================================== helpers


def _verify_signature(vkey: VerifierKey, message: bytes, signature: bytes) -> None:
    try:
        if isinstance(vkey.public_key, Ed25519PublicKey):
            vkey.public_key.verify(signature, message)
        else:
            vkey.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as e:
        raise CryptoError("the checkpoint's signature does not verify") from e


def _key_id(name: str, sig_type: int, material: bytes) -> bytes:
    if sig_type == ECDSA_TYPE:  # SHA-256 of the DER SubjectPublicKeyInfo
        return hashlib.sha256(material).digest()[:4]
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + material).digest()[:4]


def _check_key_name(name: str, field: str) -> None:
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise InvalidInput("a key name is non-empty, without spaces or '+'", field=field)


def _b64decode(value: str, what: str, field: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"the {what} is not valid base64", field=field) from e
    if base64.b64encode(decoded).decode() != value:
        raise InvalidInput(f"the {what} is not canonical base64", field=field)
    return decoded


def _check_hash(h: object, what: str,
                error: type[CryptoError] | type[InvalidInput] = CryptoError) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise error(f"the {what} is not a {HASH_SIZE}-byte hash")
