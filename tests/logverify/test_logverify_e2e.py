"""``sealkeeper log verify`` against a real server process (``sealkeeper serve
--demo``) on SQLite and on PostgreSQL: the installed command passes on the
live log (trusting the key on first use, state in the default directory),
then an entry edited with plain SQL in the server's database makes it exit 1
naming that entry, and restoring the row makes it pass again."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from sealkeeper.cli.app import app
from sealkeeper.client.api import SealkeeperClient
from sealkeeper.crypto.digests import Hashed
from server import SEALKEEPER, Server


@pytest.fixture
def live(engine: Engine, tmp_path: Path) -> Iterator[tuple[Server, dict[str, Any], str]]:
    """The server, on the test session's own (migrated, emptied after the test)
    SQLite or PostgreSQL database."""
    data = tmp_path / "data"
    db_url = engine.url.render_as_string(hide_password=False)
    with Server(data, args=("--demo",), env={"SEALKEEPER_DATABASE_URL": db_url}) as srv:
        yield srv, json.loads((data / "demo.json").read_text()), db_url


def test_log_verify_against_a_running_server(live: tuple[Server, dict[str, Any], str],
                                             tmp_path: Path) -> None:
    srv, demo, db_url = live
    org = demo["organization"]["id"]
    users = {u["email"]: u for u in demo["users"]}
    alice, admin = users["alice@example.com"], users["seals@example.com"]
    contract = next(s["seal_id"] for s in demo["seals"] if s["type"] == "contract")
    with SealkeeperClient(srv.url, alice["token"]) as sk:
        sk.sign_digests(contract, [(f"deal-{i}.pdf", Hashed.of(b"deal %d" % i))
                                   for i in range(3)],
                        approval_password=alice["approval_password"])

    state_home = tmp_path / "xdg-state"
    env = {k: v for k, v in srv.env.items() if not k.startswith("SEALKEEPER_")}
    env.update({"SEALKEEPER_URL": srv.url, "SEALKEEPER_TOKEN": admin["token"],
                "SEALKEEPER_CONFIG": str(tmp_path / "none.json"),
                "XDG_STATE_HOME": str(state_home)})
    r = subprocess.run([SEALKEEPER, "log", "verify", "--full"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout and "on first use" in " ".join(r.stderr.split())
    state = state_home / "sealkeeper" / "log" / f"127.0.0.1_{srv.port}" / org
    assert (state / "verifier-key").exists() and (state / "checkpoint.json").exists()

    def verify() -> tuple[int, dict[str, Any]]:
        out = CliRunner().invoke(app, ["log", "verify", "--full", "--json"], env=env)
        return out.exit_code, json.loads(out.stdout)

    engine = create_engine(db_url)
    try:
        with engine.begin() as c:
            seq, entry = c.execute(text(
                "SELECT seq, entry FROM log_entries WHERE organization_id = :o "
                "AND file_name = 'deal-1.pdf'"), {"o": org}).one()
            c.execute(text("UPDATE log_entries SET entry = :e WHERE organization_id = :o "
                           "AND seq = :s"), {"e": bytes(entry).replace(b"deal-1", b"deal-9"),
                                             "o": org, "s": seq})
        code, res = verify()
        assert code == 1 and res["key_source"] == "pinned", res
        assert (res["problem"]["kind"], res["problem"]["index"]) == ("changed_entry", seq)
        with engine.begin() as c:
            c.execute(text("UPDATE log_entries SET entry = :e WHERE organization_id = :o "
                           "AND seq = :s"), {"e": bytes(entry), "o": org, "s": seq})
        code, res = verify()
        assert code == 0 and res["consistency"] in ("same", "proven"), res
    finally:
        engine.dispose()
