"""The verifier (``sealkeeper.client.logverify.verify_log``) against an
in-memory log built with the server's own Merkle and checkpoint code: trust
on first use and pinning, consistency with the saved checkpoint, and every
kind of tampering found with the first bad index. No database, no HTTP."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealkeeper.audit.encoding import EntryEncoder, EntryKind
from sealkeeper.client.logverify import LogVerification, StateDir, verify_log
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.errors import InvalidInput

ORG = "0f" * 16
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(seq: int, org: str = ORG, name: str | None = None) -> bytes:
    enc = EntryEncoder(org, T0 + timedelta(seconds=seq))
    return enc.encode(seq, EntryKind.SIGNATURE, {
        "seal_id": "S1", "seal_name": "Contract Seal", "seal_type": "contract",
        "user_id": "u1", "user_email": "alice@example.com",
        "file_name": name or f"contract-{seq}.pdf", "file_digest": f"{seq:064x}",
        "digest_algorithm": "sha256", "api": "native"})


class FakeLog:
    """A server's log: ``rows`` is what its database returns, ``store`` the
    committed tree (its nodes) and the signing key its checkpoints'."""

    def __init__(self, n: int = 0, org: str = ORG, origin: str | None = None) -> None:
        self.org = org
        self.origin = origin or f"seal.example/log/{org}"
        self.key = Ed25519PrivateKey.generate()
        self.rows: list[tuple[int, bytes]] = []
        self.store = merkle.MemoryNodeStore()
        self.size = 0
        self.calls: Counter[str] = Counter()
        self.lie = False
        self.append(n)

    def append(self, n: int) -> None:
        new = [entry(self.size + i, self.org) for i in range(n)]
        self.rows += [(self.size + i, e) for i, e in enumerate(new)]
        self.store.append([merkle.leaf_hash(e) for e in new])
        self.size += n

    def rebuild(self, entries: list[bytes]) -> None:
        """Rewrite history: a whole new, self-consistent tree."""
        self.rows, self.store, self.size = [], merkle.MemoryNodeStore(), 0
        self.rows = list(enumerate(entries))
        self.store.append([merkle.leaf_hash(e) for e in entries])
        self.size = len(entries)

    # -- LogSource
    def checkpoint(self) -> str:
        self.calls["checkpoint"] += 1
        cp = notes.Checkpoint(self.origin, self.size, merkle.root(self.size, self.store))
        return notes.sign_checkpoint(cp, "seal.example", self.key.public_key(), self.key.sign)

    def verifier_key(self) -> str:
        self.calls["verifier_key"] += 1
        return notes.verifier_key("seal.example", self.key.public_key())

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        self.calls["consistency"] += 1
        if not 0 <= old <= new <= self.size:
            raise InvalidInput("need old <= new <= size")
        if self.lie:
            return [b"\x07" * 32] * 3
        return merkle.consistency_proof(old, new, self.store)

    def raw_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        self.calls["entries"] += 1
        assert end - start <= 1000
        return [(s, e) for s, e in self.rows if start <= s < end]


def run(log: FakeLog, state: StateDir, **kw: object) -> LogVerification:
    res = verify_log(log, log.org, state=state, **kw)  # type: ignore[arg-type]
    json.dumps(res.to_json())  # always serializable
    return res


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "state")


def test_first_use_pins_the_key_then_follows_the_log(state: StateDir) -> None:
    log = FakeLog(20)
    res = run(log, state, full=True)
    assert res.ok and res.exit_code == 0 and res.saved
    assert res.key_source == "first-use" and res.consistency == "first-use"
    assert any("first use" in w for w in res.warnings)
    assert res.tree_size == 20 and res.entries_checked == 20 and res.root_recomputed
    assert state.load_key() == log.verifier_key()
    saved = state.load_checkpoint()
    assert saved is not None and saved.size == 20 and saved.leaves == 20
    assert (state.path / "leaves.bin").stat().st_size == 20 * 32

    res = run(log, state)
    assert res.ok and res.key_source == "pinned" and res.consistency == "same"
    assert not res.warnings and log.calls["verifier_key"] == 2  # only the test's own call

    log.append(13)
    res = run(log, state)
    assert res.ok and res.consistency == "proven" and res.tree_size == 33
    saved = state.load_checkpoint()
    assert saved is not None and saved.size == 33 and saved.leaves == 20

    res = run(log, state, full=True)
    assert res.ok and state.load_checkpoint().leaves == 33  # type: ignore[union-attr]


def test_empty_and_multi_page_logs(state: StateDir, tmp_path: Path) -> None:
    empty = FakeLog(0)
    res = run(empty, StateDir(tmp_path / "empty"), full=True)
    assert res.ok and res.tree_size == 0 and res.root_recomputed

    log = FakeLog(2500)
    assert run(log, state, full=True).ok
    assert log.calls["entries"] == 3
    log.rows[1700] = (1700, entry(1700, name="forged.pdf"))
    log.calls.clear()
    res = run(log, state, full=True)
    assert res.problem is not None
    assert (res.problem.kind, res.problem.index) == ("changed_entry", 1700)
    assert log.calls["consistency"] <= 13  # a bisection, not a scan


N = 37


def _edit(log: FakeLog) -> None:
    log.rows[13] = (13, entry(13, name="edited.pdf"))


def _delete(log: FakeLog) -> None:
    del log.rows[13]


def _swap(log: FakeLog) -> None:
    (a, ea), (b, eb) = log.rows[13], log.rows[20]
    log.rows[13], log.rows[20] = (a, eb), (b, ea)


def _insert(log: FakeLog) -> None:
    log.rows = [*log.rows[:13], (13, entry(13, name="forged.pdf")),
                *[(s + 1, e) for s, e in log.rows[13:]]]


def _non_canonical(log: FakeLog) -> None:
    log.rows[13] = (13, log.rows[13][1].replace(b'","', b'", "', 1))


def _wrong_org(log: FakeLog) -> None:
    log.rows[13] = (13, entry(13, org="1e" * 16))


def _truncate(log: FakeLog) -> None:
    log.rebuild([e for _, e in log.rows[:N - 5]])


def _rewrite_same_size(log: FakeLog) -> None:
    entries = [e for _, e in log.rows]
    entries[13] = entry(13, name="rewritten.pdf")
    log.rebuild(entries)


def _rewrite_longer(log: FakeLog) -> None:
    entries = [e for _, e in log.rows]
    entries[13] = entry(13, name="rewritten.pdf")
    log.rebuild(entries + [entry(N + i) for i in range(10)])


TAMPERS = {
    "edit": (_edit, "changed_entry", 13),
    "delete": (_delete, "missing_entry", 13),
    "reorder": (_swap, "wrong_index", 13),
    "insert": (_insert, "changed_entry", 13),
    "non-canonical": (_non_canonical, "non_canonical", 13),
    "other organization": (_wrong_org, "wrong_organization", 13),
    "truncate": (_truncate, "log_shrank", N - 5),
    "rewrite, same size": (_rewrite_same_size, "inconsistent", 13),
    "rewrite, longer": (_rewrite_longer, "inconsistent", 13),
}


@pytest.mark.parametrize("name", TAMPERS)
def test_tampering_is_found_at_the_first_bad_index(state: StateDir, name: str) -> None:
    tamper, kind, index = TAMPERS[name]
    log = FakeLog(N)
    assert run(log, state, full=True).ok
    before = state.checkpoint_file.read_text()
    tamper(log)
    res = run(log, state, full=True)
    assert res.problem is not None, name
    assert (res.problem.kind, res.problem.index) == (kind, index), res.problem
    assert res.exit_code == 1 and not res.saved
    assert state.checkpoint_file.read_text() == before  # the good checkpoint is kept
    if kind in ("log_shrank", "inconsistent"):
        # Found without --full too, from the saved leaves and consistency proofs.
        res = run(log, state)
        assert res.problem is not None and (res.problem.kind, res.problem.index) == (kind, index)


def test_rewritten_history_without_saved_leaves_is_still_caught(state: StateDir) -> None:
    log = FakeLog(N)
    assert run(log, state).ok  # not --full: no leaf hashes saved
    _rewrite_longer(log)
    res = run(log, state)
    assert res.problem is not None and res.problem.kind == "inconsistent"
    assert res.problem.index is None and "before index 37" in res.problem.detail
    assert res.consistency == "failed"


def test_a_lying_server_cannot_move_the_blame(state: StateDir) -> None:
    log = FakeLog(N)
    assert run(log, state, full=True).ok
    _edit(log)
    log.lie = True
    res = run(log, state, full=True)
    assert res.problem is not None and res.problem.index is not None
    assert res.problem.index <= 13  # it may only blame earlier entries, never pass


def test_keys(state: StateDir, tmp_path: Path) -> None:
    log = FakeLog(5)
    other = notes.verifier_key("seal.example", Ed25519PrivateKey.generate().public_key())
    res = run(log, state, key=other)
    assert res.problem is not None and res.problem.kind == "checkpoint_signature"
    assert res.key_source == "given" and not state.key_file.exists()

    res = run(log, state, key=log.verifier_key())
    assert res.ok and res.key_source == "given" and not res.warnings

    log.key = Ed25519PrivateKey.generate()  # the server now signs with another key
    res = run(log, state)
    assert res.key_source == "pinned"
    assert res.problem is not None and res.problem.kind == "checkpoint_signature"
    res = run(log, state, key=log.verifier_key())  # the administrator confirms the new key
    assert res.ok and any("differs from the key pinned" in w for w in res.warnings)
    assert state.load_key() == log.verifier_key()

    with pytest.raises(InvalidInput):
        run(log, state, key="not a key")


def test_another_logs_checkpoint_is_refused(tmp_path: Path) -> None:
    log = FakeLog(3, origin="seal.example/log/someone-else")
    res = run(log, StateDir(tmp_path / "s"))
    assert res.problem is not None and res.problem.kind == "wrong_log"
