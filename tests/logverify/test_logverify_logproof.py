"""The client's independent log cryptography (``sealkeeper.client.logproof``
and the entry check of ``logverify``), cross-checked against the server's
``crypto.merkle``, ``crypto.checkpoint`` and ``audit.encoding`` on random
trees, proofs, notes and entries: same roots, same accepted proofs, same
refusals. No database."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealkeeper.audit.encoding import EntryEncoder, EntryKind, decode_entry
from sealkeeper.client import logproof as lp
from sealkeeper.client.logverify import check_entry
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.errors import CryptoError, InvalidInput

RFC_LEAVES = [bytes.fromhex(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
RFC_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def _store(n: int, seed: int = 0) -> tuple[list[bytes], merkle.MemoryNodeStore]:
    rnd = random.Random(seed)
    leaves = [merkle.leaf_hash(rnd.randbytes(rnd.randrange(40))) for _ in range(n)]
    store = merkle.MemoryNodeStore()
    store.append(leaves)
    return leaves, store


def _outcome(fn: Callable[[], object]) -> str:
    try:
        fn()
    except CryptoError:
        return "crypto"
    except InvalidInput:
        return "invalid"
    return "ok"


def test_known_answers() -> None:
    assert lp.EMPTY_ROOT.hex().startswith("e3b0c442") and lp.EMPTY_ROOT.hex().endswith("b855")
    assert lp.root_from_leaves([]) == lp.EMPTY_ROOT
    leaves = [lp.leaf_hash(x) for x in RFC_LEAVES]
    assert lp.root_from_leaves(leaves).hex() == RFC_ROOT_8
    assert lp.leaf_hash(b"abc") == merkle.leaf_hash(b"abc")
    assert lp.node_hash(b"a" * 32, b"b" * 32) == merkle.node_hash(b"a" * 32, b"b" * 32)


def test_prefix_roots_match_the_server_on_random_trees() -> None:
    for seed, n in enumerate([*range(0, 70), 255, 256, 257, 1000, 1023, 1025, 10_000]):
        leaves, store = _store(n, seed)
        tree = lp.MerkleTree(leaves)
        assert tree.root() == merkle.root_from_leaves(leaves)
        sizes = range(n + 1) if n < 70 else random.Random(seed).sample(range(n + 1), 40)
        for m in sizes:
            assert tree.root(m) == merkle.root(m, store), (n, m)
    with pytest.raises(InvalidInput):
        lp.MerkleTree([b"short"])
    with pytest.raises(InvalidInput):
        lp.MerkleTree([]).root(1)


def test_server_proofs_verify_and_every_corruption_is_judged_like_the_server() -> None:
    rnd = random.Random(7)
    for n in [*range(1, 34), 100, 513]:
        leaves, store = _store(n, n)
        root = merkle.root(n, store)
        indexes = range(n) if n < 34 else rnd.sample(range(n), 12)
        for i in indexes:
            path = merkle.inclusion_proof(i, n, store)
            lp.verify_inclusion(leaves[i], i, n, path, root)  # raises if not
            for args in _inclusion_mutations(leaves[i], i, n, path, root):
                client = _outcome(partial(lp.verify_inclusion, *args))
                server = _outcome(partial(merkle.verify_inclusion, *args))
                assert client == server, (n, i, args[1:3])
        olds = range(n + 1) if n < 34 else rnd.sample(range(n + 1), 12)
        for m in olds:
            path = merkle.consistency_proof(m, n, store)
            old_root = merkle.root(m, store)
            lp.verify_consistency(m, n, old_root, root, path)
            for args in _consistency_mutations(m, n, old_root, root, path):
                client = _outcome(partial(lp.verify_consistency, *args))
                server = _outcome(partial(merkle.verify_consistency, *args))
                assert client == server, (m, n, args[:2])


def _flips(path: list[bytes]) -> list[list[bytes]]:
    out = []
    for k, h in enumerate(path):
        for bit in (0, 131, 255):
            flipped = bytearray(h)
            flipped[bit // 8] ^= 1 << (bit % 8)
            out.append([*path[:k], bytes(flipped), *path[k + 1:]])
    return out


def _inclusion_mutations(leaf: bytes, i: int, n: int, path: list[bytes],
                         root: bytes) -> list[tuple[Any, ...]]:
    muts: list[tuple[Any, ...]] = [
        (leaf, i + 1, n, path, root), (leaf, i - 1, n, path, root),
        (leaf, i, n * 2, path, root), (leaf, i, max(n // 2, 0), path, root),
        (leaf, i, n + 1, path, root), (leaf, i, n, path, b"\x00" * 32),
        (leaf, i, n, [*path, path[0] if path else b"\x01" * 32], root),
        (b"\x02" * 32, i, n, path, root), (leaf, i, n, path, root[:31]),
    ]
    if path:
        muts += [(leaf, i, n, path[:-1], root), (leaf, i, n, path[1:], root)]
    muts += [(leaf, i, n, p, root) for p in _flips(path)]
    return muts


def _consistency_mutations(m: int, n: int, old: bytes, new: bytes,
                           path: list[bytes]) -> list[tuple[Any, ...]]:
    muts: list[tuple[Any, ...]] = [
        (m + 1, n, old, new, path), (m - 1, n, old, new, path), (m, n * 2, old, new, path),
        (m, n // 2, old, new, path), (m, n + 1, old, new, path), (m, n, new, old, path),
        (m, n, b"\x00" * 32, new, path), (m, n, old, b"\x00" * 32, path),
        (m, n, old, new, [*path, old]),
    ]
    if path:
        muts += [(m, n, old, new, path[:-1]), (m, n, old, new, path[1:])]
    muts += [(m, n, old, new, p) for p in _flips(path)]
    return muts


# --------------------------------------------------------------------------- checkpoints


def _signer(kind: str) -> tuple[Any, Callable[[bytes], bytes]]:
    if kind == "ed25519":
        ed = Ed25519PrivateKey.generate()
        return ed.public_key(), ed.sign
    curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[kind]
    key = ec.generate_private_key(curve)
    return key.public_key(), lambda m: key.sign(m, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("kind", ["ed25519", "p256", "p384"])
def test_checkpoints_signed_by_the_server_open_here(kind: str) -> None:
    public, sign = _signer(kind)
    name = "seal.example/log/org1"
    vkey = notes.verifier_key(name, public)
    parsed = lp.parse_verifier_key(vkey)
    assert parsed.key_id == notes.key_id(name, public)
    assert parsed.name == name and parsed.text == vkey
    root = hashlib.sha256(b"root").digest()
    cp = notes.Checkpoint(name, 1234, root, ("ext line",))
    note = notes.sign_checkpoint(cp, name, public, sign)
    got = lp.open_checkpoint(note, vkey)
    assert (got.origin, got.size, got.root_hash, got.extensions) == \
        (name, 1234, root, ("ext line",))
    # A witness cosignature by another key is ignored; the note still opens.
    other_pub, other_sign = _signer("ed25519")
    cosigned = note + notes.sign_note(notes.encode_body(cp), "witness.example", other_pub,
                                      other_sign).split("\n\n", 1)[1]
    assert lp.open_checkpoint(cosigned, vkey).size == 1234
    # Another key's verifier key does not open it.
    with pytest.raises(CryptoError):
        lp.open_checkpoint(note, notes.verifier_key(name, other_pub))

    for bad in _note_mutations(note):
        client = _outcome(partial(lp.open_checkpoint, bad, vkey))
        server = _outcome(partial(notes.parse_and_verify, bad, name, public))
        assert client == server, repr(bad)
        assert client != "ok", repr(bad)


def _note_mutations(note: str) -> list[str | bytes]:
    text, sigs = note.split("\n\n", 1)
    lines = text.split("\n")
    sig_line = sigs.rstrip("\n")
    return [
        note.replace("\n1234\n", "\n1235\n"),            # edited size: signature fails
        note.replace("\n1234\n", "\n01234\n"),           # zero-padded: malformed
        note.replace("ext line", "ext linf"),
        note[:-1],                                        # no final newline
        text + "\n",                                      # no signatures
        note.replace("\n\n", "\n"),                       # no blank line
        note + sig_line + "\n",                           # the same signature twice
        note.replace("\u2014 ", "- "),                    # not an em dash
        note.encode()[:-5] + b"\xff\n",                  # not UTF-8
        "\n".join([lines[0], lines[1], lines[2] + "=", *lines[3:]]) + "\n\n" + sigs,
        "\n".join([lines[0], "", *lines[1:]]) + "\n\n" + sigs,
        note.replace(lines[0], lines[0] + "\x01"),
        "garbage",
    ]


def test_malformed_verifier_keys_are_refused() -> None:
    public, _ = _signer("p256")
    good = notes.verifier_key("name", public)
    _, kid, b64 = good.split("+", 2)
    for bad in ["", "name", f"name+{kid}", f"na me+{kid}+{b64}", f"name+{kid.upper()}+{b64}",
                f"name+00000000+{b64}", f"name+{kid}+{b64[:-4]}", f"name+{kid}+AwAA",
                f"other+{kid}x+{b64}"]:
        with pytest.raises(InvalidInput):
            lp.parse_verifier_key(bad)
        with pytest.raises(InvalidInput):
            notes.parse_verifier_key(bad)


# --------------------------------------------------------------------------- entries


def _entries() -> list[bytes]:
    enc = EntryEncoder("org1", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    return [
        enc.encode(0, EntryKind.SIGNATURE, {
            "seal_id": "S1", "seal_name": "Contract \"Seal\" \\ 合同", "seal_type": "contract",
            "user_id": "u1", "user_email": "a@example.com", "file_name": "契約 v2.pdf",
            "file_digest": "00ff", "digest_algorithm": "sha256", "api": "native",
            "form": "pades", "n": -(2**53 - 1), "flag": True}),
        enc.encode(1, EntryKind.GRANT, {"seal_id": "S1", "seal_name": "x", "seal_type": "t",
                                        "user_id": "u", "user_email": "e", "by_user_id": "b"}),
        enc.encode(2, EntryKind.APPROVAL_PASSWORD_RESET, {"user_id": "u", "user_email": "e"}),
    ]


def test_entries_encoded_by_the_server_pass_the_client_check() -> None:
    for seq, data in enumerate(_entries()):
        decode_entry(data)
        assert check_entry(data, seq, "org1") is None
        p = check_entry(data, seq + 1, "org1")
        assert p is not None and p.kind == "wrong_index" and p.index == seq + 1
        p = check_entry(data, seq, "org2")
        assert p is not None and p.kind == "wrong_organization"


def _entry_mutations(data: bytes) -> list[bytes]:
    obj = json.loads(data)
    s = data.decode()

    def dumps(o: object) -> bytes:
        return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    return [
        s.replace(":", ": ", 1).encode(),                              # whitespace
        json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()[::-1],
        dumps(obj).replace(b'"v":1', b'"v":1.0'),                      # a float
        dumps(obj).replace(b'"v":1', b'"v":NaN'),
        dumps({**obj, "v": 2}),                                         # another version
        dumps({k: v for k, v in obj.items() if k != "time"}),           # no time
        dumps({**obj, "time": "2026-01-02T03:04:05Z"}),                 # time not canonical
        dumps({**obj, "kind": "nope"}),                                 # unknown kind
        dumps({**obj, "extra": None}),                                  # null
        dumps({**obj, "extra": [1]}),                                   # array
        dumps({**obj, "extra": 2**53}),                                 # big integer
        dumps({**obj, "extra": "a\u0001b"}).replace(b"\\u0001", b"\x01"),  # control char
        json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),   # \\u escapes
        b"[" + dumps(obj) + b"]",
        dumps(obj)[:-1] + b',"v":1}',                                   # repeated key
        b"\xff" + dumps(obj),
        b"",
    ]


def test_non_canonical_entries_are_refused_by_both() -> None:
    data = _entries()[0]
    for bad in _entry_mutations(data):
        if bad == data:
            continue
        p = check_entry(bad, 0, "org1")
        assert p is not None and p.kind == "non_canonical" and p.index == 0, bad
        with pytest.raises(InvalidInput):
            decode_entry(bad)



def test_the_verifier_imports_no_server_code() -> None:
    import subprocess
    import sys

    code = ("import sys, sealkeeper.client.logverify, sealkeeper.client.api\n"
            "bad = [m for m in sys.modules if m.startswith(('sealkeeper.crypto.merkle', "
            "'sealkeeper.crypto.checkpoint', 'sealkeeper.audit', 'sealkeeper.web', "
            "'sealkeeper.services'))]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
