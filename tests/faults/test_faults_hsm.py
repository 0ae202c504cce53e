"""The HSM (SoftHSM2) taken away while clients sign: the server answers 503
(never a 500, never a signature), consumes no quota, writes no usage-log entry
and records the refusals; when the token comes back, signing works again in
the same server process, and every signature a client received is in the log.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from fault_helpers import (
    Ledger,
    LogChecker,
    Received,
    Signer,
    UnexpectedAnswer,
    assert_no_secrets,
)
from sqlalchemy import create_engine

from server import Server
from softhsm import make_softhsm_token, softhsm_missing_reason

SKIP = softhsm_missing_reason()
pytestmark = [pytest.mark.hsm, pytest.mark.skipif(bool(SKIP), reason=str(SKIP))]


def test_hsm_taken_away_mid_traffic(tmp_path):
    token = make_softhsm_token(tmp_path)
    token_root = Path(token["conf_path"]).parent / "softhsm-tokens"
    token_dir = next(p for p in token_root.iterdir()
                     if (p / "token.object").exists()
                     and token["label"].encode() in (p / "token.object").read_bytes())
    data = tmp_path / "data"
    env = {"SEALKEEPER_KEYSTORE": "pkcs11", "SEALKEEPER_PKCS11_MODULE": token["module"],
           "SEALKEEPER_PKCS11_TOKEN_LABEL": token["label"],
           "SEALKEEPER_PKCS11_PIN": token["pin"], "SOFTHSM2_CONF": token["conf_path"]}
    with Server(data, args=("--demo",), env=env) as srv:
        pid = srv.proc.pid  # type: ignore[union-attr]
        demo = json.loads((data / "demo.json").read_text())
        alice = next(u for u in demo["users"] if u["email"] == "alice@example.com")
        admin = next(u for u in demo["users"] if u["email"] == "seals@example.com")
        seal = next(s["seal_id"] for s in demo["seals"] if s["type"] == "contract")
        org = demo["organization"]["id"]
        ledger = Ledger(create_engine(f"sqlite:///{data / 'sealkeeper.db'}"), org)
        received: list[Received] = []
        statuses: list[tuple[float, int]] = []
        problems: list[str] = []
        stop = threading.Event()

        def traffic(i: int) -> None:
            with httpx.Client(timeout=60) as http:
                signer = Signer(http, srv.url, alice["token"], seal, f"hsm{i}",
                                password=alice["approval_password"])
                while not stop.is_set():
                    try:
                        got = signer.native(2) if i % 2 else signer.csc(1)
                        received.extend(got)
                        statuses.append((time.monotonic(), 200))
                    except UnexpectedAnswer as e:
                        text = str(e)
                        code = 503 if ": 503 " in text else 0
                        statuses.append((time.monotonic(), code))
                        if code != 503:
                            problems.append(text)
                    time.sleep(0.02)

        threads = [threading.Thread(target=traffic, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            _wait(lambda: len(received) >= 6, "no signature before the outage")
            away = tmp_path / "token-away"
            shutil.move(token_dir, away)          # the HSM goes away mid-traffic
            gone_at = time.monotonic()
            _wait(lambda: any(s == 503 for t, s in statuses if t > gone_at),
                  "no 503 after the token vanished")
            time.sleep(0.3)                       # requests in flight finish
            with ledger.unchanged(min_events=3):
                during = len(statuses)
                time.sleep(1.5)
                assert len(statuses) - during >= 3, "too few requests during the outage"
                assert all(s == 503 for _, s in statuses[during:]), statuses[during:]
            shutil.move(away, token_dir)          # ...and comes back
            back_at = time.monotonic()
            _wait(lambda: any(s == 200 for t, s in statuses if t > back_at + 0.1),
                  "signing did not recover when the token returned")
        finally:
            stop.set()
            for t in threads:
                t.join()
            if not token_dir.exists() and (tmp_path / "token-away").exists():
                shutil.move(tmp_path / "token-away", token_dir)
        assert not problems, problems[:3]
        assert srv.proc is not None and srv.proc.pid == pid and srv.proc.poll() is None
        log = srv.log.read_text()
        assert "Traceback" not in log and " 500 " not in log, log[-3000:]
        assert_no_secrets(log, srv.log.name)
        with httpx.Client(timeout=60) as http:
            checker = LogChecker(http, org, admin["token"], srv.url)
            cp = checker.checkpoint()
            tree = checker.recompute(cp)
            for got in received:
                assert got.signature_sha256 in tree.by_signature
            for got in received[-5:]:
                checker.check_included(tree.by_signature[got.signature_sha256], cp,
                                       got.signature_sha256)
        state = ledger.state()
        assert state.signatures == len(received)


def _wait(cond, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(what)
