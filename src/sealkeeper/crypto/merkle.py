"""RFC 9162 (section 2.1) Merkle tree hashing, proofs and proof verification.

Scope: the pure cryptographic core of the tamper-evident log. No database:
stored nodes are read through the :class:`NodeStore` protocol (one batched
``get_nodes`` call per operation), and appends return the new nodes for the
caller to write in its own transaction.

Hashing (RFC 9162 section 2.1.1, SHA-256)::

    leaf_hash(entry) = SHA-256(0x00 || entry)
    node_hash(l, r)  = SHA-256(0x01 || l || r)
    MTH({})          = SHA-256("")            (e3b0c442...b855)

Storage model: the hash of every *perfect* subtree is stored once, when it
becomes complete, and never changes. Node ``(level, index)`` covers leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes.
Any subtree hash that RFC 9162 needs (a root, an inclusion or consistency
proof element) is either one stored node or the right-fold (``node_hash``) of
the O(log n) stored perfect subtrees that decompose it, so roots and proofs
are O(log n) lookups and never rehash the log.

The *frontier* of a tree of size ``n`` is the list of perfect subtrees that
decompose ``[0, n)``, largest (leftmost) first: one per set bit of ``n``.
Appending leaves only needs the frontier (see :func:`append_leaves`).

Errors: bad arguments raise :class:`~sealkeeper.errors.InvalidInput`; a node
missing from the store raises :class:`~sealkeeper.errors.NotFound`; a proof
that does not verify raises :class:`~sealkeeper.errors.CryptoError`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sealkeeper.errors import Conflict, CryptoError, InvalidInput, NotFound

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "Node",
    "NodeKey",
    "NodeStore",
    "append_batch",
    "append_leaves",
    "append_nodes",
    "consistency_proof",
    "frontier",
    "frontier_keys",
    "frontier_root",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""


@dataclass(frozen=True, slots=True)
class Node:
    """A stored perfect-subtree hash: covers leaves [index*2**level, (index+1)*2**level)."""

    level: int
    index: int
    hash: bytes

    @property
    def key(self) -> NodeKey:
        return (self.level, self.index)


class NodeStore(Protocol):
    """Read access to stored perfect-subtree hashes."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the stored hash of each key that exists (absent keys are left out)."""
        ...


# --- hashing -----------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, recursively as RFC 9162 defines it (reference)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


# --- appending ---------------------------------------------------------------


def frontier_keys(size: int) -> list[NodeKey]:
    """Keys of the perfect subtrees decomposing [0, size), largest first."""
    _check_size(size)
    return _range_keys(0, size)


def frontier(size: int, store: NodeStore) -> list[bytes]:
    """Hashes of the frontier of a tree of ``size`` leaves (one ``get_nodes`` call)."""
    keys = frontier_keys(size)
    found = _fetch(store, keys)
    return [found[k] for k in keys]


def frontier_root(frontier_hashes: Sequence[bytes]) -> bytes:
    """The tree root given its frontier (largest subtree first)."""
    if not frontier_hashes:
        return EMPTY_ROOT
    return _fold(frontier_hashes)


def append_leaves(
    size: int, frontier_hashes: Sequence[bytes], leaf_hashes: Sequence[bytes]
) -> tuple[list[Node], list[bytes]]:
    """Append ``leaf_hashes`` to a tree of ``size`` leaves with the given frontier.

    Pure: returns every node that becomes complete (each leaf at level 0, and
    each perfect subtree it closes) and the frontier of the new tree, whose
    root is ``frontier_root(new_frontier)``. Costs one hash per new node.
    """
    _check_size(size)
    if len(frontier_hashes) != size.bit_count():
        raise InvalidInput(
            f"a tree of size {size} has {size.bit_count()} frontier hashes, "
            f"got {len(frontier_hashes)}"
        )
    stack = [_check_hash(h, "frontier hash") for h in frontier_hashes]
    nodes: list[Node] = []
    n = size
    for lh in leaf_hashes:
        h = _check_hash(lh, "leaf hash")
        level, index = 0, n
        nodes.append(Node(0, index, h))
        # Each trailing 1 bit of the index closes a perfect subtree with the
        # frontier's smallest one, which is its left sibling.
        while index & 1:
            h = node_hash(stack.pop(), h)
            level, index = level + 1, index >> 1
            nodes.append(Node(level, index, h))
        stack.append(h)
        n += 1
    return nodes, stack


def append_batch(size: int, leaf_hashes: Sequence[bytes], store: NodeStore) -> list[Node]:
    """New nodes created by appending ``leaf_hashes`` to the stored tree of ``size`` leaves.

    Reads the frontier with one ``get_nodes`` call; the caller writes the nodes.
    """
    nodes, _ = append_leaves(size, frontier(size, store), leaf_hashes)
    return nodes


def append_nodes(size: int, leaf_hash: bytes, store: NodeStore) -> list[Node]:
    """New nodes created by appending one leaf (the leaf itself included)."""
    return append_batch(size, [leaf_hash], store)


# --- roots and proofs from stored nodes -------------------------------------


def root(size: int, store: NodeStore) -> bytes:
    """Root hash of the tree of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return frontier_root(frontier(size, store))


def inclusion_proof(index: int, size: int, store: NodeStore) -> list[bytes]:
    """RFC 9162 inclusion proof (PATH) of leaf ``index`` in the tree of ``size`` leaves."""
    return _range_hashes(_inclusion_ranges(index, size), store)


def inclusion_proof_and_root(index: int, size: int,
                             store: NodeStore) -> tuple[list[bytes], bytes]:
    """The inclusion proof and the root of that tree, from one fetch of stored nodes."""
    ranges = _inclusion_ranges(index, size)
    hashes = _range_hashes([*ranges, (0, size)], store)
    return hashes[:-1], hashes[-1]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    _check_size(size)
    if not 0 <= index < size:
        raise InvalidInput(f"leaf index {index} is outside a tree of size {size}", field="index")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        split = lo + _split(hi - lo)
        if index < split:
            ranges.append((split, hi))
            hi = split
        else:
            ranges.append((lo, split))
            lo = split
    ranges.reverse()
    return ranges


def consistency_proof(old_size: int, new_size: int, store: NodeStore) -> list[bytes]:
    """RFC 9162 consistency proof (PROOF) from tree size ``old_size`` to ``new_size``."""
    return _range_hashes(_consistency_ranges(old_size, new_size), store)


def consistency_proof_and_roots(old_size: int, new_size: int,
                                store: NodeStore) -> tuple[list[bytes], bytes, bytes]:
    """The consistency proof and the roots of both trees, from one fetch of stored nodes."""
    ranges = _consistency_ranges(old_size, new_size)
    ends = [(0, n) for n in (old_size, new_size) if n > 0]
    hashes = _range_hashes([*ranges, *ends], store)
    roots = hashes[len(ranges):]
    old_root = roots[0] if old_size > 0 else EMPTY_ROOT
    new_root = roots[-1] if new_size > 0 else EMPTY_ROOT
    return hashes[:len(ranges)], old_root, new_root


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    _check_size(old_size)
    _check_size(new_size)
    if old_size > new_size:
        raise InvalidInput(f"old size {old_size} is larger than new size {new_size}",
                           field="old_size")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[lo:hi], b) unrolled, with m = old_size - lo.
    ranges: list[tuple[int, int]] = []
    lo, hi, whole = 0, new_size, True
    while old_size != hi:
        split = lo + _split(hi - lo)
        if old_size <= split:
            ranges.append((split, hi))
            hi = split
        else:
            ranges.append((lo, split))
            lo, whole = split, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) --------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Raises :class:`CryptoError` unless the proof verifies.
    """
    _check_proof_hash(leaf_hash, "leaf hash")
    _check_proof_hash(root, "root hash")
    for i, p in enumerate(proof):
        _check_proof_hash(p, f"inclusion proof element {i}")
    if not 0 <= index < size:
        raise CryptoError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
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


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root).

    RFC 9162 defines the algorithm for 0 < old_size < new_size. The edges are
    strict: equal sizes need an empty proof and equal roots; old size 0 needs
    an empty proof and ``old_root == EMPTY_ROOT``. Raises :class:`CryptoError`.
    """
    _check_proof_hash(old_root, "old root hash")
    _check_proof_hash(new_root, "new root hash")
    for i, p in enumerate(proof):
        _check_proof_hash(p, f"consistency proof element {i}")
    if old_size < 0 or old_size > new_size:
        raise CryptoError(f"tree size {old_size} cannot precede tree size {new_size}")
    if old_size == new_size:
        if proof:
            raise CryptoError("a consistency proof between equal sizes must be empty")
        if not hmac.compare_digest(old_root, new_root):
            raise CryptoError("equal tree sizes with different root hashes")
        return
    if old_size == 0:
        if proof:
            raise CryptoError("a consistency proof from the empty tree must be empty")
        if not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise CryptoError("the root of the empty tree is not SHA-256('')")
        return
    # 1. An empty path fails.
    if not proof:
        raise CryptoError("consistency proof is empty")
    # 2. If first is an exact power of 2, prepend first_hash.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
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
    # 7.
    if sn != 0:
        raise CryptoError("consistency proof is too short")
    if not hmac.compare_digest(fr, old_root):
        raise CryptoError("consistency proof does not lead to the old root hash")
    if not hmac.compare_digest(sr, new_root):
        raise CryptoError("consistency proof does not lead to the new root hash")


# --- in-memory store ---------------------------------------------------------


class MemoryNodeStore:
    """A dict-backed :class:`NodeStore` for tests, benchmarks and offline verifiers."""

    def __init__(self) -> None:
        self.nodes: dict[NodeKey, bytes] = {}
        self.size = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        return {k: self.nodes[k] for k in keys if k in self.nodes}

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store nodes; a node is immutable once written."""
        for node in nodes:
            old = self.nodes.get(node.key)
            if old is None:
                self.nodes[node.key] = node.hash
                if node.level == 0:
                    self.size += 1
            elif old != node.hash:
                raise Conflict(f"node {node.key} is already stored with another hash")

    def append(self, leaf_hashes: Sequence[bytes]) -> list[Node]:
        """Append leaves at the end of the stored tree; returns the new nodes."""
        nodes = append_batch(self.size, leaf_hashes, self)
        self.put_nodes(nodes)
        return nodes


# --- private helpers ---------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_keys(lo: int, hi: int) -> list[NodeKey]:
    """The aligned perfect subtrees decomposing [lo, hi), left to right."""
    keys: list[NodeKey] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while lo + (1 << level) > hi:
            level -= 1
        keys.append((level, lo >> level))
        lo += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Right-fold: h1 . (h2 . (... hk)), the MTH of a range given its decomposition."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hashes(ranges: Sequence[tuple[int, int]], store: NodeStore) -> list[bytes]:
    """MTH of each range (each an RFC 9162 subtree), with one batched fetch."""
    per_range = [_range_keys(lo, hi) for lo, hi in ranges]
    found = _fetch(store, [k for keys in per_range for k in keys])
    return [_fold([found[k] for k in keys]) for keys in per_range]


def _fetch(store: NodeStore, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
    if not keys:
        return {}
    found = store.get_nodes(keys)
    for key in keys:
        h = found.get(key)
        if h is None:
            raise NotFound(f"Merkle node {key} is not stored")
        if len(h) != HASH_SIZE:
            raise CryptoError(f"stored Merkle node {key} is not {HASH_SIZE} bytes")
    return found


def _check_size(size: int) -> None:
    if size < 0:
        raise InvalidInput(f"tree size {size} is negative", field="size")


def _check_hash(h: bytes, what: str) -> bytes:
    if len(h) != HASH_SIZE:
        raise InvalidInput(f"a {what} is {HASH_SIZE} bytes, got {len(h)}")
    return h


def _check_proof_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise CryptoError(f"{what} is not a {HASH_SIZE}-byte hash")
