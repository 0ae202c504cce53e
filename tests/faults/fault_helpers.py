"""Shared tools of the fault suite: a world on PostgreSQL for server
subprocesses, a fast crash-restart launcher, the client-side log checker
(signed checkpoints, inclusion and consistency proofs, a full recomputation
of the tree) and a ledger of what an attack may not change.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from asn1crypto import cms
from sqlalchemy import Engine, func, select, update

from factories import World, build_world
from sealkeeper.audit.encoding import decode_entry
from sealkeeper.audit.models import LogEntry, SecurityEvent
from sealkeeper.config import Settings
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.orgs.models import Organization
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork
from server import free_port

APPROVAL_PASSWORD = "1234"
FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
SERVER_ENV = {"SEALKEEPER_ARGON2_MEMORY_KIB": "1024", "SEALKEEPER_ARGON2_TIME_COST": "1",
              "SEALKEEPER_ARGON2_PARALLELISM": "1"}


def soak() -> bool:
    """Long variants run with SEALKEEPER_SOAK=1 (``make soak``)."""
    return os.environ.get("SEALKEEPER_SOAK") == "1"


def b64_digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def cms_signature_sha256(cms_b64: str) -> str:
    """SHA-256 (hex) of the signature value inside a detached CMS: what the log
    entry records as ``signature_sha256``."""
    info = cms.ContentInfo.load(base64.b64decode(cms_b64))
    raw = info["content"]["signer_infos"][0]["signature"].native
    return hashlib.sha256(raw).hexdigest()


def raw_signature_sha256(sig_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(sig_b64)).hexdigest()


# -- a world for server processes ------------------------------------------------


@dataclass
class PgWorld:
    engine: Engine
    url: str
    data_dir: Path
    runtime: Runtime
    world: World


def pg_world(databases: Any, tmp_path: Path, *, quota: int | None = None) -> PgWorld:
    """The standard world on this process's PostgreSQL database, in a data
    directory (master key included) that server subprocesses share; the
    employee of A has the approval password "1234"."""
    engine = databases.get("postgresql")
    url = engine.url.render_as_string(hide_password=False)
    data = tmp_path / "data"
    settings = Settings(data_dir=data, public_base_url="http://127.0.0.1", **FAST)  # type: ignore[arg-type]
    rt = Runtime.build(settings, engine=engine)
    world = build_world(rt)
    uow = UnitOfWork(rt)
    try:
        emp = uow.accounts.find_by_email(world.a.emails["employee"])
        assert emp is not None
        uow.approvals.set_password(uow.accounts.actor_for(emp), APPROVAL_PASSWORD)
        if quota is not None:
            uow.session.get(Organization, world.a.id).quota_balance = quota  # type: ignore[union-attr]
        uow.commit()
    finally:
        uow.close()
    return PgWorld(engine, url, data, rt, world)


# -- a fast crash/restart launcher -----------------------------------------------


class Zygote:
    """Starts server processes by forking a pre-imported launcher (see zygote.py)."""

    def __init__(self, data_dir: Path, env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        full_env = {**os.environ, "SEALKEEPER_DATA_DIR": str(data_dir), **SERVER_ENV, **env}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))], env=full_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            start_new_session=True)
        assert self._read() == "ready"
        self.pid: int | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"zygote-server-{self.port}.log"

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the zygote died")
        return line.strip()

    def _send(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def start(self, timeout: float = 60) -> None:
        assert self.pid is None
        self.pid = int(self._send(f"spawn {self.port} {self.log}"))
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as c:
            while time.monotonic() < deadline:
                try:
                    if c.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        if self.pid is None:
            return
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._send("reap")
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        self.pid = None

    def close(self) -> None:
        self.kill()
        with suppress(BrokenPipeError, RuntimeError, OSError):
            self._send("quit")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# -- the client-side log checker ----------------------------------------------------


class Http(Protocol):
    def get(self, url: str, **kw: Any) -> Any: ...


@dataclass(frozen=True)
class Tree:
    size: int
    root: bytes
    by_signature: dict[str, int]   # signature_sha256 -> seq
    kinds: dict[int, str]          # seq -> kind


class LogChecker:
    """Checks an organization's log the way an outside verifier would, over the
    API, with the crypto of :mod:`sealkeeper.crypto` only."""

    def __init__(self, http: Http, org_id: str, admin_token: str, base: str = "") -> None:
        self.http = http
        self.org = org_id
        self.base = base
        self.headers = {"Authorization": f"Bearer {admin_token}"}
        r = self._get("/log/verifier-key")
        self.key_name, self.public_key = notes.parse_verifier_key(r.text.strip())

    def _get(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"{self.base}/api/v1/organizations/{self.org}{path}",
                          headers=self.headers, params=params or None)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        return r

    def checkpoint(self) -> notes.Checkpoint:
        """The current signed checkpoint, its signature verified."""
        return notes.parse_and_verify(self._get("/log/checkpoint").text, self.key_name,
                                      self.public_key)

    def check_consistent(self, old: notes.Checkpoint, new: notes.Checkpoint) -> None:
        assert new.size >= old.size, (old.size, new.size)
        p = self._get("/log/proof/consistency", old=old.size, new=new.size).json()
        merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash,
                                  [bytes.fromhex(h) for h in p["path"]])

    def check_included(self, seq: int, cp: notes.Checkpoint,
                       signature_sha256: str | None = None) -> None:
        """Entry ``seq`` is in the tree of checkpoint ``cp`` (and records that signature)."""
        p = self._get("/log/proof/inclusion", seq=seq, tree_size=cp.size).json()
        entry = base64.b64decode(p["entry"])
        leaf = merkle.leaf_hash(entry)
        assert leaf.hex() == p["leaf_hash"]
        merkle.verify_inclusion(leaf, seq, cp.size, [bytes.fromhex(h) for h in p["path"]],
                                cp.root_hash)
        body = decode_entry(entry)
        assert body["seq"] == seq and body["org"] == self.org
        if signature_sha256 is not None:
            assert body["kind"] == "signature", body
            assert body["signature_sha256"] == signature_sha256, (seq, body)

    def recompute(self, cp: notes.Checkpoint) -> Tree:
        """Fetch every entry up to the checkpoint, check seqs are 0..size-1 with no
        gap or duplicate, and recompute the root from the leaves."""
        leaves: list[bytes] = []
        by_sig: dict[str, int] = {}
        kinds: dict[int, str] = {}
        start = 0
        while start < cp.size:
            out = self._get("/log/entries", start=start, end=min(cp.size, start + 1000)).json()
            for item in out["entries"]:
                assert item["seq"] == len(leaves), f"gap or duplicate at {item['seq']}"
                data = base64.b64decode(item["entry"])
                body = decode_entry(data)
                assert body["seq"] == item["seq"]
                kinds[item["seq"]] = str(body["kind"])
                if body["kind"] == "signature":
                    sig = str(body["signature_sha256"])
                    assert sig not in by_sig, f"signature logged twice: {sig}"
                    by_sig[sig] = item["seq"]
                leaves.append(merkle.leaf_hash(data))
            assert out["entries"], "the log returned no entries below its size"
            start = len(leaves)
        assert len(leaves) == cp.size
        assert merkle.root_from_leaves(leaves) == cp.root_hash, "recomputed root differs"
        return Tree(cp.size, cp.root_hash, by_sig, kinds)


# -- what an attack may not change -----------------------------------------------


@dataclass(frozen=True)
class LedgerState:
    balance: int
    log_size: int
    signatures: int
    security_events: int


class Ledger:
    """Quota balance, usage-log size and signature count of one organization, and
    the number of security events (of every organization, since a refusal is
    recorded for the caller's organization)."""

    def __init__(self, engine: Engine, org_id: str) -> None:
        self.engine = engine
        self.org = org_id

    def state(self) -> LedgerState:
        with self.engine.connect() as c:
            balance = c.scalar(select(Organization.quota_balance)
                               .where(Organization.id == self.org))
            size = c.scalar(select(func.count()).select_from(LogEntry)
                            .where(LogEntry.organization_id == self.org))
            sigs = c.scalar(select(func.count()).select_from(LogEntry)
                            .where(LogEntry.organization_id == self.org,
                                   LogEntry.kind == "signature"))
            events = c.scalar(select(func.count()).select_from(SecurityEvent))
        return LedgerState(int(balance or 0), int(size or 0), int(sigs or 0), int(events or 0))

    def set_balance(self, units: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(Organization).where(Organization.id == self.org)
                      .values(quota_balance=units))

    @contextmanager
    def unchanged(self, *, min_events: int = 1) -> Iterator[LedgerState]:
        """Nothing signed, no quota taken, and at least ``min_events`` new
        security events while the block runs."""
        before = self.state()
        yield before
        after = self.state()
        assert after.balance == before.balance, f"quota consumed: {before} -> {after}"
        assert after.signatures == before.signatures, f"signature logged: {before} -> {after}"
        assert after.log_size == before.log_size, f"log changed: {before} -> {after}"
        assert after.security_events >= before.security_events + min_events, \
            f"no security event recorded: {before} -> {after}"


TOKEN_RE = re.compile(r"sk[ta]_[A-Za-z0-9_-]{20,}")


def assert_no_secrets(text: str, where: str) -> None:
    """No API token or approval, no account password of the test world, no private
    key in ``text`` (a log)."""
    from factories import PASSWORD

    m = TOKEN_RE.search(text)
    assert m is None, f"{where} shows a token: {text[max(0, m.start() - 80):m.end()]}"
    assert PASSWORD not in text, f"{where} shows an account password"
    assert "PRIVATE KEY" not in text, f"{where} shows a private key"


def assert_refused(r: Any, *codes: int) -> None:
    """A clear refusal: a 4xx (one of ``codes`` when given) with an error body and
    no signature in it."""
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    if codes:
        assert r.status_code in codes, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert "signatures" not in body and "SAD" not in body, body
    assert isinstance(body.get("error"), str), body


# -- signing traffic ------------------------------------------------------------

SHA256_OID = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"


@dataclass
class Received:
    """A signature the client got back: where the server said it logged it."""

    signature_sha256: str
    log_seq: int | None   # None for CSC signHash (the API does not return it)
    api: str


class Signer:
    """One client thread's signing calls (native /sign and CSC v2 authorize +
    signHash), each with fresh, unique document digests."""

    def __init__(self, http: httpx.Client, base: str | list[str], token: str, seal_id: str,
                 name: str, password: str = APPROVAL_PASSWORD) -> None:
        """``base``: one server, or several (each call goes to the next one, and a CSC
        signHash to another server than its authorize)."""
        self.http = http
        self.bases = [base] if isinstance(base, str) else list(base)
        self._turn = 0
        self.password = password
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seal = seal_id
        self.name = name
        self.n = 0

    @property
    def base(self) -> str:
        self._turn += 1
        return self.bases[self._turn % len(self.bases)]

    def _digests(self, count: int) -> list[str]:
        out = []
        for _ in range(count):
            self.n += 1
            out.append(b64_digest(f"{self.name}/{self.n}/{time.monotonic_ns()}".encode()))
        return out

    def native(self, count: int) -> list[Received]:
        docs = [{"file_name": f"{self.name}-{i}.pdf", "digest": d}
                for i, d in enumerate(self._digests(count))]
        r = self.http.post(f"{self.base}/api/v1/sign", headers=self.headers, json={
            "seal_id": self.seal, "approval_password": self.password, "documents": docs})
        _expect_ok(r)
        return [Received(cms_signature_sha256(s["cms"]), s["log_seq"], "native")
                for s in r.json()["signatures"]]

    def csc(self, count: int) -> list[Received]:
        hashes = self._digests(count)
        r = self.http.post(f"{self.base}/csc/v2/credentials/authorize", headers=self.headers,
                           json={"credentialID": self.seal, "numSignatures": count,
                                 "hashes": hashes, "hashAlgorithmOID": SHA256_OID,
                                 "authData": [{"id": "PIN", "value": self.password}]})
        _expect_ok(r)
        r = self.http.post(f"{self.base}/csc/v2/signatures/signHash", headers=self.headers,
                           json={"credentialID": self.seal, "SAD": r.json()["SAD"],
                                 "hashes": hashes, "hashAlgorithmOID": SHA256_OID,
                                 "signAlgo": ECDSA_SHA256})
        _expect_ok(r)
        return [Received(raw_signature_sha256(s), None, "csc-v2")
                for s in r.json()["signatures"]]


class UnexpectedAnswer(AssertionError):
    pass


class QuotaRefused(Exception):
    """402: the organization's quota does not cover the request."""


def _expect_ok(r: httpx.Response) -> None:
    # The CSC API has no quota error of its own: it answers 403 access_denied.
    if r.status_code == 402 or (r.status_code == 403 and "/csc/" in r.request.url.path
                                and "quota" in r.text):
        raise QuotaRefused(r.text)
    if r.status_code not in (200, 201):
        raise UnexpectedAnswer(f"{r.request.url.path}: {r.status_code} {r.text[:300]}")
