"""The README's run command: `sealkeeper serve --demo` on a fresh data directory
serves the demo organization, and an employee's token lists their seals."""

from __future__ import annotations

import json
import os
import stat

import httpx
import pytest

from server import Server


@pytest.mark.parametrize("backend", [pytest.param("sqlite", id="sqlite"),
                                     pytest.param("pg", id="postgresql")])
def test_serve_demo(tmp_path, backend, databases):
    env = {}
    if backend == "pg":
        env["SEALKEEPER_DATABASE_URL"] = str(databases.get("postgresql").url.render_as_string(
            hide_password=False))
    data = tmp_path / "data"
    with Server(data, args=("--demo",), env=env) as srv:
        demo = json.loads((data / "demo.json").read_text())
        assert stat.S_IMODE(os.stat(data / "demo.json").st_mode) == 0o600
        assert demo["base_url"] == srv.url
        assert demo["organization"]["name"] == "Example Ltd"
        roles = sorted(u["role"] for u in demo["users"])
        assert roles == ["account_admin", "employee", "employee", "eseal_admin", "operator"]
        assert sorted(s["type"] for s in demo["seals"]) == sorted(
            ["official", "authorized_signature", "contract", "employment_agreement",
             "financial", "invoice"])
        alice = next(u for u in demo["users"] if u["email"] == "alice@example.com")
        r = httpx.get(srv.url + "/api/v1/me/seals",
                      headers={"Authorization": f"Bearer {alice['token']}"})
        assert r.status_code == 200
        got = {s["type"]: s["seal_id"] for s in r.json()}
        assert set(got) == {"personal", "contract", "invoice"}
        assert sorted(got.values()) == sorted(alice["seal_ids"])
        first = demo
    # Idempotent: a second start keeps the same organization, seals and tokens.
    with Server(data, args=("--demo",), env=env) as srv:
        demo = json.loads((data / "demo.json").read_text())
        assert demo["organization"] == first["organization"]
        assert demo["seals"] == first["seals"]
        assert [u["token"] for u in demo["users"]] == [u["token"] for u in first["users"]]
        r = httpx.get(srv.url + "/api/v1/organizations",
                      headers={"Authorization": f"Bearer {demo['users'][0]['token']}"})
        assert [o["legal_name"] for o in r.json()] == ["Example Ltd"]
