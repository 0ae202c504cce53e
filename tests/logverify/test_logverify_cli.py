"""``sealkeeper log ...`` against the real app and a real database (SQLite and
PostgreSQL), in-process: the CLI's HTTP client is wired to the app through
the test client's transport. Documents are signed through the API, then the
database is tampered with plain SQL (the ORM guard refuses ORM updates) and
``log verify --full`` must exit 1 naming the first bad index; a rewritten
history is caught by the consistency check against the checkpoint saved by
the earlier run; a deleted employee's entries stay listed and provable."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from factories import World, auth
from sealkeeper.audit import EntryDraft
from sealkeeper.cli import log_cmds
from sealkeeper.cli.app import app
from sealkeeper.client.api import SealkeeperClient
from sealkeeper.crypto import merkle
from sealkeeper.crypto.digests import Hashed
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork

ENV = {"SEALKEEPER_CONFIG": "/nonexistent/client.json", "SEALKEEPER_URL": None,
       "SEALKEEPER_TOKEN": None, "SEALKEEPER_LOG_KEY": None}


@dataclass
class Out:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def flat(self) -> str:
        return " ".join((self.stdout + " " + self.stderr).split())


@pytest.fixture
def cli(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Out]:
    """Run ``sealkeeper ARGS`` as the holder of ``token``."""
    def run(token: str, *args: object) -> Out:
        monkeypatch.setattr(log_cmds, "_connect", lambda: SealkeeperClient(
            "http://testserver", token, transport=client._transport))
        r = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        assert "Traceback" not in r.stdout + r.stderr
        return Out(r.exit_code, r.stdout, r.stderr)

    return run


def sign(client: TestClient, token: str, seal_id: str, names: list[str],
         password: str = "1234") -> None:
    docs = [{"file_name": n, "digest": base64.b64encode(hashlib.sha256(n.encode()).digest())
             .decode()} for n in names]
    r = client.post("/api/v1/sign", headers=auth(token), json={
        "seal_id": seal_id, "approval_password": password, "documents": docs})
    assert r.status_code == 200 if password == "1234" else r.status_code == 403, r.text


@pytest.fixture
def signed(client: TestClient, world: World) -> World:
    """A's employee set an approval password and signed four documents."""
    emp = world.a.tokens["employee"]
    r = client.post("/api/v1/me/approval-password", headers=auth(emp),
                    json={"approval_password": "1234"})
    assert r.status_code == 201, r.text
    sign(client, emp, world.a.seals["contract"], ["a.pdf", "b.pdf"])
    sign(client, emp, world.a.seals["contract"], ["c.pdf", "合同.pdf"])
    return world


class Db:
    """Plain-SQL access to one organization's log tables (what an operator with
    a database console could do)."""

    def __init__(self, engine: Engine, org: str) -> None:
        self.engine, self.org = engine, org

    def sql(self, stmt: str, *params: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            c.execute(text(stmt), [{"o": self.org, **p} for p in params] or {"o": self.org})

    def rows(self, table: str, order: str) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(
                f"SELECT * FROM {table} WHERE organization_id = :o ORDER BY {order}"),
                {"o": self.org})]

    def put(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            cols = list(rows[0])
            self.sql(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                     f"({', '.join(':' + c for c in cols)})", *rows)



def _snapshot(db: Db) -> dict[str, list[dict[str, Any]]]:
    return {t: db.rows(t, o) for t, o in (("log_entries", "seq"), ("log_nodes", "level, idx"),
                                         ("log_heads", "organization_id"))}


def _restore(db: Db, snap: dict[str, list[dict[str, Any]]]) -> None:
    for table, rows in snap.items():
        db.sql(f"DELETE FROM {table} WHERE organization_id = :o")
        db.put(table, rows)


def _edited(entry: bytes, new_name: str) -> bytes:
    """The same canonical entry with another file name (still canonical)."""
    body = json.loads(entry)
    body["file_name"] = new_name
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def _verify(cli: Callable[..., Out], token: str, state: Path, *extra: str) -> Out:
    return cli(token, "log", "verify", "--state", state, "--json", *extra)


def test_tampering_in_the_database_is_found(signed: World, cli: Callable[..., Out],
                                            engine: Engine, runtime: Runtime,
                                            tmp_path: Path) -> None:
    a = signed.a
    admin = a.tokens["eseal_admin"]
    state = tmp_path / "state"
    db = Db(engine, a.id)

    first = _verify(cli, admin, state, "--full")
    assert first.code == 0, first.flat
    res = first.json
    n = res["tree_size"]
    assert res["ok"] and res["key_source"] == "first-use" and res["entries_checked"] == n
    assert "on first use" in first.flat and n >= 5
    assert (state / "verifier-key").exists() and (state / "leaves.bin").stat().st_size == 32 * n
    human = cli(admin, "log", "verify", "--state", state, "--full")
    assert human.code == 0 and "OK" in human.stdout and "pinned" in human.stdout

    snap = _snapshot(db)
    entries = [bytes(r["entry"]) for r in snap["log_entries"]]
    sig = [i for i, e in enumerate(entries) if b'"kind":"signature"' in e]
    k, j = sig[1], sig[-1]  # two signature entries, k < j

    def forged_row(seq: int) -> dict[str, Any]:
        row = dict(snap["log_entries"][seq])
        row["entry"] = _edited(entries[seq], "forged.pdf")
        row["leaf_hash"] = merkle.leaf_hash(row["entry"])
        return row

    def edit() -> None:
        db.sql("UPDATE log_entries SET entry = :e WHERE organization_id = :o AND seq = :s",
               {"e": _edited(entries[k], "edited.pdf"), "s": k})

    def delete() -> None:
        db.sql("DELETE FROM log_entries WHERE organization_id = :o AND seq = :s", {"s": k})

    def reorder() -> None:
        for old, new in ((k, -1), (j, k), (-1, j)):
            db.sql("UPDATE log_entries SET seq = :new WHERE organization_id = :o "
                   "AND seq = :old", {"old": old, "new": new})

    def insert() -> None:
        db.sql("UPDATE log_entries SET seq = seq + 1000000 WHERE organization_id = :o "
               "AND seq >= :s", {"s": k})
        db.sql("UPDATE log_entries SET seq = seq - 999999 WHERE organization_id = :o "
               "AND seq >= 1000000")
        db.put("log_entries", [forged_row(k)])

    def truncate() -> None:
        db.sql("DELETE FROM log_entries WHERE organization_id = :o AND seq >= :s",
               {"s": n - 2})
        root = merkle.root_from_leaves([merkle.leaf_hash(e) for e in entries[:n - 2]])
        db.sql("UPDATE log_heads SET size = :s, root = :r WHERE organization_id = :o",
               {"s": n - 2, "r": root})

    cases = [(edit, "changed_entry", k), (delete, "missing_entry", k),
             (reorder, "wrong_index", k), (insert, "changed_entry", k),
             (truncate, "log_shrank", n - 2)]
    for tamper, kind, index in cases:
        tamper()
        out = _verify(cli, admin, state, "--full")
        assert out.code == 1, (tamper.__name__, out.flat)
        problem = out.json["problem"]
        assert (problem["kind"], problem["index"]) == (kind, index), (tamper.__name__, problem)
        human = cli(admin, "log", "verify", "--state", state, "--full")
        assert human.code == 1 and f"MISMATCH at entry {index} [{kind}]" in human.flat
        if tamper is edit:  # the edited entry no longer proves either
            proof = cli(admin, "log", "proof", k, "--state", state)
            assert proof.code == 1 and "NOT PROVEN: entry" in proof.flat, proof.flat
        _restore(db, snap)
        assert _verify(cli, admin, state, "--full").code == 0, tamper.__name__

    # A rewritten history: entry k changed and the whole tree rebuilt around it
    # (entries, nodes and head), so the server signs a checkpoint of the
    # rewritten tree. Only the checkpoint saved earlier can tell.
    rewritten = list(entries)
    rewritten[k] = _edited(entries[k], "rewritten.pdf")
    store = merkle.MemoryNodeStore()
    nodes = store.append([merkle.leaf_hash(e) for e in rewritten])
    db.sql("UPDATE log_entries SET entry = :e, leaf_hash = :h WHERE organization_id = :o "
           "AND seq = :s", {"e": rewritten[k], "h": merkle.leaf_hash(rewritten[k]), "s": k})
    db.sql("DELETE FROM log_nodes WHERE organization_id = :o")
    db.put("log_nodes", [{"organization_id": a.id, "level": nd.level, "idx": nd.index,
                          "hash": nd.hash} for nd in nodes])
    db.sql("UPDATE log_heads SET root = :r WHERE organization_id = :o",
           {"r": merkle.root(n, store)})
    out = _verify(cli, admin, state)
    assert out.code == 1 and out.json["consistency"] == "failed"
    assert (out.json["problem"]["kind"], out.json["problem"]["index"]) == ("inconsistent", k)
    fresh = _verify(cli, admin, tmp_path / "fresh", "--full")
    assert fresh.code == 0  # self-consistent: a verifier with no memory cannot tell

    # The same with the service: the log wiped and refilled with other entries.
    for table in ("log_checkpoints", "log_entries", "log_nodes", "log_heads"):
        db.sql(f"DELETE FROM {table} WHERE organization_id = :o")
    uow = UnitOfWork(runtime)
    try:
        uow.audit.append(a.id, [EntryDraft.signature(
            seal_id=a.seals["contract"], seal_name="Contract", seal_type="contract",
            user_id=a.users["employee"], user_email=a.emails["employee"],
            file_name=f"other-{i}.pdf", digest=Hashed.of(b"%d" % i), api="native")
            for i in range(n + 3)])
        uow.commit()
    finally:
        uow.close()
    out = _verify(cli, admin, state)
    assert out.code == 1, out.flat
    assert (out.json["problem"]["kind"], out.json["problem"]["index"]) == ("inconsistent", 0)
    assert "history rewritten" in out.json["problem"]["detail"]


def test_reading_the_log_and_a_deleted_employees_entries(signed: World, client: TestClient,
                                                        cli: Callable[..., Out],
                                                        tmp_path: Path) -> None:
    a = signed.a
    admin, emp, bob = a.tokens["eseal_admin"], a.tokens["employee"], a.tokens["employee2"]
    alice = a.users["employee"]
    sign(client, emp, a.seals["contract"], ["x.pdf"], password="0000")  # refused
    r = client.delete(f"/api/v1/organizations/{a.id}/employees/{alice}",
                      headers=auth(a.tokens["account_admin"]))
    assert r.status_code == 200, r.text

    # The e-seal administrator still lists her entries, and proves one.
    out = cli(admin, "log", "list", "--user", alice, "--kind", "signature", "--json")
    assert out.code == 0, out.flat
    items = out.json["items"]
    assert {e["file_name"] for e in items} == {"a.pdf", "b.pdf", "c.pdf", "合同.pdf"}
    assert out.json["total"] == 4
    seq = min(e["seq"] for e in items)
    proof = cli(admin, "log", "proof", seq, "--state", tmp_path / "s", "--json")
    assert proof.code == 0, proof.flat
    assert proof.json["ok"] and proof.json["entry"]["user_id"] == alice
    assert proof.json["leaf_hash"] == next(e["leaf_hash"] for e in items if e["seq"] == seq)
    human = cli(admin, "log", "proof", seq, "--state", tmp_path / "s")
    assert human.code == 0 and "PROVEN: entry" in human.flat
    beyond = cli(admin, "log", "proof", 10_000, "--state", tmp_path / "s", "--json")
    assert beyond.code == 1 and not beyond.json["ok"]
    table = cli(admin, "log", "list", "--user", alice, "--file-name", "合同")
    assert table.code == 0 and "合同.pdf" in table.stdout and "1 matching" in table.flat
    bad = cli(admin, "log", "list", "--since", "yesterday")
    assert bad.code == 2 and "since" in bad.stderr
    later = cli(admin, "log", "list", "--since", "2999-01-01T00:00:00", "--json")
    assert later.code == 0 and later.json["total"] == 0
    everything = cli(admin, "log", "list", "--user", alice, "--json").json
    kinds = {e["kind"] for e in everything["items"]}
    assert {"grant", "signature", "withdrawal"} <= kinds  # her grant was withdrawn

    csv_path = tmp_path / "alice.csv"
    out = cli(admin, "log", "export", "--user", alice, "--kind", "signature", "-o", csv_path)
    assert out.code == 0, out.flat
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert [row["file_name"] for row in rows] == ["a.pdf", "b.pdf", "c.pdf", "合同.pdf"]
    assert not csv_path.with_name("alice.csv.part").exists()

    sec = cli(admin, "log", "security", "--json")
    assert sec.code == 0 and any(e["reason"] == "approval_refused" and e["user_id"] == alice
                                 for e in sec.json["items"])
    assert cli(admin, "log", "security").code == 0
    sec_csv = tmp_path / "security.csv"
    out = cli(admin, "log", "security", "--reason", "approval_refused", "-o", sec_csv)
    assert out.code == 0, out.flat
    events = list(csv.DictReader(sec_csv.open(encoding="utf-8")))
    assert events and {e["reason"] for e in events} == {"approval_refused"}
    assert any(e["user_id"] == alice for e in events)
    assert len(events) == len([e for e in sec.json["items"] if e["reason"] == "approval_refused"])

    # Another member sees only their own entries, cannot read the security log
    # or download the raw entries, but can check the checkpoints.
    mine = cli(bob, "log", "list", "--json")
    assert mine.code == 0 and all(e["user_id"] == a.users["employee2"]
                                  for e in mine.json["items"])
    denied = cli(bob, "log", "security")
    assert denied.code == 2 and denied.stderr.startswith("error")
    denied = cli(bob, "log", "security", "-o", tmp_path / "bob-security.csv")
    assert denied.code == 2 and not (tmp_path / "bob-security.csv").exists()
    assert not (tmp_path / "bob-security.csv.part").exists()
    full = cli(bob, "log", "verify", "--state", tmp_path / "bob", "--full")
    assert full.code == 2 and "administrator" in full.flat
    assert cli(bob, "log", "verify", "--state", tmp_path / "bob").code == 0
    nobody = cli(signed.outsider_token, "log", "verify")
    assert nobody.code == 2 and "no organization" in nobody.flat
    # Another organization's log does not exist for A's administrator.
    other = cli(admin, "log", "verify", "--org", signed.b.id, "--state", tmp_path / "b")
    assert other.code == 2
