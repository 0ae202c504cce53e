"""Personal API tokens: shown once, stored hashed, revocable, limited to SealIDs."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from factories import auth
from sealkeeper.accounts.models import ApiToken
from sealkeeper.services import UnitOfWork


def test_token_lifecycle(client, world, runtime):
    emp = auth(world.a.tokens["employee"])
    r = client.post("/api/v1/me/tokens", headers=emp, json={"name": "laptop"})
    assert r.status_code == 201
    new = r.json()
    token = new["token"]
    assert token.startswith("skt_") and len(token) >= 4 + 43  # 256 random bits
    # shown once: listing never shows it
    listed = client.get("/api/v1/me/tokens", headers=emp)
    assert token not in listed.text and new["id"] in listed.text
    # stored hashed
    uow = UnitOfWork(runtime)
    row = uow.session.scalar(select(ApiToken).where(ApiToken.id == new["id"]))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    uow.close()
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    assert client.delete(f"/api/v1/me/tokens/{new['id']}", headers=emp).status_code == 200
    r = client.get("/api/v1/me", headers=auth(token))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert token not in r.text


def test_token_limited_to_seal_ids(client, world):
    a = world.a
    emp = auth(a.tokens["employee"])
    r = client.post("/api/v1/me/tokens", headers=emp,
                    json={"name": "ci", "seal_ids": [a.seals["contract"]]})
    assert r.status_code == 201
    limited = auth(r.json()["token"])
    mine = client.get("/api/v1/me/seals", headers=limited).json()
    assert [s["seal_id"] for s in mine] == [a.seals["contract"]]
    me = client.get("/api/v1/me", headers=limited).json()
    assert me["token_seal_ids"] == [a.seals["contract"]]
    # a seal the user cannot use, or another org's seal, cannot be named
    for bad in (a.seals["official"], world.b.seals["contract"], "SEAL-XXXX"):
        r = client.post("/api/v1/me/tokens", headers=emp, json={"name": "x", "seal_ids": [bad]})
        assert r.status_code == 404, bad


def test_bad_credentials(client, world):
    for header in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer " + "x" * 5000}, {}):
        r = client.get("/api/v1/me", headers=header)
        assert r.status_code == 401, header
    r = client.post("/api/v1/auth/token", json={"email": world.a.emails["employee"],
                                                "password": "wrong password!"})
    assert r.status_code == 401 and r.json()["message"] == "wrong email or password"
    r = client.post("/api/v1/auth/token", json={"email": "nobody@nowhere.example",
                                                "password": "wrong password!"})
    assert r.status_code == 401 and r.json()["message"] == "wrong email or password"
