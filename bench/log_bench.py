"""Section ``log``: the usage log (a Merkle tree per organization, in the
database) at 10^4, 10^5 and 10^6 entries.

The log is the real :class:`sealkeeper.audit.AuditLog` on a fresh SQLite file
(WAL, synchronous=FULL, as the server runs it), filled through ``append``
in batches of 10,000 entries, one transaction each; the fill itself gives the
figure for large batches. At each size:

* append rate with one entry per transaction (commit each), and with 100
  entries per transaction (a signing batch);
* inclusion proof of a random entry, consistency proof from a random older
  size (each call in its own transaction, as a request would make it);
* checkpoint signing (a new size each time: one entry is appended, untimed,
  before each checkpoint; the note is signed with an ECDSA P-256 log key).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path
from typing import Any

from bench._common import Figure, Results, stats

SECTION = "log"
FILL_BATCH = 10_000


def _draft(i: int) -> Any:
    from sealkeeper.audit import EntryDraft
    from sealkeeper.crypto.digests import Hashed

    return EntryDraft.signature(
        seal_id="SEAL-BNCH-0000-0000-0001", seal_name="Contract seal", seal_type="contract",
        user_id="u" * 32, user_email="alice@example.com", file_name=f"contract-{i}.pdf",
        digest=Hashed.of(i.to_bytes(8, "big")), api="native", approval_id=f"a{i // 100:031d}",
        signature_sha256=os.urandom(32).hex(), form="cades")


class LogBench:
    def __init__(self, work: Path, database_url: str | None = None) -> None:
        from sealkeeper.audit import AuditLog, LogSigner
        from sealkeeper.authz import Actor
        from sealkeeper.clock import utcnow
        from sealkeeper.config import Settings
        from sealkeeper.crypto.keystore.base import KeyAlgorithm
        from sealkeeper.crypto.keystore.software import SoftwareKeyStore
        from sealkeeper.migrations import upgrade
        from sealkeeper.runtime import Runtime

        data = work / "log-db"
        data.mkdir(exist_ok=True)
        kw: dict[str, Any] = {"data_dir": data, "master_key": None}
        if database_url:
            kw["database_url"] = database_url
        self.rt = Runtime.build(Settings(**kw))
        upgrade(self.rt.engine)
        self.org = self._make_org()
        ks = SoftwareKeyStore(os.urandom(32))
        key = ks.generate(KeyAlgorithm.EC_P256, label="log")
        self.signer = LogSigner.from_key_store(ks, key.key_ref, KeyAlgorithm.EC_P256)
        self.session = self.rt.session_factory()
        self.log = AuditLog(self.session, utcnow, base_url="https://bench.example",
                            signer=self.signer)
        self.actor = Actor(user_id="a" * 32, email="admin@example.com",
                           organization_id=self.org, is_account_admin=True)
        self.size = 0

    def _make_org(self) -> str:
        from sealkeeper.orgs.letters import UploadedFile
        from sealkeeper.services import UnitOfWork

        letter = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                  b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n"
                  b"%%EOF\n")
        uow = UnitOfWork(self.rt)
        try:
            user = uow.accounts.signup("admin@bench.example", "bench-password-1", "Bench")
            org = uow.orgs.apply(uow.accounts.actor_for(user), legal_name="Bench Ltd",
                                 registration_number="B-1", domains=["bench.example"],
                                 eseal_admin_email="seals@bench.example",
                                 letter=UploadedFile("letter.pdf", "application/pdf", letter))
            uow.outbox.drain()
            uow.commit()
            return str(org.id)
        finally:
            uow.close()

    def close(self) -> None:
        self.session.close()
        self.rt.dispose()

    def append(self, n: int, per_tx: int) -> float:
        """Append ``n`` entries, ``per_tx`` per transaction; entries per second."""
        drafts = [_draft(self.size + i) for i in range(n)]
        start = time.perf_counter()
        for i in range(0, n, per_tx):
            self.log.append(self.org, drafts[i:i + per_tx])
            self.session.commit()
        elapsed = time.perf_counter() - start
        self.size += n
        return n / elapsed

    def fill_to(self, target: int, batch_rates: list[float]) -> None:
        while self.size < target:
            n = min(FILL_BATCH, target - self.size)
            rate = self.append(n, n)
            if n == FILL_BATCH:
                batch_rates.append(rate)

    def timed(self, fn: Any, count: int) -> list[float]:
        """Microseconds per call, each call in its own transaction."""
        out = []
        for _ in range(count):
            start = time.perf_counter()
            fn()
            self.session.rollback()
            out.append((time.perf_counter() - start) * 1e6)
        return out

    def proofs(self, runs: int, per_run: int) -> tuple[list[float], list[float]]:
        rng = random.Random(7)
        size = self.size
        inc, cons = [], []
        for _ in range(runs):
            us = self.timed(lambda: self.log.inclusion_proof(
                self.actor, self.org, seq=rng.randrange(size)), per_run)
            inc.append(stats(us)["median"])
            us = self.timed(lambda: self.log.consistency_proof(
                self.actor, self.org, rng.randrange(1, size)), per_run)
            cons.append(stats(us)["median"])
        # the proofs are right (checked once per size, untimed)
        p = self.log.inclusion_proof(self.actor, self.org, seq=size // 3)
        p.verify()
        c = self.log.consistency_proof(self.actor, self.org, size // 2)
        c.verify()
        self.session.rollback()
        return inc, cons

    def checkpoints(self, runs: int, per_run: int) -> list[float]:
        out = []
        for _ in range(runs):
            us = []
            for _ in range(per_run):
                self.append(1, 1)
                start = time.perf_counter()
                self.log.publish_checkpoint(self.org)
                self.session.commit()
                us.append((time.perf_counter() - start) * 1e6)
            out.append(stats(us)["median"])
        return out


def run(results: Results, quick: bool, work: Path) -> None:
    sizes = [10_000] if quick else [10_000, 100_000, 1_000_000]
    runs = 3 if quick else 5
    lb = LogBench(work)
    try:
        fill: list[float] = []
        previous = 0
        for size in sizes:
            label = f"10^{len(str(size)) - 1}"
            fill.clear()
            t0 = time.perf_counter()
            lb.fill_to(size, fill)
            fill_s = time.perf_counter() - t0
            if fill:
                fig = results.add(Figure(
                    SECTION, f"append, {FILL_BATCH:,} per transaction, {previous:,} -> "
                             f"{size:,}", "entries/s", list(fill),
                    target=">= 10,000 entries/s (batched)",
                    note=f"filling took {fill_s:.1f} s"))
                fig.met = fig.median >= 10_000
            previous = size
            fig = results.add(Figure(
                SECTION, f"append, 100 per transaction, at {label}", "entries/s",
                [lb.append(1000 if not quick else 500, 100) for _ in range(runs)],
                target=">= 10,000 entries/s (batched)"))
            fig.met = fig.median >= 10_000
            results.add(Figure(
                SECTION, f"append, 1 per transaction, at {label}", "entries/s",
                [lb.append(100 if not quick else 50, 1) for _ in range(runs)],
                note="one commit (fsync) per entry"))
            inc, cons = lb.proofs(runs, 100 if not quick else 40)
            f = results.add(Figure(SECTION, f"inclusion proof at {label}", "ms",
                                   [u / 1000 for u in inc], target="< 1 ms"
                                   if size >= 1_000_000 else None,
                                   note="random entry, its own transaction"))
            if size >= 1_000_000:
                f.met = f.median < 1
            f = results.add(Figure(SECTION, f"consistency proof at {label}", "ms",
                                   [u / 1000 for u in cons], target="< 1 ms"
                                   if size >= 1_000_000 else None,
                                   note="from a random older size to the current one"))
            if size >= 1_000_000:
                f.met = f.median < 1
            results.add(Figure(SECTION, f"checkpoint signing at {label}", "ms",
                               [u / 1000 for u in lb.checkpoints(runs, 10 if not quick
                                                                 else 5)],
                               note="read head, recompute root from stored nodes, sign "
                                    "(P-256), store"))
        results.sections.setdefault(SECTION, {})["database"] = str(
            lb.rt.engine.url.render_as_string(hide_password=True))
        results.sections[SECTION]["final_size"] = lb.size
        results.sections[SECTION]["date"] = dt.datetime.now(dt.UTC).isoformat()
    finally:
        lb.close()
