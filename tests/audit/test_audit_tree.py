"""The per-organization Merkle tree in the database: appends, roots, proofs,
checkpoints, the append lock, and the append-only guard. Both databases."""

from __future__ import annotations

import itertools
import threading

import pytest
from audit_helpers import BASE_URL, FrozenClock, make_org, signature
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from sealkeeper.audit import AuditLog, LogEntry, LogHead, LogNode, LogSigner
from sealkeeper.audit.encoding import decode_entry
from sealkeeper.audit.models import LOG_ENTRIES
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.errors import Conflict, CryptoError, InvalidInput, NotFound
from sealkeeper.runtime import Runtime


def stored_leaves(session: Session, org_id: str) -> list[bytes]:
    """Leaf hashes recomputed from the stored entry bytes, in seq order, checking
    that the seqs are exactly 0..n-1."""
    rows = session.execute(select(LogEntry.seq, LogEntry.entry)
                           .where(LogEntry.organization_id == org_id)
                           .order_by(LogEntry.seq)).all()
    assert [r.seq for r in rows] == list(range(len(rows)))
    return [merkle.leaf_hash(bytes(r.entry)) for r in rows]


def head(session: Session, org_id: str) -> tuple[int, bytes]:
    row = session.execute(select(LogHead.size, LogHead.root)
                          .where(LogHead.organization_id == org_id)).one()
    return row.size, bytes(row.root)


def test_batches_build_the_rfc9162_tree(log: AuditLog, session: Session, org_id: str):
    sizes = []
    n = 0
    for batch in (1, 1, 3, 100, 7, 16, 1, 29):
        out = log.append(org_id, [signature(n + i) for i in range(batch)])
        assert [e.seq for e in out] == list(range(n, n + batch))
        n += batch
        sizes.append(n)
        leaves = stored_leaves(session, org_id)
        assert head(session, org_id) == (n, merkle.root_from_leaves(leaves))
    session.commit()
    leaves = stored_leaves(session, org_id)
    nodes = session.scalar(select(func.count()).select_from(LogNode)
                           .where(LogNode.organization_id == org_id))
    assert nodes == 2 * n - n.bit_count()
    # The returned rows are the stored rows.
    e = session.get(LogEntry, (org_id, 5))
    assert e is not None and e.leaf_hash == leaves[5]
    body = decode_entry(e.entry)
    assert body["seq"] == 5 and body["org"] == org_id and body["kind"] == "signature"


def test_proofs_from_stored_nodes_verify(log: AuditLog, session: Session, org_id: str,
                                         admin_of):
    actor = admin_of(org_id)
    for i in range(0, 70, 10):
        log.append(org_id, [signature(i + j) for j in range(10)])
    session.commit()
    leaves = stored_leaves(session, org_id)
    roots = {m: merkle.root_from_leaves(leaves[:m]) for m in range(len(leaves) + 1)}
    for size in (1, 2, 7, 8, 9, 31, 32, 33, 64, 70):
        for seq in sorted({0, size // 2, size - 1}):
            p = log.inclusion_proof(actor, org_id, seq=seq, tree_size=size)
            assert p.root == roots[size] and p.leaf_hash == leaves[seq]
            merkle.verify_inclusion(leaves[seq], seq, size, p.path, roots[size])
    by_hash = log.inclusion_proof(actor, org_id, leaf_hash=leaves[42])
    assert by_hash.seq == 42 and by_hash.tree_size == 70
    by_hash.verify()
    for old in (0, 1, 3, 8, 13, 32, 69, 70):
        for new in (old, 33, 64, 70):
            if new < old:
                continue
            c = log.consistency_proof(actor, org_id, old, new)
            assert (c.old_root, c.new_root) == (roots[old], roots[new])
            merkle.verify_consistency(old, new, roots[old], roots[new], c.path)
    with pytest.raises(InvalidInput):
        log.inclusion_proof(actor, org_id, seq=10, tree_size=10)
    with pytest.raises(InvalidInput):
        log.inclusion_proof(actor, org_id, seq=1, tree_size=71)
    with pytest.raises(InvalidInput):
        log.inclusion_proof(actor, org_id, seq=1, leaf_hash=leaves[1])
    with pytest.raises(NotFound):
        log.inclusion_proof(actor, org_id, seq=70)
    with pytest.raises(NotFound):
        log.inclusion_proof(actor, org_id, leaf_hash=b"\x00" * 32)
    with pytest.raises(InvalidInput):
        log.consistency_proof(actor, org_id, 5, 71)
    with pytest.raises(InvalidInput):
        log.consistency_proof(actor, org_id, 6, 5)


def test_checkpoint_is_signed_cached_and_moves_with_the_log(
        log: AuditLog, session: Session, org_id: str, signer: LogSigner, admin_of):
    actor = admin_of(org_id)
    origin = f"testserver/log/{org_id}"
    empty = notes.parse_and_verify(log.checkpoint(actor, org_id), origin, signer.public_key)
    assert (empty.origin, empty.size, empty.root_hash) == (origin, 0, merkle.EMPTY_ROOT)
    log.append(org_id, [signature(i) for i in range(5)])
    first = log.checkpoint(actor, org_id)
    assert log.checkpoint(actor, org_id) == first      # same size: the stored note is reused
    cp = notes.parse_and_verify(first, origin, signer.public_key)
    assert cp.size == 5 and cp.root_hash == merkle.root_from_leaves(stored_leaves(session,
                                                                                  org_id))
    log.append(org_id, [signature(5)])
    second = notes.parse_and_verify(log.checkpoint(actor, org_id), origin, signer.public_key)
    assert second.size == 6
    c = log.consistency_proof(actor, org_id, cp.size, second.size)
    merkle.verify_consistency(cp.size, second.size, cp.root_hash, second.root_hash, c.path)
    vkey = log.verifier_key(actor, org_id)
    name, key = notes.parse_verifier_key(vkey)
    assert name == origin
    notes.parse_and_verify(first, name, key)


def test_checkpoint_needs_a_log_key(session: Session, clock: FrozenClock, org_id: str,
                                    admin_of):
    from sealkeeper.errors import ConfigurationError

    log = AuditLog(session, clock, base_url=BASE_URL)
    log.append(org_id, [signature(0)])  # appending never needs the key
    with pytest.raises(ConfigurationError):
        log.checkpoint(admin_of(org_id), org_id)


def test_10000_appends_end_at_the_checkpoint_root(runtime: Runtime, clock: FrozenClock,
                                                  signer: LogSigner, admin_of):
    org = make_org(runtime, "Big Log")
    with runtime.session_factory() as s:
        log = AuditLog(s, clock, base_url=BASE_URL, signer=signer)
        for start in range(0, 10_000, 1000):
            log.append(org, [signature(start + i) for i in range(1000)])
            s.commit()
    with runtime.session_factory() as s:
        log = AuditLog(s, clock, base_url=BASE_URL, signer=signer)
        note = log.checkpoint(admin_of(org), org)
        s.commit()
        # Independently: every stored entry, hashed here, folded by the reference MTH.
        entries = [bytes(b) for b in s.scalars(select(LogEntry.entry)
                                               .where(LogEntry.organization_id == org)
                                               .order_by(LogEntry.seq))]
    assert len(entries) == 10_000
    assert [decode_entry(e)["seq"] for e in entries[::997]] == list(range(0, 10_000, 997))
    cp = notes.parse_and_verify(note, f"testserver/log/{org}", signer.public_key)
    assert cp.size == 10_000
    assert cp.root_hash == merkle.root_from_leaves([merkle.leaf_hash(e) for e in entries])


def test_a_bad_draft_writes_nothing(log: AuditLog, session: Session, org_id: str):
    log.append(org_id, [signature(0)])
    bad = signature(1, file_name="evil\x00.pdf")
    with pytest.raises(InvalidInput) as e:
        log.append(org_id, [signature(1), bad])
    assert e.value.field == "file_name"
    assert head(session, org_id)[0] == 1
    assert log.append(org_id, []) == []
    with pytest.raises(NotFound):
        log.append("0" * 32, [signature(0)])


def test_entries_and_nodes_cannot_be_changed_through_the_orm(log: AuditLog, session: Session,
                                                             org_id: str):
    log.append(org_id, [signature(i) for i in range(4)])
    session.commit()
    entry = session.get(LogEntry, (org_id, 1))
    assert entry is not None
    entry.entry = b"{}"
    with pytest.raises(Conflict):
        session.commit()
    session.rollback()
    session.delete(session.get(LogEntry, (org_id, 2)))
    with pytest.raises(Conflict):
        session.flush()
    session.rollback()
    node = session.get(LogNode, (org_id, 0, 0))
    assert node is not None
    node.hash = b"\x00" * 32
    with pytest.raises(Conflict):
        session.flush()
    session.rollback()
    with pytest.raises(Conflict):
        session.execute(update(LogEntry).where(LogEntry.organization_id == org_id)
                        .values(file_name="x"))
    with pytest.raises(Conflict):
        session.execute(delete(LogNode).where(LogNode.organization_id == org_id))
    session.rollback()
    with pytest.raises(Conflict):   # the legacy bulk API bypasses the unit of work
        session.bulk_update_mappings(LogEntry, [{"organization_id": org_id, "seq": 0,
                                                 "file_name": "x"}])
    session.rollback()
    with pytest.raises(Conflict), session.get_bind().connect() as conn:   # Core, no ORM
        conn.execute(update(LOG_ENTRIES).values(file_name="x"))
    session.rollback()
    assert len(stored_leaves(session, org_id)) == 4
    assert {e.file_name for e in session.scalars(select(LogEntry))} == {
        f"contract-{i}.pdf" for i in range(4)}


def test_tampered_nodes_stop_appends_and_checkpoints(log: AuditLog, session: Session,
                                                     org_id: str, admin_of):
    log.append(org_id, [signature(i) for i in range(6)])
    session.commit()
    # Raw SQL (not the ORM): the frontier of size 6 is (2, 0) and (1, 2).
    session.execute(text("UPDATE log_nodes SET hash = :h WHERE organization_id = :o "
                         "AND level = 1 AND idx = 2"), {"h": b"\x01" * 32, "o": org_id})
    with pytest.raises(CryptoError):
        log.append(org_id, [signature(6)])
    with pytest.raises(CryptoError):
        log.checkpoint(admin_of(org_id), org_id)


def test_concurrent_appends_serialize(runtime: Runtime, signer: LogSigner):
    """20 threads append batches to one organization at once: no gap, no duplicate."""
    org = make_org(runtime, "Busy Org")
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def worker(n: int) -> None:
        try:
            start.wait()
            for k in range(3):
                with runtime.session_factory() as s:
                    log = AuditLog(s, FrozenClock(), base_url=BASE_URL, signer=signer)
                    log.append(org, [signature(1000 * n + 10 * k + i, user=f"{n:032d}")
                                     for i in range(1 + (n + k) % 5)])
                    s.commit()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected = sum(1 + (n + k) % 5 for n in range(20) for k in range(3))
    with runtime.session_factory() as s:
        leaves = stored_leaves(s, org)          # asserts seqs are exactly 0..n-1
        assert len(leaves) == expected
        assert head(s, org) == (expected, merkle.root_from_leaves(leaves))
        # Each batch is contiguous: a batch's entries were appended under one lock.
        rows = s.execute(select(LogEntry.seq, LogEntry.user_id, LogEntry.approval_id)
                         .where(LogEntry.organization_id == org)
                         .order_by(LogEntry.seq)).all()
        runs = [(r.user_id, r.approval_id) for r in rows]
        changes = sum(1 for a, b in itertools.pairwise(runs) if a != b)
        assert changes <= 20 * 3 - 1


def test_entry_times_never_go_backwards(session: Session, org_id: str, signer: LogSigner):
    late = FrozenClock()
    late.advance(hours=1)
    AuditLog(session, late, base_url=BASE_URL, signer=signer).append(org_id, [signature(0)])
    early = FrozenClock()                       # another process, its clock an hour behind
    out = AuditLog(session, early, base_url=BASE_URL, signer=signer).append(
        org_id, [signature(1), signature(2)])
    first = session.get(LogEntry, (org_id, 0))
    assert first is not None
    assert out[0].created_at == out[1].created_at == first.created_at
    assert decode_entry(out[1].entry)["time"] == decode_entry(first.entry)["time"]
