"""Servers for the benchmark: ``sealkeeper serve --demo`` as a subprocess on
SQLite or on a throw-away PostgreSQL cluster (``scripts/pg-cluster.sh``), and
the database set-up done from the benchmark process before a load run:
quota credited to the demo organization, and single-use approvals issued in
bulk (see :func:`issue_approvals`).

The servers keep the default argon2 parameters, so that a request carrying
the approval password costs what it costs in production.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx

from bench._common import REPO

PG_PORT_BASE = 55700


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """A PostgreSQL cluster owned by the postgres user, for the benchmark only."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "pg"
        self.port = free_port()
        self.url = ""

    def start(self) -> str:
        script = REPO / "scripts" / "pg-cluster.sh"
        out = subprocess.run(["bash", str(script), "start", str(self.dir), str(self.port)],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"pg-cluster.sh failed: {out.stderr[-2000:]}")
        self.url = out.stdout.strip().splitlines()[-1]
        return self.url

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        eng = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        script = REPO / "scripts" / "pg-cluster.sh"
        subprocess.run(["bash", str(script), "stop", str(self.dir)], capture_output=True,
                       timeout=120, check=False)


@dataclass
class Demo:
    token: str
    approval_password: str
    seal_id: str
    email: str


#: What ``sealkeeper serve --demo`` does before it starts uvicorn (cli/app.py).
SEED = """
import logging, os
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from sealkeeper import demo
from sealkeeper.cli.ca import ensure_ca
from sealkeeper.cli.context import open_runtime
from sealkeeper.migrations import upgrade
rt = open_runtime()
upgrade(rt.engine)
ensure_ca(rt)
demo.seed(rt)
rt.dispose()
"""


class Server:
    """The server, as ``sealkeeper serve --demo`` runs it, in its own process group."""

    def __init__(self, data_dir: Path, *, workers: int, database_url: str | None,
                 access_log: bool = False) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.database_url = database_url
        # The same port every time a data directory is served: the CA's certificates
        # carry the public base URL (CRL, OCSP and CA-issuer links) of the first start.
        port_file = data_dir.parent / f"{data_dir.name}.port"
        if port_file.exists():
            self.port = int(port_file.read_text())
        else:
            self.port = free_port()
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            port_file.write_text(str(self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = access_log
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{data_dir.name}-{self.port}.log"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALKEEPER_")}
        env.update(SEALKEEPER_DATA_DIR=str(self.data_dir), SEALKEEPER_PUBLIC_BASE_URL=self.url)
        if self.database_url:
            env["SEALKEEPER_DATABASE_URL"] = self.database_url
        return env

    def start(self, timeout: float = 180) -> Server:
        """Start as ``sealkeeper serve --demo`` does: migrations, the CA and the demo
        organization first (:data:`SEED`), then uvicorn on the same application with
        the same options (a 60 s worker health-check timeout included) and without
        the access log."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        seed = subprocess.run([sys.executable, "-c", SEED], env=self.env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout)
        if seed.returncode != 0:
            raise RuntimeError(f"seeding failed: {self.log.read_text()[-3000:]}")
        args = [sys.executable, "-m", "uvicorn", "sealkeeper.web.asgi:app_from_env", "--factory",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
                "--log-level", "info", "--timeout-worker-healthcheck", "60"]
        if not self.access_log:
            args.append("--no-access-log")
        self.proc = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    if self.workers > 1:
                        self._wait_workers(deadline)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def _wait_workers(self, deadline: float) -> None:
        """Every worker has started its application (uvicorn logs it per worker)."""
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count("Application startup complete") \
                    >= self.workers:
                return
            time.sleep(0.1)

    def pids(self) -> list[int]:
        from bench._common import descendants

        return descendants(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def demo(self) -> Demo:
        data = json.loads((self.data_dir / "demo.json").read_text())
        alice = next(u for u in data["users"] if u["email"] == "alice@example.com")
        contract = next(s["seal_id"] for s in data["seals"] if s["type"] == "contract")
        assert contract in alice["seal_ids"]
        return Demo(alice["token"], alice["approval_password"], contract, alice["email"])

    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'sealkeeper.db').resolve()}"


# -- the server shared by the client and verify sections --------------------------

_shared: Server | None = None


def adopt_shared(server: Server) -> None:
    """Keep ``server`` (SQLite) running for the client and verify sections."""
    global _shared
    stop_shared()
    _shared = server


def shared_server(work: Path) -> Server:
    """The shared server, started on first use (SQLite, 2 workers)."""
    global _shared
    if _shared is None:
        print("  -- starting a server (SQLite, 2 workers) for the client commands", flush=True)
        server = Server(work / "data-client", workers=2, database_url=None).start()
        db = Db(server.database())
        db.credit(server.demo().email)
        db.close()
        _shared = server
    return _shared


def stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


# -- set-up in the database ------------------------------------------------------


class Db:
    """The server's database, opened from the benchmark process for set-up."""

    def __init__(self, url: str) -> None:
        from sealkeeper.db import make_engine

        self.engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def credit(self, email: str, units: int = 2_000_000_000) -> None:
        """Enough quota for any run (a set-up step, not a measured one)."""
        from sqlalchemy import select, update

        from sealkeeper.accounts.models import User
        from sealkeeper.orgs.models import Organization

        with self.engine.begin() as c:
            org = c.execute(select(User.organization_id).where(User.email == email)).scalar()
            c.execute(update(Organization).where(Organization.id == org)
                      .values(quota_balance=units))

    def issue_approvals(self, email: str, seal_id: str, digests: list[list[bytes]],
                        api: str = "native") -> list[str]:
        """Single-use approvals, one per list of digests, as ``POST /approvals`` or CSC
        ``credentials/authorize`` would create them, inserted in one transaction.

        Issuing them through the API would cost one argon2 check each (about 0.1 s
        of both cores): that cost is measured on its own, and kept out of the
        signing figures.
        """
        from sqlalchemy import Table, insert, select

        from sealkeeper.accounts.models import User
        from sealkeeper.crypto.secrets import token_hash
        from sealkeeper.seals.models import Seal
        from sealkeeper.signing.approvals import APPROVAL_PREFIX
        from sealkeeper.signing.models import Approval

        now = dt.datetime.now(dt.UTC)
        tokens, rows = [], []
        with self.engine.begin() as c:
            user_id = c.execute(select(User.id).where(User.email == email)).scalar_one()
            seal_pk = c.execute(select(Seal.id).where(Seal.seal_id == seal_id)).scalar_one()
            for ds in digests:
                token = APPROVAL_PREFIX + secrets.token_urlsafe(32)
                tokens.append(token)
                rows.append({"id": secrets.token_hex(16), "token_hash": token_hash(token),
                             "user_id": user_id, "seal_pk": seal_pk,
                             "digest_algorithm": "sha256", "hashes": [d.hex() for d in ds],
                             "count": len(ds), "created_at": now,
                             "expires_at": now + dt.timedelta(hours=2)})
            for i in range(0, len(rows), 5000):
                c.execute(insert(cast(Table, Approval.__table__)), rows[i:i + 5000])
        return tokens


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def random_digests(n: int) -> list[bytes]:
    return [os.urandom(32) for _ in range(n)]


def json_line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
