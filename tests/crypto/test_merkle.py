"""RFC 9162 Merkle tree: test vectors, stored-node proofs, corruption rejection."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealkeeper.crypto import merkle as m
from sealkeeper.errors import Conflict, CryptoError, InvalidInput, NotFound

# --- RFC 6962 reference vectors (certificate-transparency merkle_tree_test.cc,
# as used by transparency-dev/merkle testonly/constants.go and
# proof/verify_test.go). -----------------------------------------------------

LEAF_INPUTS = [bytes.fromhex(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [bytes.fromhex(x) for x in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# NodeHashes(): [level][index] of every perfect subtree of the 8-leaf tree.
NODE_HASHES = [[bytes.fromhex(x) for x in level] for level in (
    ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",),
)]


def _hx(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


# (index, size, proof): 0-based leaf index.
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 2, _hx("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")),
    (1, 2, _hx("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")),
    (2, 3, _hx("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, _hx("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (0, 8, _hx("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (5, 8, _hx("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]
# (old_size, new_size, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, _hx("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
               "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (6, 8, _hx("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 5, _hx("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
               "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (6, 7, _hx("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
               "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


class CountingStore:
    """A real MemoryNodeStore that counts batched reads."""

    def __init__(self, inner: m.MemoryNodeStore) -> None:
        self.inner = inner
        self.calls = 0

    def get_nodes(self, keys: Sequence[m.NodeKey]) -> Mapping[m.NodeKey, bytes]:
        self.calls += 1
        return self.inner.get_nodes(keys)


def _vector_store() -> m.MemoryNodeStore:
    store = m.MemoryNodeStore()
    store.append([m.leaf_hash(x) for x in LEAF_INPUTS])
    return store


def _entries(n: int) -> list[bytes]:
    return [m.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


# --- reference proofs, written straight from the RFC 9162 recursions ----------


def _ref_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = m._split(n)
    if index < k:
        return [*_ref_path(index, leaves[:k]), m.root_from_leaves(leaves[k:])]
    return [*_ref_path(index - k, leaves[k:]), m.root_from_leaves(leaves[:k])]


def _ref_subproof(old: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if old == n:
        return [] if whole else [m.root_from_leaves(leaves)]
    k = m._split(n)
    if old <= k:
        return [*_ref_subproof(old, leaves[:k], whole), m.root_from_leaves(leaves[k:])]
    return [*_ref_subproof(old - k, leaves[k:], False), m.root_from_leaves(leaves[:k])]


def _ref_consistency(old: int, leaves: Sequence[bytes]) -> list[bytes]:
    if old in (0, len(leaves)):
        return []
    return _ref_subproof(old, leaves, True)


# --- corruption probes (after transparency-dev/merkle proof/verify_test.go) ---


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _inclusion_corruptions(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes, all_bits: bool = False,
) -> list[tuple[str, bytes, int, int, list[bytes], bytes]]:
    probes = [
        ("index - 1", leaf, index - 1, size, proof, root),
        ("index + 1", leaf, index + 1, size, proof, root),
        ("index ^ 2", leaf, index ^ 2, size, proof, root),
        ("size * 2", leaf, index, size * 2, proof, root),
        ("size / 2", leaf, index, size // 2, proof, root),
        ("wrong leaf", m.leaf_hash(b"wrong"), index, size, proof, root),
        ("empty root", leaf, index, size, proof, m.EMPTY_ROOT),
        ("random root", leaf, index, size, proof, SOME_HASH),
        ("trailing root", leaf, index, size, [*proof, root], root),
        ("trailing garbage", leaf, index, size, [*proof, b""], root),
        ("preceding root", leaf, index, size, [root, *proof], root),
        ("preceding leaf", leaf, index, size, [leaf, *proof], root),
    ]
    for i in range(len(proof)):
        bits = range(256) if all_bits else (i * 37 % 256, (i * 101 + 255) % 256)
        for bit in bits:
            bad = list(proof)
            bad[i] = _flip(bad[i], bit)
            probes.append((f"proof[{i}] bit {bit}", leaf, index, size, bad, root))
        probes.append((f"removed proof[{i}]", leaf, index, size, proof[:i] + proof[i + 1:], root))
        probes.append((f"inserted at {i}", leaf, index, size,
                       [*proof[:i], SOME_HASH, *proof[i:]], root))
    if proof:
        probes.append(("leaf and first sibling swapped", proof[0], index, size,
                       [leaf, *proof[1:]], root))
    return probes


def _consistency_corruptions(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes],
    all_bits: bool = False,
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("old - 1", old - 1, new, old_root, new_root, proof),
        ("old + 1", old + 1, new, old_root, new_root, proof),
        ("old ^ 2", old ^ 2, new, old_root, new_root, proof),
        ("new * 2", old, new * 2, old_root, new_root, proof),
        ("new / 2", old, new // 2, old_root, new_root, proof),
        ("wrong old root", old, new, SOME_HASH, new_root, proof),
        ("wrong new root", old, new, old_root, SOME_HASH, proof),
        ("swapped roots", old, new, new_root, old_root, proof),
        ("empty proof", old, new, old_root, new_root, []),
        ("trailing old root", old, new, old_root, new_root, [*proof, old_root]),
        ("trailing new root", old, new, old_root, new_root, [*proof, new_root]),
        ("trailing garbage", old, new, old_root, new_root, [*proof, b""]),
        ("preceding old root", old, new, old_root, new_root, [old_root, *proof]),
        ("preceding new root", old, new, old_root, new_root, [new_root, *proof]),
        ("preceding proof[0]", old, new, old_root, new_root, [proof[0], *proof]),
    ]
    for i in range(len(proof)):
        bits = range(256) if all_bits else (i * 37 % 256, (i * 101 + 255) % 256)
        for bit in bits:
            bad = list(proof)
            bad[i] = _flip(bad[i], bit)
            probes.append((f"proof[{i}] bit {bit}", old, new, old_root, new_root, bad))
        probes.append((f"removed proof[{i}]", old, new, old_root, new_root,
                       proof[:i] + proof[i + 1:]))
        probes.append((f"inserted at {i}", old, new, old_root, new_root,
                       [*proof[:i], SOME_HASH, *proof[i:]]))
    return probes


def _assert_inclusion_rejects(leaf: bytes, index: int, size: int, proof: list[bytes],
                              root: bytes, all_bits: bool = False) -> None:
    m.verify_inclusion(leaf, index, size, proof, root)
    for desc, *args in _inclusion_corruptions(leaf, index, size, proof, root, all_bits):
        with pytest.raises(CryptoError):
            m.verify_inclusion(*args)  # type: ignore[arg-type]
            pytest.fail(f"inclusion ({index}, {size}) verified with: {desc}")


def _assert_consistency_rejects(old: int, new: int, old_root: bytes, new_root: bytes,
                                proof: list[bytes], all_bits: bool = False) -> None:
    m.verify_consistency(old, new, old_root, new_root, proof)
    for desc, *args in _consistency_corruptions(old, new, old_root, new_root, proof, all_bits):
        with pytest.raises(CryptoError):
            m.verify_consistency(*args)  # type: ignore[arg-type]
            pytest.fail(f"consistency ({old}, {new}) verified with: {desc}")


# --- hashing and vectors -------------------------------------------------------


def test_empty_tree_root() -> None:
    assert m.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert m.root_from_leaves([]) == m.EMPTY_ROOT
    assert m.root(0, m.MemoryNodeStore()) == m.EMPTY_ROOT
    assert m.frontier_root([]) == m.EMPTY_ROOT


def test_leaf_and_node_hash_domain_separation() -> None:
    assert m.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert m.leaf_hash(b"") == ROOTS[1]
    a, b = m.leaf_hash(b"a"), m.leaf_hash(b"b")
    assert m.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert m.node_hash(a, b) != m.node_hash(b, a)


def test_vector_roots_from_store_and_reference() -> None:
    store = _vector_store()
    leaves = [m.leaf_hash(x) for x in LEAF_INPUTS]
    for size, want in enumerate(ROOTS):
        assert m.root(size, store) == want, size
        assert m.root_from_leaves(leaves[:size]) == want, size


def test_vector_stored_nodes_are_exactly_the_perfect_subtrees() -> None:
    store = _vector_store()
    want = {(lvl, i): h for lvl, level in enumerate(NODE_HASHES) for i, h in enumerate(level)}
    assert store.nodes == want
    assert store.size == 8


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_vector_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    store = _vector_store()
    assert m.inclusion_proof(index, size, store) == proof
    _assert_inclusion_rejects(m.leaf_hash(LEAF_INPUTS[index]), index, size, proof, ROOTS[size],
                              all_bits=True)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_vector_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    store = _vector_store()
    assert m.consistency_proof(old, new, store) == proof
    if old == new:
        m.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    else:
        _assert_consistency_rejects(old, new, ROOTS[old], ROOTS[new], proof, all_bits=True)


# --- edge cases of the verifiers (transparency-dev TestVerifyConsistency etc.) ---


def test_verify_inclusion_edges() -> None:
    h = m.leaf_hash(b"data")
    m.verify_inclusion(h, 0, 1, [], h)  # 1-entry tree: root == leaf hash
    for index, size in ((0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)):
        with pytest.raises(CryptoError):
            m.verify_inclusion(h, index, size, [], h)
    for leaf, root in ((h, b""), (b"", h), (b"", b""), (h, h + b"\x00")):
        with pytest.raises(CryptoError):
            m.verify_inclusion(leaf, 0, 1, [], root)


def test_verify_consistency_edges() -> None:
    r1, r2 = ROOTS[3], ROOTS[4]
    m.verify_consistency(0, 0, m.EMPTY_ROOT, m.EMPTY_ROOT, [])
    m.verify_consistency(0, 5, m.EMPTY_ROOT, r2, [])
    m.verify_consistency(3, 3, r1, r1, [])
    bad = [
        (0, 0, r1, r2, []),                              # equal sizes, different roots
        (3, 3, r1, r2, []),
        (3, 3, r1, r1, [m.EMPTY_ROOT]),                  # equal sizes, non-empty proof
        (0, 1, m.EMPTY_ROOT, r2, [m.EMPTY_ROOT]),        # from empty, non-empty proof
        (0, 1, r1, r2, []),                              # empty tree with a non-empty root
        (1, 0, r1, r2, []),                              # time travel
        (4, 3, r1, r2, [r1]),
        (-1, 3, r1, r2, []),
        (1, 2, r1, r2, []),                              # empty proof
        (1, 2, r1, r2, [b"short"]),                      # malformed hash
    ]
    for args in bad:
        with pytest.raises(CryptoError):
            m.verify_consistency(*args)  # type: ignore[arg-type]


# --- every size 1..70: stored proofs == RFC recursions, verify, corruptions fail ---

MAX_SIZE = 70


@pytest.fixture(scope="module")
def big_store() -> tuple[m.MemoryNodeStore, list[bytes]]:
    leaves = _entries(MAX_SIZE)
    store = m.MemoryNodeStore()
    store.append(leaves)
    return store, leaves


def test_roots_for_every_size(big_store: tuple[m.MemoryNodeStore, list[bytes]]) -> None:
    store, leaves = big_store
    for size in range(MAX_SIZE + 1):
        assert m.root(size, store) == m.root_from_leaves(leaves[:size])


def test_inclusion_for_every_index_and_size(
    big_store: tuple[m.MemoryNodeStore, list[bytes]],
) -> None:
    store, leaves = big_store
    for size in range(1, MAX_SIZE + 1):
        root = m.root_from_leaves(leaves[:size])
        for index in range(size):
            proof = m.inclusion_proof(index, size, store)
            assert proof == _ref_path(index, leaves[:size]), (index, size)
            _assert_inclusion_rejects(leaves[index], index, size, proof, root)


def test_consistency_for_every_pair_of_sizes(
    big_store: tuple[m.MemoryNodeStore, list[bytes]],
) -> None:
    store, leaves = big_store
    roots = [m.root_from_leaves(leaves[:n]) for n in range(MAX_SIZE + 1)]
    for new in range(1, MAX_SIZE + 1):
        for old in range(0, new + 1):
            proof = m.consistency_proof(old, new, store)
            assert proof == _ref_consistency(old, leaves[:new]), (old, new)
            if old in (0, new):
                assert proof == []
                m.verify_consistency(old, new, roots[old], roots[new], proof)
            else:
                _assert_consistency_rejects(old, new, roots[old], roots[new], proof)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_bit_flip_in_any_proof_is_rejected(data: st.DataObject) -> None:
    leaves = _entries(MAX_SIZE)
    store = m.MemoryNodeStore()
    store.append(leaves)
    size = data.draw(st.integers(2, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(1, size - 1), label="old")
    root = m.root_from_leaves(leaves[:size])

    inc = m.inclusion_proof(index, size, store)
    i = data.draw(st.integers(0, len(inc) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    bad = list(inc)
    bad[i] = _flip(bad[i], bit)
    with pytest.raises(CryptoError):
        m.verify_inclusion(leaves[index], index, size, bad, root)

    cons = m.consistency_proof(old, size, store)
    j = data.draw(st.integers(0, len(cons) - 1), label="celement")
    bad = list(cons)
    bad[j] = _flip(bad[j], bit)
    with pytest.raises(CryptoError):
        m.verify_consistency(old, size, m.root_from_leaves(leaves[:old]), root, bad)


# --- storage model -------------------------------------------------------------


def test_proofs_use_one_batched_read(big_store: tuple[m.MemoryNodeStore, list[bytes]]) -> None:
    store = CountingStore(big_store[0])
    m.inclusion_proof(37, 70, store)
    assert store.calls == 1
    m.consistency_proof(21, 70, store)
    assert store.calls == 2
    m.root(70, store)
    assert store.calls == 3
    m.append_batch(70, _entries(3), store)
    assert store.calls == 4
    m.root(0, store)
    m.consistency_proof(0, 70, store)
    m.consistency_proof(70, 70, store)
    assert store.calls == 4  # trivial cases read nothing


def test_proofs_with_roots_equal_separate_calls_in_one_read(
    big_store: tuple[m.MemoryNodeStore, list[bytes]],
) -> None:
    store, leaves = big_store
    for size in range(1, MAX_SIZE + 1):
        for index in range(0, size, 7):
            counting = CountingStore(store)
            path, root = m.inclusion_proof_and_root(index, size, counting)
            assert counting.calls == 1
            assert path == m.inclusion_proof(index, size, store)
            assert root == m.root_from_leaves(leaves[:size])
        for old in range(0, size + 1, 5):
            counting = CountingStore(store)
            proof, old_root, new_root = m.consistency_proof_and_roots(old, size, counting)
            assert counting.calls == 1
            assert proof == m.consistency_proof(old, size, store)
            assert old_root == m.root_from_leaves(leaves[:old])
            assert new_root == m.root_from_leaves(leaves[:size])
    assert m.consistency_proof_and_roots(0, 0, store) == ([], m.EMPTY_ROOT, m.EMPTY_ROOT)


def test_proof_reads_are_logarithmic() -> None:
    size = 20_000
    store = m.MemoryNodeStore()
    store.append(_entries(size))
    counted = CountingStore(store)

    seen: list[int] = []

    class Spy:
        def get_nodes(self, keys: Sequence[m.NodeKey]) -> Mapping[m.NodeKey, bytes]:
            seen.append(len(keys))
            return counted.get_nodes(keys)

    m.inclusion_proof(12_345, size, Spy())
    m.consistency_proof(8_193, size, Spy())
    m.root(size, Spy())
    assert max(seen) <= 2 * size.bit_length()
    assert len(store.nodes) == 2 * size - size.bit_count()  # every perfect subtree, once


def test_single_appends_equal_batched_appends() -> None:
    leaves = _entries(300)
    one = m.MemoryNodeStore()
    for leaf in leaves:
        new = m.append_nodes(one.size, leaf, one)
        assert new[0] == m.Node(0, one.size, leaf)
        one.put_nodes(new)
    batched = m.MemoryNodeStore()
    i, step = 0, 1
    while i < len(leaves):
        batched.append(leaves[i:i + step])
        i += step
        step = step * 3 % 17 + 1
    assert one.nodes == batched.nodes
    assert m.root(300, batched) == m.root_from_leaves(leaves)


def test_append_nodes_returns_closed_subtrees() -> None:
    store = m.MemoryNodeStore()
    store.append(_entries(7))
    new = m.append_nodes(7, m.leaf_hash(b"x"), store)
    assert [n.key for n in new] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert new[-1].hash == m.root_from_leaves([*_entries(7), m.leaf_hash(b"x")])


def test_append_leaves_is_pure_and_returns_new_frontier() -> None:
    leaves = _entries(100)
    nodes, front = m.append_leaves(0, [], leaves[:37])
    assert len(front) == (37).bit_count()
    assert m.frontier_root(front) == m.root_from_leaves(leaves[:37])
    nodes2, front2 = m.append_leaves(37, front, leaves[37:])
    assert m.frontier_root(front2) == m.root_from_leaves(leaves)
    store = m.MemoryNodeStore()
    store.put_nodes(nodes + nodes2)
    assert m.frontier(100, store) == front2
    assert m.frontier_keys(100) == [(6, 0), (5, 2), (2, 24)]


def test_bad_arguments() -> None:
    store = _vector_store()
    with pytest.raises(InvalidInput):
        m.inclusion_proof(8, 8, store)
    with pytest.raises(InvalidInput):
        m.inclusion_proof(-1, 8, store)
    with pytest.raises(InvalidInput):
        m.consistency_proof(5, 4, store)
    with pytest.raises(InvalidInput):
        m.root(-1, store)
    with pytest.raises(InvalidInput):
        m.append_leaves(3, [SOME_HASH], [SOME_HASH])  # size 3 has 2 frontier hashes
    with pytest.raises(InvalidInput):
        m.append_leaves(0, [], [b"short"])


def test_missing_or_corrupt_stored_nodes() -> None:
    store = _vector_store()
    with pytest.raises(NotFound):
        m.root(9, store)
    with pytest.raises(NotFound):
        m.inclusion_proof(0, 9, store)
    del store.nodes[(1, 1)]
    with pytest.raises(NotFound):
        m.inclusion_proof(0, 8, store)
    store.nodes[(1, 1)] = b"short"
    with pytest.raises(CryptoError):
        m.inclusion_proof(0, 8, store)


def test_stored_nodes_are_immutable() -> None:
    store = _vector_store()
    store.put_nodes([m.Node(0, 0, NODE_HASHES[0][0])])  # same value: fine
    with pytest.raises(Conflict):
        store.put_nodes([m.Node(0, 0, SOME_HASH)])
