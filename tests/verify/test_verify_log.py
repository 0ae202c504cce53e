"""The client-side usage-log check (issue 6, item 4): ``check_log_evidence``
re-implements RFC 9162 inclusion and C2SP checkpoint verification without
server code; here it is fed proofs and notes made by the server's own
``crypto.merkle`` and ``crypto.checkpoint``, and every corruption is refused."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealkeeper.client.report import LogQuery, check_log_evidence
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle

ORG = "org1"
ORIGIN = f"seal.example.org/log/{ORG}"


def _entry(seq: int, sig: str) -> bytes:
    body = {"v": 1, "org": ORG, "seq": seq, "kind": "signature", "time":
            "2026-01-02T03:04:05.000006Z", "seal_id": "S1", "seal_name": "Contract",
            "seal_type": "contract", "signature_sha256": sig, "user_email": "a@x.org"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@pytest.fixture(params=["ed25519", "ecdsa"])
def log(request: pytest.FixtureRequest) -> dict[str, object]:
    key = (Ed25519PrivateKey.generate() if request.param == "ed25519"
           else ec.generate_private_key(ec.SECP256R1()))
    public = key.public_key()

    def sign(msg: bytes) -> bytes:
        if isinstance(key, Ed25519PrivateKey):
            return key.sign(msg)
        return key.sign(msg, ec.ECDSA(hashes.SHA256()))

    entries = [_entry(i, f"{i:064x}") for i in range(13)]
    store = merkle.MemoryNodeStore()
    store.append([merkle.leaf_hash(e) for e in entries])
    size = len(entries)
    cp = notes.Checkpoint(ORIGIN, size, merkle.root(size, store))
    note = notes.sign_checkpoint(cp, "seal.example.org", public, sign)
    return {"entries": entries, "store": store, "size": size, "note": note,
            "vkey": notes.verifier_key("seal.example.org", public)}


def _check(log: dict[str, object], seq: int = 5, **override: object) -> str:
    store = log["store"]
    assert isinstance(store, merkle.MemoryNodeStore)
    entries = log["entries"]
    assert isinstance(entries, list)
    size = int(log["size"])  # type: ignore[call-overload]
    args: dict[str, object] = {
        "organization_id": ORG, "seq": seq, "entry": entries[seq],
        "path": merkle.inclusion_proof(seq, size, store), "tree_size": size,
        "checkpoint": log["note"], "verifier_key": log["vkey"]}
    query = LogQuery(f"{seq:064x}", ("ab",))
    if "query" in override:
        query = override.pop("query")  # type: ignore[assignment]
    args.update(override)
    result = check_log_evidence(query, **args)  # type: ignore[arg-type]
    if result.status == "verified":
        assert result.seq == seq and result.tree_size == size
        assert result.seal_id == "S1" and result.seal_type == "contract"
        assert result.checkpoint_origin == ORIGIN
    return result.status


def test_every_entry_verifies(log: dict[str, object]) -> None:
    for seq in range(int(log["size"])):  # type: ignore[call-overload]
        assert _check(log, seq) == "verified"


def test_corruptions_are_refused(log: dict[str, object]) -> None:
    store = log["store"]
    assert isinstance(store, merkle.MemoryNodeStore)
    path = merkle.inclusion_proof(5, 13, store)
    flipped = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
    assert _check(log, path=flipped) == "failed"
    assert _check(log, path=path[:-1]) == "failed"
    assert _check(log, path=[*path, path[0]]) == "failed"
    assert _check(log, seq=5, entry=_entry(6, f"{6:064x}")) == "failed"   # another entry
    assert _check(log, query=LogQuery("00" * 32, ())) == "failed"         # other signature
    assert _check(log, tree_size=12) == "failed"
    assert _check(log, organization_id="org2") == "failed"
    other = Ed25519PrivateKey.generate().public_key()
    assert _check(log, verifier_key=notes.verifier_key("seal.example.org", other)) == "failed"
    note = str(log["note"])
    lines = note.split("\n")
    lines[1] = "14"
    assert _check(log, checkpoint="\n".join(lines)) == "failed"            # edited size
    assert _check(log, checkpoint="garbage") == "failed"


def test_wrong_index_is_refused(log: dict[str, object]) -> None:
    store = log["store"]
    assert isinstance(store, merkle.MemoryNodeStore)
    entries = log["entries"]
    assert isinstance(entries, list)
    for seq in (4, 6):
        result = check_log_evidence(
            LogQuery(f"{5:064x}", ()), organization_id=ORG, seq=seq, entry=entries[5],
            path=merkle.inclusion_proof(5, 13, store), tree_size=13,
            checkpoint=str(log["note"]), verifier_key=str(log["vkey"]))
        assert result.status == "failed"

