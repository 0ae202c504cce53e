"""Two server processes on one PostgreSQL database, signing concurrently for one
organization (native batches and CSC, a CSC approval given by one process and
used at the other), with less quota than the clients ask for.

Checked from the outside: no 5xx; exactly the quota is spent, one signature
entry per unit; the log's seqs run 0..size-1 with no gap or duplicate and the
recomputed root equals the signed checkpoint; both processes publish the same
tree (consistent checkpoints); every signature a client received has its entry
and a verified inclusion proof; no signature entry exists that no client
received (nothing crashed here, so the two sets are equal).
"""

from __future__ import annotations

import random
import threading

import httpx
import pytest
from fault_helpers import (
    Ledger,
    LogChecker,
    QuotaRefused,
    Received,
    Signer,
    UnexpectedAnswer,
    assert_no_secrets,
    pg_world,
    soak,
)

from server import Server, free_port

pytestmark = [pytest.mark.postgres]

QUOTA = 120
CLIENTS = 6
CALLS = 40 if soak() else 12   # per client; each asks for 1-4 signatures


def test_two_processes_one_database_exact_log_and_quota(databases, tmp_path):
    pw = pg_world(databases, tmp_path, quota=QUOTA)
    a = pw.world.a
    ledger = Ledger(pw.engine, a.id)
    before = ledger.state()
    # One public URL for both, as behind a load balancer: one checkpoint origin.
    public = f"http://127.0.0.1:{free_port()}"
    env = {"SEALKEEPER_DATABASE_URL": pw.url, "SEALKEEPER_PUBLIC_BASE_URL": public}
    servers = [Server(pw.data_dir, env=env) for _ in range(2)]
    starters = [threading.Thread(target=s.start) for s in servers]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    try:
        for s in servers:
            assert s.proc is not None and s.proc.poll() is None, s.log.read_text()[-2000:]
        urls = [s.url for s in servers]
        received: list[Received] = []
        refused: list[int] = []
        problems: list[str] = []
        barrier = threading.Barrier(CLIENTS)

        def client(i: int) -> None:
            rng = random.Random(i)
            with httpx.Client(timeout=120) as http:
                signer = Signer(http, urls if i % 2 else urls[::-1], a.tokens["employee"],
                                a.seals["contract"], f"client{i}")
                barrier.wait()
                for _ in range(CALLS):
                    n = rng.randint(1, 4)
                    try:
                        got = signer.csc(n) if rng.random() < 0.3 else signer.native(n)
                    except QuotaRefused:
                        refused.append(n)
                        continue
                    except (UnexpectedAnswer, httpx.HTTPError) as e:
                        problems.append(f"{type(e).__name__}: {e}")
                        return
                    received.extend(got)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not problems, problems[:3]
        assert refused, "the clients should have asked for more than the quota"

        after = ledger.state()
        assert after.balance >= 0
        # Exact quota: every unit spent is one signature entry and one received
        # signature; a refused batch took nothing (all or nothing).
        assert before.balance - after.balance == after.signatures - before.signatures \
            == len(received)
        # The balance only falls, so every refused batch was larger than what is left.
        assert min(refused) > after.balance, (refused, after.balance)

        with httpx.Client(timeout=60) as http:
            checkers = [LogChecker(http, a.id, a.tokens["eseal_admin"], url) for url in urls]
            cp1 = checkers[0].checkpoint()
            cp2 = checkers[1].checkpoint()
            assert (cp1.size, cp1.root_hash) == (cp2.size, cp2.root_hash)
            assert cp1.origin == cp2.origin
            tree = checkers[1].recompute(cp1)
            sigs = {r.signature_sha256 for r in received}
            assert len(sigs) == len(received), "a signature was returned twice"
            assert set(tree.by_signature) == sigs
            for k, got in enumerate(received):
                seq = tree.by_signature[got.signature_sha256]
                if got.log_seq is not None:
                    assert seq == got.log_seq
                checkers[k % 2].check_included(seq, cp1, got.signature_sha256)
            # The log before the traffic is a prefix of the log after it.
            checkers[0].check_consistent(
                type(cp1)(cp1.origin, before.log_size, tree_root(checkers[0], before.log_size)),
                cp1)
        for s in servers:
            text = s.log.read_text()
            assert " 500 " not in text and "Traceback" not in text, text[-3000:]
            assert_no_secrets(text, s.log.name)
    finally:
        for s in servers:
            s.stop()
        databases.clean("postgresql")


def tree_root(checker: LogChecker, size: int) -> bytes:
    """The root of the first ``size`` entries, recomputed from the raw entries."""
    import base64

    from sealkeeper.crypto import merkle

    http = checker.http
    r = http.get(f"{checker.base}/api/v1/organizations/{checker.org}/log/entries",
                 headers=checker.headers, params={"start": 0, "end": size})
    leaves = [merkle.leaf_hash(base64.b64decode(e["entry"])) for e in r.json()["entries"]]
    assert len(leaves) == size
    return merkle.root_from_leaves(leaves)
