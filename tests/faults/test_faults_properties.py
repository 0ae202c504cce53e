"""Property tests of the parsers that take outside input: digest algorithms and
digests, CSC request parameters, signed-note checkpoints and verifier keys,
usage-log entries, and the Merkle proof verifiers.

Whatever they are given, they either return a well-formed value or raise the
one error they document (InvalidInput / CryptoError / the CSC error), never
anything else (a TypeError, an IndexError... would be a 500 on the wire).
tests/crypto already covers proofs and notes that are *mutated* from valid
ones; these feed them arbitrary values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sealkeeper.audit.encoding import decode_entry
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.errors import CryptoError, InvalidInput
from sealkeeper.web.csc.errors import CscError
from sealkeeper.web.csc.params import Params

FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=15)


# -- digests ---------------------------------------------------------------------------


@FAST
@given(st.text(max_size=40))
def test_digest_algorithm_parse_accepts_only_known_names(value: str) -> None:
    try:
        alg = DigestAlgorithm.parse(value, field="f")
    except InvalidInput as e:
        assert e.field == "f"
        return
    norm = value.strip().lower().replace("-", "").replace("_", "")
    assert norm == alg.value or value.strip() == alg.oid


@pytest.mark.parametrize("alg", list(DigestAlgorithm))
def test_digest_algorithm_names_round_trip(alg: DigestAlgorithm) -> None:
    for spelling in (alg.value, alg.value.upper(), alg.oid, f" {alg.oid} ",
                     alg.value.replace("sha", "SHA-"), alg.value.replace("sha", "sha_")):
        assert DigestAlgorithm.parse(spelling) is alg


@pytest.mark.parametrize("weak", ["sha1", "SHA-1", "md5", "MD5", "1.3.14.3.2.26",
                                  "1.2.840.113549.2.5", "sha224", "2.16.840.1.101.3.4.2.4"])
def test_weak_digest_algorithms_are_named_as_weak(weak: str) -> None:
    with pytest.raises(InvalidInput, match="too weak"):
        DigestAlgorithm.parse(weak)


@FAST
@given(st.sampled_from(list(DigestAlgorithm)), st.binary(max_size=80))
def test_hashed_checks_the_length(alg: DigestAlgorithm, digest: bytes) -> None:
    if len(digest) == alg.size:
        assert Hashed(alg, digest).digest == digest
    else:
        with pytest.raises(InvalidInput):
            Hashed(alg, digest)


# -- CSC parameters -------------------------------------------------------------------------


def _params(body: Any, version: str = "v2") -> Params:
    return Params(SimpleNamespace(state=SimpleNamespace()), body, version)  # type: ignore[arg-type]


@FAST
@given(st.one_of(JSON, st.binary(max_size=60)), st.sampled_from(["v1", "v2"]))
def test_csc_body_is_an_object_or_refused(body: Any, version: str) -> None:
    try:
        p = _params(body, version)
    except CscError:
        return
    assert isinstance(p.body, dict)


_B64_ITEM = st.one_of(
    st.binary(max_size=70).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=_- \n", max_size=100),
    JSON)


@FAST
@given(st.one_of(st.lists(_B64_ITEM, max_size=5), JSON),
       st.sampled_from(["hash", "hashes"]),
       st.sampled_from([None, *DigestAlgorithm]),
       st.booleans())
def test_csc_hashes_are_typed_or_refused(value: Any, name: str,
                                         algorithm: DigestAlgorithm | None,
                                         single: bool) -> None:
    p = _params({name: value})
    try:
        out = p.hashes(algorithm, single=single)
    except CscError as e:
        assert e.message
        return
    assert out is not None and out
    algs = {h.algorithm for h in out}
    assert len(algs) == 1
    if algorithm is not None:
        assert algs == {algorithm}
    items = [value] if isinstance(value, str) else value
    assert [h.digest for h in out] == [base64.b64decode(x) for x in items]


@FAST
@given(st.lists(st.sampled_from([32, 48, 64]), min_size=1, max_size=4))
def test_csc_hash_algorithm_follows_from_the_length(sizes: list[int]) -> None:
    values = [hashlib.sha512(bytes([i])).digest()[:n] for i, n in enumerate(sizes)]
    p = _params({"hashes": [base64.b64encode(v).decode() for v in values]})
    if len(set(sizes)) == 1:
        out = p.hashes(None)
        assert out is not None
        assert [h.digest for h in out] == values
        assert {h.algorithm.size for h in out} == {sizes[0]}
    else:
        with pytest.raises(CscError):
            p.hashes(None)


@FAST
@given(JSON, st.sampled_from(["PIN", "authData"]))
def test_csc_pin_is_a_string_or_refused(value: Any, where: str) -> None:
    body = {"PIN": value} if where == "PIN" else {"authData": value}
    try:
        pin = _params(body).pin()
    except CscError:
        return
    assert isinstance(pin, str) and "\x00" not in pin and len(pin) <= 100


@FAST
@given(st.dictionaries(st.sampled_from(["credentialID", "numSignatures", "onlyValid",
                                        "hashAlgo", "hashAlgorithmOID", "certificates"]),
                       JSON, max_size=6))
def test_csc_scalar_getters_are_typed_or_refused(body: dict[str, Any]) -> None:
    p = _params(body)
    getters = [
        (p.credential_id, str), (lambda: p.integer("numSignatures"), int),
        (lambda: p.boolean("onlyValid"), bool), (p.hash_algorithm, (DigestAlgorithm,
                                                                    type(None))),
        (lambda: p.choice("certificates", ("none", "single", "chain"), "single"), str),
    ]
    for get, kind in getters:
        try:
            value = get()
        except CscError:
            continue
        assert isinstance(value, kind)
        assert not isinstance(value, bool) or kind is bool


# -- checkpoints, verifier keys and log entries ------------------------------------------------

KEY = Ed25519PrivateKey.generate()
NAME = "log.example/log/org"
NOTE = notes.sign_checkpoint(notes.Checkpoint(NAME, 5, merkle.leaf_hash(b"r")), NAME,
                             KEY.public_key(), KEY.sign)


@FAST
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.text(max_size=300).map(lambda t: NOTE[: len(t) % len(NOTE)] + t)))
def test_checkpoint_parser_takes_anything(data: str | bytes) -> None:
    try:
        cp = notes.parse_and_verify(data, NAME, KEY.public_key())
    except (InvalidInput, CryptoError):
        return
    assert cp.size == 5  # only the one real note verifies


@FAST
@given(st.text(max_size=200))
def test_checkpoint_body_parser_takes_anything(text: str) -> None:
    try:
        cp = notes.parse_body(text)
    except InvalidInput:
        return
    assert notes.encode_body(cp) == text


@FAST
@given(st.one_of(st.text(max_size=200),
                 st.builds(lambda n, b: f"{n}+{b.hex()[:8]}+{base64.b64encode(b).decode()}",
                           st.text(max_size=20), st.binary(max_size=80))))
def test_verifier_key_parser_takes_anything(vkey: str) -> None:
    try:
        name, _ = notes.parse_verifier_key(vkey)
    except (InvalidInput, CryptoError):
        return
    assert vkey.startswith(name + "+")


@FAST
@given(st.one_of(st.binary(max_size=400),
                 JSON.map(lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"))
                          .encode())))
def test_log_entry_decoder_takes_anything(data: bytes) -> None:
    try:
        body = decode_entry(data)
    except InvalidInput:
        return
    assert isinstance(body, dict) and body["v"] == 1


# -- the proof verifiers -----------------------------------------------------------------------

HASH = st.binary(min_size=32, max_size=32)
ANY_HASH = st.one_of(HASH, st.binary(max_size=40), st.text(max_size=5), st.none(),
                     st.integers())
SIZES = st.one_of(st.integers(-5, 40), st.integers(-2**70, 2**70))


@FAST
@given(ANY_HASH, SIZES, SIZES, st.lists(ANY_HASH, max_size=8), ANY_HASH)
def test_inclusion_verifier_takes_anything(leaf: Any, index: Any, size: Any, proof: list[Any],
                                           root: Any) -> None:
    with pytest.raises(CryptoError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@FAST
@given(SIZES, SIZES, ANY_HASH, ANY_HASH, st.lists(ANY_HASH, max_size=8))
def test_consistency_verifier_takes_anything(old: Any, new: Any, old_root: Any,
                                             new_root: Any, proof: list[Any]) -> None:
    trivially_true = (isinstance(old_root, bytes) and len(old_root) == 32 and not proof
                      and isinstance(old, int) and isinstance(new, int)
                      and ((old == new >= 0 and old_root == new_root)
                           or (old == 0 <= new and old_root == merkle.EMPTY_ROOT)))
    assume(not trivially_true)
    with pytest.raises(CryptoError):
        merkle.verify_consistency(old, new, old_root, new_root, proof)


@FAST
@given(st.integers(1, 40), st.data())
def test_a_proof_verifies_only_for_its_own_leaf_index(size: int,
                                                               data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(size)]
    store = merkle.MemoryNodeStore()
    store.append(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, store)
    root = merkle.root_from_leaves(leaves)
    merkle.verify_inclusion(leaves[index], index, size, proof, root)
    other = data.draw(st.integers(0, size + 3))
    if other != index:
        with pytest.raises(CryptoError):
            merkle.verify_inclusion(leaves[index], other, size, proof, root)
