"""Crash safety: the server is killed with SIGKILL at random moments while
several clients sign (native batches and CSC authorize + signHash) on
PostgreSQL. After every restart, checked from the outside:

- every signature a client received has its usage-log entry (found by the
  ``signature_sha256`` the entry records, at the ``log_seq`` the API returned),
  and its inclusion proof verifies against the signed checkpoint;
- the new checkpoint is consistent with the one before the crash (consistency
  proof), the log's seqs run 0..size-1 with no gap or duplicate, and the root
  recomputed from every entry equals the checkpoint's;
- the quota used equals the number of signature entries.

20 kills in CI; 200 with ``make soak`` (SEALKEEPER_SOAK=1). The last restart
is the real ``sealkeeper serve`` (migrations and CA check on the crashed
database); the others fork a pre-imported launcher (tests/faults/zygote.py) so
that a kill-restart cycle costs well under a second of start-up.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from fault_helpers import (
    Ledger,
    LogChecker,
    Received,
    Signer,
    UnexpectedAnswer,
    Zygote,
    assert_no_secrets,
    pg_world,
    soak,
)

from server import Server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KILLS = 200 if soak() else 20
CLIENTS = 4


def _traffic(base: str, token: str, seal: str, cycle: int, rng_seed: int,
             stop: threading.Event, received: list[Received], problems: list[str]) -> None:
    rng = random.Random(rng_seed)
    with httpx.Client(timeout=60) as http:
        signer = Signer(http, base, token, seal, f"c{cycle}t{rng_seed}")
        while not stop.is_set():
            try:
                if rng.random() < 0.25:
                    got = signer.csc(rng.randint(1, 3))
                else:
                    got = signer.native(rng.randint(1, 5))
            except httpx.TransportError:
                return  # the server is gone
            except UnexpectedAnswer as e:
                if stop.is_set():  # a request cut by the kill may fail half-way
                    return
                problems.append(str(e))
                return
            received.extend(got)


def _run_cycle(base: str, token: str, seal: str, cycle: int, kill: Callable[[], None],
               rng: random.Random) -> tuple[list[Received], list[str]]:
    stop = threading.Event()
    received: list[Received] = []
    problems: list[str] = []
    threads = [threading.Thread(target=_traffic, args=(base, token, seal, cycle,
                                                       cycle * 100 + i, stop, received,
                                                       problems))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    # A random moment once signatures flow (so that requests are in flight).
    deadline = time.monotonic() + 30
    while not received and not problems and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.6))
    stop.set()
    kill()
    for t in threads:
        t.join(timeout=120)
    return received, problems


def test_sigkill_at_random_moments_loses_no_logged_signature(databases, tmp_path):
    seed = int(os.environ.get("SEALKEEPER_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    pw = pg_world(databases, tmp_path, quota=10_000_000)
    a = pw.world.a
    ledger = Ledger(pw.engine, a.id)
    start_balance = ledger.state().balance
    env = {"SEALKEEPER_DATABASE_URL": pw.url}
    zygote = Zygote(pw.data_dir, env, tmp_path)
    received: list[Received] = []
    last_cp = None
    kills = 0
    try:
        base = zygote.url

        def verify_after_restart() -> None:
            nonlocal last_cp
            with httpx.Client(timeout=60) as http:
                checker = LogChecker(http, a.id, a.tokens["eseal_admin"], base)
                cp = checker.checkpoint()
                if last_cp is not None:
                    checker.check_consistent(last_cp, cp)
                tree = checker.recompute(cp)
                for got in received:
                    seq = tree.by_signature.get(got.signature_sha256)
                    assert seq is not None, (f"seed {seed}: a received {got.api} signature "
                                             "has no log entry")
                    if got.log_seq is not None:
                        assert seq == got.log_seq, f"seed {seed}: logged at {seq}"
                # The recomputed root already proves every entry is in the signed
                # tree; the proof API is checked on this cycle's newest signatures
                # and, at the end, on a sample of all.
                fresh = received[-5:]
                if kills >= KILLS:
                    fresh = rng.sample(received, min(40, len(received)))
                for got in fresh:
                    checker.check_included(tree.by_signature[got.signature_sha256], cp,
                                           got.signature_sha256)
                state = ledger.state()
                assert state.signatures == len(tree.by_signature)
                assert start_balance - state.balance == state.signatures, \
                    f"seed {seed}: quota used {start_balance - state.balance}, " \
                    f"{state.signatures} signature entries"
                last_cp = cp

        while kills < KILLS:
            zygote.start()
            if kills:
                verify_after_restart()
            got, problems = _run_cycle(base, a.tokens["employee"], a.seals["contract"],
                                       kills, zygote.kill, rng)
            kills += 1
            received.extend(got)
            assert not problems, f"seed {seed}: {problems[:3]}"
        # The last restart is the real command line, then the full check.
        with Server(pw.data_dir, env=env, port=zygote.port) as srv:
            verify_after_restart()
        for log in (zygote.log, srv.log):
            assert_no_secrets(log.read_text(), log.name)
        assert len(received) > KILLS, f"seed {seed}: too little traffic ({len(received)})"
        assert {g.api for g in received} == {"native", "csc-v2"}
    finally:
        zygote.close()
        databases.clean("postgresql")
