"""C2SP signed-note checkpoints: interop vectors, real keys, malformed notes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from sealkeeper.crypto import checkpoint as c
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.merkle import EMPTY_ROOT, leaf_hash
from sealkeeper.errors import CryptoError, InvalidInput, SealkeeperError

# --- external vectors ------------------------------------------------------------

# golang.org/x/mod/sumdb/note documentation example (Ed25519, type 0x01).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = ("If you think cryptography is the answer to your problem,\n"
              "then you don't know what your problem is.\n")
PETER_NOTE = PETER_TEXT + (
    "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdn"
    "gotpRZb6KE6RyyBwJnAM=\n")

# transparency-dev/formats note/note_verifier_test.go (ECDSA, type 0x02): real
# checkpoints of Sigstore Rekor and the Pixel 6 binary transparency log.
REKOR_VKEY = ("rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQX"
              "BogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=")
REKOR_NOTE = ("Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n"
              "\u2014 rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgI"
              "gc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n")
PIXEL_VKEY = ("pixel6_transparency_log+91c16e30+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTw"
              "vLFI9A4NDdGZcX0aiWVdWM5XJVy0M4VWD3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8=")
PIXEL_NOTE = ("DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n"
              "\u2014 pixel6_transparency_log kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJH"
              "toCIGD0cNe47dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n")

ORIGIN = "seal.example/log"
CP = c.Checkpoint(ORIGIN, 1234, leaf_hash(b"root"))


def _peter_private() -> Ed25519PrivateKey:
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[-1])
    assert raw[0] == c.ED25519_TYPE
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def _ecdsa_signer(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    """What a key-store-backed callback does: sign SHA-256(message) as a prehashed digest."""
    def sign(message: bytes) -> bytes:
        return key.sign(Hashed.of(message).digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    return sign


ED_KEY = Ed25519PrivateKey.generate()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
KEYS: list[tuple[str, object, Callable[[bytes], bytes]]] = [
    ("ed25519", ED_KEY.public_key(), ED_KEY.sign),
    ("ecdsa-p256", EC_KEY.public_key(), _ecdsa_signer(EC_KEY)),
]
SIGNED = {name: c.sign_checkpoint(CP, ORIGIN, pub, sign) for name, pub, sign in KEYS}  # type: ignore[arg-type]
PUBLIC = {name: pub for name, pub, _ in KEYS}


def _sig_line(name: str, kid: bytes, sig: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(kid + sig).decode()}\n"


def _ed_note(text: str, *, key: Ed25519PrivateKey = ED_KEY, name: str = ORIGIN) -> str:
    """Sign arbitrary text by hand (bypassing sign_note's own checks)."""
    kid = c.key_id(name, key.public_key())
    return text + "\n" + _sig_line(name, kid, key.sign(text.encode()))


# --- interop -------------------------------------------------------------------


def test_go_note_example_signs_byte_for_byte() -> None:
    key = _peter_private()
    name, pub = c.parse_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann"
    assert c.key_id(name, pub).hex() == "c74f20a3"
    assert c.verifier_key(name, key.public_key()) == PETER_VKEY
    assert c.sign_note(PETER_TEXT, name, pub, key.sign) == PETER_NOTE
    assert c.open_note(PETER_NOTE, name, pub) == PETER_TEXT
    with pytest.raises(CryptoError):
        c.open_note(PETER_NOTE.replace("cryptography", "cryptographY"), name, pub)


@pytest.mark.parametrize(("vkey", "note", "origin", "size", "root_b64"), [
    (REKOR_VKEY, REKOR_NOTE, "Rekor", 798034, "f+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0="),
    (PIXEL_VKEY, PIXEL_NOTE, "DEFAULT", 10, "bsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y="),
])
def test_real_ecdsa_checkpoints_verify(vkey: str, note: str, origin: str, size: int,
                                       root_b64: str) -> None:
    name, pub = c.parse_verifier_key(vkey)
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    assert c.verifier_key(name, pub) == vkey
    spki = pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert c.key_id(name, pub) == hashlib.sha256(spki).digest()[:4]
    cp = c.parse_and_verify(note, name, pub)
    assert cp == c.Checkpoint(origin, size, base64.b64decode(root_b64))
    assert c.parse_and_verify(note.encode(), name, pub) == cp
    with pytest.raises(CryptoError):  # same key, other name: unknown key
        c.parse_and_verify(note, "other.example", pub)
    tampered = note.replace(f"\n{size}\n", f"\n{size + 1}\n")
    with pytest.raises(CryptoError):
        c.parse_and_verify(tampered, name, pub)


def test_key_ids() -> None:
    pub = ED_KEY.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert c.key_id("a.example/x", pub) == hashlib.sha256(b"a.example/x\n\x01" + raw).digest()[:4]
    # ECDSA key IDs do not depend on the name (transparency-dev/witness scheme).
    assert c.key_id("a", EC_KEY.public_key()) == c.key_id("b", EC_KEY.public_key())


# --- round trips with generated keys --------------------------------------------------


@pytest.mark.parametrize("name", list(PUBLIC))
def test_sign_and_verify_round_trip(name: str) -> None:
    note = SIGNED[name]
    assert note.startswith(c.encode_body(CP) + "\n\u2014 " + ORIGIN + " ")
    assert c.parse_and_verify(note, ORIGIN, PUBLIC[name]) == CP  # type: ignore[arg-type]


def test_encode_body_format() -> None:
    root = bytes(range(32))
    cp = c.Checkpoint("example.com/log42", 0, root, ("ext one", "ext-two"))
    body = c.encode_body(cp)
    assert body == ("example.com/log42\n0\n" + base64.b64encode(root).decode()
                    + "\next one\next-two\n")
    assert c.parse_body(body) == cp
    assert c.parse_body(c.encode_body(c.Checkpoint("o", 0, EMPTY_ROOT))).size == 0


def test_p384_key_signs_with_sha256() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    note = c.sign_checkpoint(CP, ORIGIN, key.public_key(),
                             lambda m: key.sign(m, ec.ECDSA(hashes.SHA256())))
    assert c.parse_and_verify(note, ORIGIN, key.public_key()) == CP


def test_other_signatures_are_ignored() -> None:
    other = Ed25519PrivateKey.generate()
    note = SIGNED["ed25519"]
    text, sig = note.split("\n\n")
    extra = _sig_line("witness.example/w1", c.key_id("witness.example/w1", other.public_key()),
                      other.sign(text.encode() + b"\n"))
    # A foreign signature before and after ours: ignored.
    both = f"{text}\n\n{extra}{sig}"
    assert c.parse_and_verify(both, ORIGIN, ED_KEY.public_key()) == CP
    assert c.parse_and_verify(note + extra, ORIGIN, ED_KEY.public_key()) == CP
    # Our name with a foreign key ID, or a foreign name: unknown, so no valid signature.
    impostor = _sig_line(ORIGIN, c.key_id(ORIGIN, other.public_key()),
                         other.sign(text.encode() + b"\n"))
    with pytest.raises(CryptoError, match="no signature by the known key"):
        c.parse_and_verify(f"{text}\n\n{impostor}", ORIGIN, ED_KEY.public_key())
    with pytest.raises(CryptoError, match="no signature by the known key"):
        c.parse_and_verify(note, ORIGIN, other.public_key())


def test_sign_callback_with_wrong_key_is_caught() -> None:
    wrong = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CryptoError):
        c.sign_checkpoint(CP, ORIGIN, EC_KEY.public_key(), _ecdsa_signer(wrong))
    with pytest.raises(CryptoError):
        c.sign_checkpoint(CP, ORIGIN, ED_KEY.public_key(), lambda m: b"\x00" * 64)


def test_unsupported_keys_and_names() -> None:
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(InvalidInput):
        c.sign_checkpoint(CP, ORIGIN, rsa_pub, lambda m: b"")
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(InvalidInput):
        c.key_id(ORIGIN, k1.public_key())
    for bad_name in ("", "a b", "a+b", "a\u00a0b", "a\tb"):
        with pytest.raises(InvalidInput):
            c.sign_checkpoint(CP, bad_name, ED_KEY.public_key(), ED_KEY.sign)


def test_checkpoint_validation() -> None:
    root = EMPTY_ROOT
    for args in (("", 1, root), ("a\nb", 1, root), ("a\rb", 1, root), ("o", -1, root),
                 ("o", 1 << 64, root), ("o", 1, b"\x00" * 31)):
        with pytest.raises(InvalidInput):
            c.Checkpoint(*args)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        c.Checkpoint("o", 1, root, ("",))


def test_parse_verifier_key_rejects_bad_keys() -> None:
    name, hex_id, b64 = REKOR_VKEY.split("+", 2)
    for bad in (f"{name}+{hex_id}", f"{name}+00000000+{b64}", f"{name}+{hex_id}+!!!",
                f"{name}+{hex_id}+AwEB", f"{name}+{hex_id.upper()}+{b64}",
                "x+00000000+AQ==", "x+00000000+" + base64.b64encode(b"\x01" * 6).decode()):
        with pytest.raises(InvalidInput):
            c.parse_verifier_key(bad)


# --- malformed notes ---------------------------------------------------------------

ROOT_B64 = base64.b64encode(CP.root_hash).decode()
URLSAFE_B64 = base64.urlsafe_b64encode(b"\xfb" * 32).decode()


@pytest.mark.parametrize(("note", "message"), [
    (b"\xff\xfe", "UTF-8"),
    ("seal\ud800", "UTF-8"),
    ("no signatures at all\n", "blank line"),
    ("text\n\n", "no signature lines"),
    ("text\n\n\u2014 k AAAAAAA=", "newline"),
    ("te\rxt\n\n\u2014 k AAAAAAA=\n", "control character"),
    ("text\n\n\u2014 k AAAAAAA=\n\t\n", "control character"),
    ("text\n\n- k AAAAAAA=\n", "malformed signature line"),
    ("text\n\n\u2014 kAAAAAAA=\n", "malformed signature line"),
    ("text\n\n\u2014  AAAAAAA=\n", "key name"),
    ("text\n\n\u2014 a+b AAAAAAA=\n", "key name"),
    ("text\n\n\u2014 k AAAA\n", "too short"),
    ("text\n\n\u2014 k AAAAAAA\n", "base64"),
    ("text\n\n\u2014 k AAAAAAB=\n", "canonical"),
    ("text\n\n\u2014 k AAAA AAA=\n", "base64"),
    ("text\n\n" + "\u2014 k AAAAAAA=\n" * 2, "two signatures"),
    ("text\n\n" + "".join(f"\u2014 k{i} AAAAAAA=\n" for i in range(101)), "more than"),
    ("x" * (c.MAX_NOTE_SIZE + 1), "too large"),
])
def test_malformed_notes_are_refused(note: str | bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        c.parse_and_verify(note, ORIGIN, ED_KEY.public_key())


@pytest.mark.parametrize(("text", "message"), [
    (f"{ORIGIN}\n1234\n", "at least 3 lines"),
    (f"{ORIGIN}\n", "at least 3 lines"),
    (f"{ORIGIN}\n12a4\n{ROOT_B64}\n", "decimal"),
    (f"{ORIGIN}\n01234\n{ROOT_B64}\n", "decimal"),
    (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "decimal"),
    (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "decimal"),
    (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "decimal"),
    (f"{ORIGIN}\n\uff11\n{ROOT_B64}\n", "decimal"),  # full-width digit one
    (f"{ORIGIN}\n{1 << 64}\n{ROOT_B64}\n", "out of range"),
    (f"{ORIGIN}\n1234\n{ROOT_B64[:-1]}\n", "base64"),
    (f"{ORIGIN}\n1234\n{ROOT_B64.replace('=', '')}\n", "base64"),
    (f"{ORIGIN}\n1234\n{base64.b64encode(bytes(31)).decode()}\n", "32 bytes"),
    (f"{ORIGIN}\n1234\n{URLSAFE_B64}\n", "base64"),
    (f"{ORIGIN}\n1234\n{ROOT_B64}\n\next\n", "must not be empty"),
    (f" \n1234\n{ROOT_B64}\n", None),  # a space is a valid (if odd) origin
])
def test_malformed_bodies_are_refused_even_when_signed(text: str, message: str | None) -> None:
    note = _ed_note(text)
    if message is None:
        assert c.parse_and_verify(note, ORIGIN, ED_KEY.public_key()).origin == " "
        return
    with pytest.raises(InvalidInput, match=message):
        c.parse_and_verify(note, ORIGIN, ED_KEY.public_key())


def test_bad_signature_by_known_key() -> None:
    note = SIGNED["ed25519"]
    text, line = note.split("\n\n")
    blob = bytearray(base64.b64decode(line.rstrip("\n").split(" ")[-1]))
    blob[10] ^= 1  # inside the signature, key ID unchanged
    bad = f"{text}\n\n\u2014 {ORIGIN} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(CryptoError, match="does not verify"):
        c.parse_and_verify(bad, ORIGIN, ED_KEY.public_key())
    # A valid signature for other text is still a bad signature.
    other = c.sign_checkpoint(c.Checkpoint(ORIGIN, 1235, CP.root_hash), ORIGIN,
                              ED_KEY.public_key(), ED_KEY.sign)
    with pytest.raises(CryptoError, match="does not verify"):
        c.parse_and_verify(text + "\n\n" + other.split("\n\n")[1], ORIGIN, ED_KEY.public_key())


# --- mutation: any change either fails or leaves the same checkpoint -------------------


def _outcome(data: bytes, name: str) -> c.Checkpoint | None:
    try:
        return c.parse_and_verify(data, ORIGIN, PUBLIC[name])  # type: ignore[arg-type]
    except SealkeeperError:
        return None


@pytest.mark.parametrize("name", list(PUBLIC))
def test_every_single_byte_change_is_caught(name: str) -> None:
    data = SIGNED[name].encode()
    for i in range(len(data)):
        for xor in (0x01, 0x20, 0x80):
            mutated = data[:i] + bytes([data[i] ^ xor]) + data[i + 1:]
            assert _outcome(mutated, name) in (None, CP), (i, xor)
        assert _outcome(data[:i] + data[i + 1:], name) in (None, CP), i


@settings(max_examples=400, deadline=None)
@given(data=st.data(), name=st.sampled_from(list(PUBLIC)))
def test_random_mutations_fail_or_keep_content(data: st.DataObject, name: str) -> None:
    note = bytearray(SIGNED[name].encode())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        pos = data.draw(st.integers(0, len(note) - 1), label="pos")
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="op")
        byte = data.draw(st.integers(0, 255), label="byte")
        if op == "replace":
            note[pos] = byte
        elif op == "insert":
            note.insert(pos, byte)
        else:
            del note[pos]
    assert _outcome(bytes(note), name) in (None, CP)


@settings(max_examples=100, deadline=None)
@given(
    origin=st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1,
                   max_size=40),
    size=st.integers(0, (1 << 64) - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]),
                                min_size=1, max_size=20), max_size=3),
)
def test_any_checkpoint_round_trips(origin: str, size: int, root: bytes,
                                    extensions: list[str]) -> None:
    cp = c.Checkpoint(origin, size, root, tuple(extensions))
    note = c.sign_checkpoint(cp, ORIGIN, ED_KEY.public_key(), ED_KEY.sign)
    assert c.parse_and_verify(note, ORIGIN, ED_KEY.public_key()) == cp
