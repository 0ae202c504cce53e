"""Section ``server``: signing through the HTTP APIs under load.

For each database (SQLite, PostgreSQL) and each number of uvicorn workers
(1, 2), the real server (``sealkeeper serve --demo --no-access-log``) runs as
a subprocess and the load generator (:mod:`bench.loadgen`, another process)
sends, over loopback keep-alive connections:

* native ``POST /api/v1/sign`` with one document per request, and with 100;
* CSC ``POST /csc/v2/signatures/signHash`` with one hash per request, and 100
  (measured only if the route answers);
* with 2 workers: one hash per request at a fixed rate of 1,000 requests/s
  (the single-signature target: latency at that rate, from the scheduled
  send time);
* once (SQLite, 2 workers): the native batch of 100 with the approval
  password in the request, and CSC ``credentials/authorize`` for one hash
  (both pay one argon2 check with the default parameters).

Every signing request uses a single-use approval (a SAD) for exactly its
hashes, issued in bulk in the database before the load (see
:func:`bench.servers.Db.issue_approvals`); each signature still costs what
the service does for it: the checks, the approval consumed, one quota unit,
the CMS or raw signature, one usage-log entry, one commit per request.

Signatures per second are compared with the raw ECDSA P-256 rate of the same
number of cores, measured in the same run (section ``limit``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import REPO, CpuMeter, Figure, Results, pids_named, stats
from bench.servers import (
    Db,
    Demo,
    PgCluster,
    Server,
    adopt_shared,
    b64,
    json_line,
    random_digests,
)

SECTION = "server"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256_OID = "1.2.840.10045.4.3.2"


@dataclass(frozen=True)
class Plan:
    warmup: float
    runs: int
    duration: float
    databases: tuple[str, ...]
    workers: tuple[int, ...]
    fixed_rate: float
    argon2_runs: bool


FULL = Plan(warmup=0.8, runs=3, duration=2.0, databases=("sqlite", "postgresql"),
            workers=(1, 2), fixed_rate=1000.0, argon2_runs=True)
QUICK = Plan(warmup=0.5, runs=3, duration=0.6, databases=("sqlite",), workers=(2,),
             fixed_rate=0.0, argon2_runs=False)


@dataclass(frozen=True)
class Load:
    """One kind of request sent by the load generator."""

    api: str            # "native" | "csc"
    hashes: int         # per request
    mode: str           # "closed" | "rate"
    connections: int
    rate: float = 0.0
    password: bool = False   # the approval password in the request (native only)
    authorize: bool = False  # CSC credentials/authorize instead of signHash

    @property
    def label(self) -> str:
        if self.authorize:
            return "CSC credentials/authorize, 1 hash (PIN, argon2 default)"
        what = "native /sign" if self.api == "native" else "CSC signHash"
        per = "1 hash/req" if self.hashes == 1 else f"{self.hashes} hashes/req"
        how = f"at {self.rate:,.0f} req/s" if self.mode == "rate" else \
            f"{self.connections} conns"
        pw = ", password per request (argon2)" if self.password else ""
        return f"{what}, {per}, {how}{pw}"


class ServerBench:
    def __init__(self, results: Results, plan: Plan, work: Path, p256_per_core: float,
                 p256_threads: float | None) -> None:
        self.results = results
        self.plan = plan
        self.work = work
        self.p256 = p256_per_core
        self.p256_threads = p256_threads
        # requests per second guessed for sizing the approvals; raised when exhausted
        self.guess: dict[tuple[str, int], float] = {}

    # -- limits --------------------------------------------------------------

    def limit_for(self, workers: int) -> tuple[float, str]:
        cores = os.cpu_count() or 1
        n = min(workers, cores)
        if n > 1 and self.p256_threads:
            return self.p256_threads, f"raw P-256 on {n} threads"
        return self.p256 * n, f"raw P-256, {n} core{'s' if n > 1 else ''}"

    # -- one server ------------------------------------------------------------

    def run_server(self, db_name: str, database_url: str | None, workers: int) -> None:
        data_dir = self.work / f"data-{db_name}"
        label = f"{db_name}, {workers} worker{'s' if workers > 1 else ''}"
        print(f"  -- {label}: starting the server", flush=True)
        server = Server(data_dir, workers=workers, database_url=database_url).start()
        db = Db(server.database())
        try:
            demo = server.demo()
            db.credit(demo.email)
            csc = _csc_present(server, demo)
            if not csc:
                self.results.skip(SECTION, f"CSC signHash ({label})",
                                  "POST /csc/v2/signatures/signHash is not served")
            _sanity(server, db, demo, csc)
            loads = [Load("native", 1, "closed", 16 if workers > 1 else 8),
                     Load("native", 100, "closed", 4 * workers)]
            if csc:
                loads += [Load("csc", 1, "closed", 16 if workers > 1 else 8),
                          Load("csc", 100, "closed", 4 * workers)]
            if self.plan.fixed_rate and (workers == 2 or len(self.plan.workers) == 1):
                loads += [Load("native", 1, "rate", 32, rate=self.plan.fixed_rate)]
                if csc:
                    loads += [Load("csc", 1, "rate", 32, rate=self.plan.fixed_rate)]
            if self.plan.argon2_runs and db_name == "sqlite" and workers == 2:
                loads += [Load("native", 100, "closed", 4, password=True)]
                if csc:
                    loads += [Load("csc", 1, "closed", 4, authorize=True)]
            for load in loads:
                self.measure(server, db, demo, load, db_name, workers)
            if workers == self.plan.workers[0]:
                self.in_process(server, db, demo, db_name)
        finally:
            db.close()
            if db_name == "sqlite" and workers == 2:
                adopt_shared(server)  # for the client and verify sections
            else:
                server.stop()

    def measure(self, server: Server, db: Db, demo: Demo, load: Load, db_name: str,
                workers: int) -> None:
        p = self.plan
        total = p.warmup + p.runs * p.duration
        key = (load.api + ("-auth" if load.authorize else ""), load.hashes)
        for attempt in range(2):
            if load.mode == "rate":
                n = int(load.rate * total * 1.05) + 10
            elif load.password or load.authorize:
                n = 0
            else:
                guess = self.guess.get(key, 3000.0 if load.hashes == 1 else 150.0)
                n = int(guess * total * 1.3 * (3 ** attempt)) + 50
            bodies = self.bodies(db, demo, load, n)
            out = self.run_load(server, load, bodies)
            if not out["exhausted"] or attempt == 1:
                break
            print(f"     (ran out of approvals after {out['sent']}; again with more)",
                  flush=True)
        runs = out["runs"]
        if load.mode == "closed" and runs and not (load.password or load.authorize):
            self.guess[key] = max(r["requests_per_s"] for r in runs) * 1.5
        name = f"{load.label} [{db_name}, {workers}w]"
        extra: dict[str, Any] = {
            "database": db_name, "workers": workers, "api": load.api,
            "hashes_per_request": load.hashes, "mode": load.mode,
            "connections": load.connections, "errors": out["errors"],
            "error_samples": out["error_samples"], "dropped": out.get("dropped", 0),
            "requests_ok": out["ok"], "cpu": out["cpu"],
            "per_run": runs,
        }
        for k in ("p50_ms", "p99_ms", "p90_ms", "max_ms"):
            extra[k] = stats([r[k] for r in runs])
        cpu = out["cpu"]
        if out["ok"]:
            # CPU the server processes (and PostgreSQL) spent per request, warm-up included:
            # less sensitive than throughput to other load on the machine
            per_req = (cpu["server_cores"] + cpu["postgres_cores"]) * cpu["wall_s"] / out["ok"]
            extra["server_cpu_ms_per_request"] = round(per_req * 1e3, 3)
            extra["server_cpu_us_per_signature"] = round(per_req * 1e6 / load.hashes, 1)
            # the same in raw P-256 signatures of this machine: 1.0 would be a server that
            # does nothing but sign (independent of how fast or busy the machine is)
            extra["server_cpu_in_raw_signatures"] = round(per_req / load.hashes * self.p256, 1)
        extra["load_average"] = [round(x, 2) for x in os.getloadavg()]
        if load.mode == "rate":
            extra["offered_rate"] = load.rate
        sig_runs = [r["requests_per_s"] * load.hashes for r in runs]
        limit, limit_name = self.limit_for(workers)
        fig = Figure(SECTION, name, "sig/s" if not load.authorize else "auth/s", sig_runs,
                     limit=limit if not load.authorize else None,
                     limit_name=limit_name if not load.authorize else None, extra=extra)
        self.judge(fig, load, workers)
        if out["errors"]:
            fig.note = f"errors: {out['errors']}; {out['error_samples'][:1]}"
        if not runs:
            fig.note = (fig.note + " no complete run: " + json.dumps(out)[:300]).strip()
        self.results.add(fig)

    def in_process(self, server: Server, db: Db, demo: Demo, db_name: str) -> None:
        """The signing service called directly (no HTTP, one thread), on the server's
        database while the server is idle: what the service itself costs."""
        from sealkeeper.config import Settings
        from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
        from sealkeeper.runtime import Runtime
        from sealkeeper.services import UnitOfWork
        from sealkeeper.signing.service import Document

        kw: dict[str, Any] = {"data_dir": server.data_dir, "public_base_url": server.url}
        if server.database_url:
            kw["database_url"] = server.database_url
        rt = Runtime.build(Settings(**kw))
        quick = self.plan is QUICK
        try:
            for api, hashes, calls in (("native", 1, 30 if quick else 150),
                                       ("native", 100, 3 if quick else 15),
                                       ("csc", 1, 30 if quick else 150),
                                       ("csc", 100, 3 if quick else 15)):
                digests = [random_digests(hashes) for _ in range(calls * self.plan.runs + 2)]
                tokens = db.issue_approvals(demo.email, demo.seal_id, digests)
                todo = list(zip(digests, tokens, strict=True))

                def call(ds: list[bytes], tok: str, api: str = api) -> None:
                    uow = UnitOfWork(rt)
                    try:
                        actor = uow.accounts.actor_from_token(demo.token)
                        hs = [Hashed(DigestAlgorithm.SHA256, d) for d in ds]
                        if api == "native":
                            uow.signing.sign_documents(
                                actor, demo.seal_id, [Document("doc.pdf", h) for h in hs],
                                approval=tok, api="native")
                        else:
                            uow.signing.sign_hashes(actor, demo.seal_id, hs, approval=tok,
                                                    api="csc-v2")
                        uow.commit()
                    finally:
                        uow.close()

                for ds, tok in todo[:2]:
                    call(ds, tok)  # warm: templates, key cache
                rates, cpu_us = [], []
                for r in range(self.plan.runs):
                    chunk = todo[2 + r * calls: 2 + (r + 1) * calls]
                    pg = CpuMeter({"postgres": lambda: pids_named("postgres")})
                    pg.start()
                    t0, c0 = time.perf_counter(), time.process_time()
                    for ds, tok in chunk:
                        call(ds, tok)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    used = pg.stop()
                    cpu += used["postgres_cores"] * used["wall_s"]  # the database's share
                    rates.append(calls * hashes / wall)
                    cpu_us.append(cpu / (calls * hashes) * 1e6)
                what = "native sign_documents" if api == "native" else "CSC sign_hashes"
                limit, limit_name = self.limit_for(1)
                cpu_med = stats(cpu_us)["median"]
                self.results.add(Figure(
                    SECTION, f"in-process {what}, {hashes} hash{'es' if hashes > 1 else ''}"
                             f"/call, no HTTP [{db_name}]", "sig/s", rates,
                    limit=limit, limit_name=limit_name,
                    note="the signing service called directly, one thread, commit per call",
                    extra={"server_cpu_us_per_signature": round(cpu_med, 1),
                           "server_cpu_in_raw_signatures": round(cpu_med * self.p256 / 1e6, 1),
                           "cpu_us_per_signature_runs": cpu_us, "database": db_name}))
        finally:
            rt.dispose()

    def judge(self, fig: Figure, load: Load, workers: int) -> None:
        if not fig.runs or load.password or load.authorize:
            return
        if load.api == "csc" and load.hashes == 100 and workers == 2:
            fig.target = "batch signHash >= 50 % of raw P-256 on the same cores"
            fig.met = (fig.ratio or 0) >= 0.5
        if load.mode == "rate" and workers == 2:
            p99 = fig.extra["p99_ms"]["median"]
            fig.target = (f"{load.rate:,.0f} single-signature req/s on 2 cores, "
                          "p99 < 20 ms")
            fig.met = (fig.median >= 0.98 * load.rate and p99 < 20
                       and not fig.extra["errors"] and not fig.extra["dropped"])

    # -- requests ----------------------------------------------------------------

    def bodies(self, db: Db, demo: Demo, load: Load, n: int) -> Path:
        path = Path(tempfile.mkstemp(prefix="bodies-", suffix=".jsonl", dir=self.work)[1])
        lines: list[bytes] = []
        if load.password or load.authorize:
            for _ in range(50):  # the same few bodies again and again
                ds = random_digests(load.hashes)
                if load.authorize:
                    lines.append(json_line({
                        "credentialID": demo.seal_id, "numSignatures": len(ds),
                        "hashes": [b64(d) for d in ds], "hashAlgorithmOID": SHA256_OID,
                        "authData": [{"id": "PIN", "value": demo.approval_password}]}))
                else:
                    lines.append(json_line(_native_body(demo, ds, password=True)))
        else:
            digests = [random_digests(load.hashes) for _ in range(n)]
            tokens = db.issue_approvals(demo.email, demo.seal_id, digests)
            for ds, tok in zip(digests, tokens, strict=True):
                if load.api == "native":
                    lines.append(json_line(_native_body(demo, ds, approval=tok)))
                else:
                    lines.append(json_line({
                        "credentialID": demo.seal_id, "SAD": tok,
                        "hashes": [b64(d) for d in ds], "hashAlgorithmOID": SHA256_OID,
                        "signAlgo": ECDSA_SHA256_OID}))
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path

    def run_load(self, server: Server, load: Load, bodies: Path) -> dict[str, Any]:
        p = self.plan
        path = "/api/v1/sign" if load.api == "native" else (
            "/csc/v2/credentials/authorize" if load.authorize else
            "/csc/v2/signatures/signHash")
        spec = {"host": "127.0.0.1", "port": server.port, "path": path,
                "headers": {"Authorization": f"Bearer {server.demo().token}"},
                "bodies": str(bodies), "connections": load.connections, "mode": load.mode,
                "rate": load.rate, "warmup": p.warmup, "runs": p.runs, "duration": p.duration,
                "reuse_bodies": load.password or load.authorize}
        spec_path = bodies.with_suffix(".spec.json")
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen", str(spec_path)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        groups: dict[str, Callable[[], list[int]]] = {
            "server": server.pids, "postgres": lambda: pids_named("postgres")}
        meter = CpuMeter(groups)
        meter.start()
        stdout, stderr = proc.communicate(timeout=p.warmup + p.runs * p.duration + 120)
        cpu = meter.stop()
        bodies.unlink(missing_ok=True)
        spec_path.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {stderr.decode()[-2000:]}")
        out: dict[str, Any] = json.loads(stdout)
        cpu["loadgen_cores"] = out["cpu_s"] / max(out["wall_s"], 1e-9)
        out["cpu"] = {k: round(v, 3) for k, v in cpu.items()}
        return out


def _native_body(demo: Demo, digests: list[bytes], *, approval: str | None = None,
                 password: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seal_id": demo.seal_id, "format": "cades",
        "documents": [{"file_name": f"doc-{i}.pdf", "digest": b64(d),
                       "digest_algorithm": "sha256"} for i, d in enumerate(digests)]}
    if password:
        body["approval_password"] = demo.approval_password
    else:
        body["approval"] = approval
    return body


def _csc_present(server: Server, demo: Demo) -> bool:
    try:
        r = httpx.post(server.url + "/csc/v2/signatures/signHash", json={},
                       headers={"Authorization": f"Bearer {demo.token}"}, timeout=10)
    except httpx.HTTPError:
        return False
    # a CSC error (400 with "error") means the route exists; 404 means it does not
    return r.status_code != 404 and r.status_code != 405


def _sanity(server: Server, db: Db, demo: Demo, csc: bool) -> None:
    """One request of each kind, whose signature is checked, before any load."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    from sealkeeper.client.verify import check_signature_for_digest
    from sealkeeper.crypto.digests import DigestAlgorithm, Hashed

    h = {"Authorization": f"Bearer {demo.token}"}
    chain = x509.load_pem_x509_certificates(
        httpx.get(f"{server.url}/api/v1/seals/{demo.seal_id}/chain.pem", headers=h,
                  timeout=30).content)
    ds = random_digests(2)
    tok = db.issue_approvals(demo.email, demo.seal_id, [ds[:1]])[0]
    r = httpx.post(server.url + "/api/v1/sign", json=_native_body(demo, ds[:1], approval=tok),
                   headers=h, timeout=30)
    r.raise_for_status()
    cms_der = __import__("base64").b64decode(r.json()["signatures"][0]["cms"])
    from cryptography.hazmat.primitives.serialization import Encoding

    check_signature_for_digest(cms_der, Hashed(DigestAlgorithm.SHA256, ds[0]), what="sanity",
                               signer_certificate=chain[0].public_bytes(Encoding.DER))
    if csc:
        tok = db.issue_approvals(demo.email, demo.seal_id, [ds[1:]])[0]
        r = httpx.post(server.url + "/csc/v2/signatures/signHash", headers=h, timeout=30,
                       json={"credentialID": demo.seal_id, "SAD": tok, "hashes": [b64(ds[1])],
                             "hashAlgorithmOID": SHA256_OID, "signAlgo": ECDSA_SHA256_OID})
        r.raise_for_status()
        sig = __import__("base64").b64decode(r.json()["signatures"][0])
        pub = chain[0].public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        pub.verify(sig, ds[1], ec.ECDSA(Prehashed(hashes.SHA256())))


def run(results: Results, quick: bool, work: Path, databases: tuple[str, ...] | None = None,
        workers: tuple[int, ...] | None = None) -> None:
    from dataclasses import replace

    from bench.limit import raw_p256_rate

    plan = QUICK if quick else FULL
    if databases:
        plan = replace(plan, databases=databases)
    if workers:
        plan = replace(plan, workers=workers)
    lim = results.find("limit", "ECDSA P-256 sign, 1 core")
    per_core = lim.median if lim else raw_p256_rate()
    cores = os.cpu_count() or 1
    thr = results.find("limit", f"ECDSA P-256 sign, {cores} threads")
    bench = ServerBench(results, plan, work, per_core, thr.median if thr else None)
    meta = results.sections.setdefault(SECTION, {})
    meta.update(
        server="sealkeeper.web.asgi:app_from_env under uvicorn, started as 'sealkeeper serve "
               "--demo --no-access-log' does (migrations, CA, demo seed), worker health-check "
               "timeout 60 s",
        argon2="server defaults (m=64 MiB, t=3, p=4)",
        approvals="single-use approvals for exactly the hashes of each request, inserted in "
                  "the database before the load (not timed)",
        load_generator="python -m bench.loadgen (asyncio, keep-alive HTTP/1.1 over loopback)",
        plan={"warmup_s": plan.warmup, "runs": plan.runs, "run_s": plan.duration,
              "databases": list(plan.databases), "workers": list(plan.workers),
              "fixed_rate": plan.fixed_rate},
        p256_per_core=per_core)
    for db_name in plan.databases:
        cluster: PgCluster | None = None
        url: str | None = None
        if db_name == "postgresql":
            cluster = PgCluster(work)
            try:
                cluster.start()
                url = cluster.create_database("sealkeeper_bench")
            except Exception as e:  # no PostgreSQL here: say so and go on
                results.skip(SECTION, "every PostgreSQL figure", f"no cluster: {e}")
                cluster.stop()
                continue
        try:
            for n in plan.workers:
                bench.run_server(db_name, url, n)
        finally:
            if cluster is not None:
                cluster.stop()
