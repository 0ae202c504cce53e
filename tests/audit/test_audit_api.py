"""The usage log over HTTP (/api/v1): list, CSV, checkpoint, proofs, raw
entries, the security log, and clear 400s. Both databases."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from audit_helpers import signature
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from factories import World, auth
from sealkeeper.audit import SecurityEventDraft, record_security_event
from sealkeeper.audit.store import read_head
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork

pytestmark = pytest.mark.skipif(not hasattr(UnitOfWork, "audit"),
                                reason="UnitOfWork.audit is not wired yet")
LOG = "/api/v1/organizations/{}/log"


def api_paths(routes: Sequence[object], prefix: str = "") -> Iterator[str]:
    """Every route path, also inside included routers (which this FastAPI keeps
    nested, so ``app.routes`` alone does not list them)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield prefix + r.path
        elif hasattr(r, "original_router") and hasattr(r, "include_context"):
            yield from api_paths(r.original_router.routes, prefix + r.include_context.prefix)


@dataclass
class Api:
    client: TestClient
    base: int     # entries the world itself logged in A's log (grants...) before ours


@pytest.fixture
def api(client: TestClient, runtime: Runtime, world: World) -> Api:
    """The client, with 12 more entries in A's log (8 by a.employee, then 4 by
    a.employee2) and one refused attempt."""
    if "/api/v1/organizations/{org_id}/log" not in set(api_paths(client.app.routes)):
        pytest.skip("the log router is not mounted yet")
    a = world.a
    uow = UnitOfWork(runtime)
    try:
        base = read_head(uow.session, a.id)[0]
        uow.audit.append(a.id, [signature(i, user=a.users["employee"], email=a.emails["employee"],
                                          seal=a.seals["contract"]) for i in range(7)]
                         + [signature(7, user=a.users["employee"], file_name="=1+1.pdf")])
        uow.audit.append(a.id, [signature(100 + i, user=a.users["employee2"],
                                          email=a.emails["employee2"]) for i in range(4)])
        record_security_event(uow.session, uow.clock, SecurityEventDraft(
            action="sign", reason="approval_refused", message="wrong approval password",
            organization_id=a.id, user_id=a.users["employee"]))
        uow.commit()
    finally:
        uow.close()
    return Api(client, base)


def get(api: Api, path: str, token: str, **params: object):
    return api.client.get(path, headers=auth(token), params=params)


def test_list_and_my_log(api: Api, world: World):
    a, b = world.a, api.base
    r = get(api, LOG.format(a.id), a.tokens["eseal_admin"], page_size=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == b + 12
    assert [e["seq"] for e in body["items"]] == [b + 11, b + 10, b + 9, b + 8, b + 7]
    e = body["items"][-1]
    assert e["file_name"] == "=1+1.pdf" and e["kind"] == "signature"
    assert len(e["leaf_hash"]) == 64 and e["details"] == {}
    r = get(api, LOG.format(a.id), a.tokens["employee2"], kind="signature")
    assert r.json()["total"] == 4
    r = get(api, "/api/v1/me/log", a.tokens["employee"], order="asc", page_size=2, page=2,
            kind="signature")
    assert [x["seq"] for x in r.json()["items"]] == [b + 2, b + 3] and r.json()["total"] == 8
    r = get(api, LOG.format(a.id), a.tokens["account_admin"], file_name="CONTRACT-10",
            user_id=a.users["employee2"])
    assert r.json()["total"] == 4
    assert get(api, "/api/v1/me/log", world.outsider_token).json()["total"] == 0


def test_csv(api: Api, world: World):
    a = world.a
    r = get(api, LOG.format(a.id) + ".csv", a.tokens["eseal_admin"],
            user_id=a.users["employee"], kind="signature")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][0] == "seq" and len(rows) == 9
    assert rows[8][rows[0].index("file_name")] == "'=1+1.pdf"
    r = get(api, "/api/v1/me/log.csv", a.tokens["employee2"], kind="signature")
    assert len(list(csv.reader(io.StringIO(r.text)))) == 5


def test_checkpoint_proofs_and_entries_verify(api: Api, world: World):
    a, b = world.a, api.base
    tok = a.tokens["employee"]
    vkey = get(api, LOG.format(a.id) + "/verifier-key", tok).text.strip()
    name, key = notes.parse_verifier_key(vkey)
    r = get(api, LOG.format(a.id) + "/checkpoint", tok)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    cp = notes.parse_and_verify(r.text, name, key)
    assert cp.size == b + 12 and cp.origin == f"testserver/log/{a.id}"
    # Every entry, downloaded and hashed here, gives the checkpoint's root.
    raw = get(api, LOG.format(a.id) + "/entries", a.tokens["eseal_admin"], start=0).json()
    assert raw["tree_size"] == b + 12 and raw["end"] == b + 12
    assert [e["seq"] for e in raw["entries"]] == list(range(b + 12))
    entries = [base64.b64decode(e["entry"]) for e in raw["entries"]]
    leaves = [merkle.leaf_hash(e) for e in entries]
    assert merkle.root_from_leaves(leaves) == cp.root_hash
    # An employee proves their own entry, by seq and by leaf hash.
    n = b + 3
    for params in ({"seq": n}, {"leaf_hash": leaves[n].hex()}):
        p = get(api, LOG.format(a.id) + "/proof/inclusion", tok, tree_size=cp.size,
                **params).json()
        assert p["seq"] == n and base64.b64decode(p["entry"]) == entries[n]
        merkle.verify_inclusion(leaves[n], n, cp.size, [bytes.fromhex(h) for h in p["path"]],
                                cp.root_hash)
    r = get(api, LOG.format(a.id) + "/proof/inclusion", tok, seq=b + 9)  # employee2's entry
    assert r.status_code == 404
    c = get(api, LOG.format(a.id) + "/proof/consistency", tok, old=5, new=b + 12).json()
    merkle.verify_consistency(5, b + 12, merkle.root_from_leaves(leaves[:5]), cp.root_hash,
                              [bytes.fromhex(h) for h in c["path"]])


def test_security_events(api: Api, world: World):
    a = world.a
    r = get(api, f"/api/v1/organizations/{a.id}/security-events", a.tokens["eseal_admin"],
            reason="approval_refused", user_id=a.users["employee"])
    assert r.status_code == 200 and r.json()["total"] == 1
    assert r.json()["items"][0]["reason"] == "approval_refused"
    r = get(api, f"/api/v1/organizations/{a.id}/security-events", a.tokens["employee"])
    assert r.status_code == 403


def test_security_events_csv(api: Api, world: World, runtime: Runtime):
    """The security log as CSV: every matching event, oldest first, across chunks,
    formula-like messages defused; administrators only."""
    a, b = world.a, world.b
    uow = UnitOfWork(runtime)
    try:
        for i in range(1205):  # more than one chunk of 1,000
            record_security_event(uow.session, uow.clock, SecurityEventDraft(
                action="authorize", reason="seal_disabled", message=f"=attempt {i}",
                organization_id=a.id, user_id=a.users["employee2"], api="csc-v2"))
        record_security_event(uow.session, uow.clock, SecurityEventDraft(
            action="sign", reason="approval_refused", message="in another organization",
            organization_id=b.id, user_id=b.users["employee"]))
        uow.commit()
    finally:
        uow.close()
    path = f"/api/v1/organizations/{a.id}/security-events.csv"
    r = get(api, path, a.tokens["account_admin"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="security-log.csv"' in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["time", "action", "reason", "user_id", "seal_id", "api", "remote_addr",
                       "message", "id"]
    assert len(rows) == 1 + 1 + 1205  # the fixture's refused attempt and ours
    assert len({row[8] for row in rows[1:]}) == 1206  # no event twice across chunks
    assert [row[0] for row in rows[1:]] == sorted(row[0] for row in rows[1:])
    assert "in another organization" not in r.text
    disabled = [row for row in rows[1:] if row[2] == "seal_disabled"]
    assert disabled[0][7] == "'=attempt 0" and disabled[0][5] == "csc-v2"
    r = get(api, path, a.tokens["eseal_admin"], reason="approval_refused")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert [row[2] for row in rows[1:]] == ["approval_refused"]
    assert rows[1][3] == a.users["employee"]
    assert get(api, path, a.tokens["employee"]).status_code == 403
    assert get(api, path, b.tokens["eseal_admin"]).status_code == 404
    assert get(api, path, a.tokens["eseal_admin"], since="yesterday").status_code == 400


BAD_INPUT = [
    ("", {"page_size": 501}, "page_size"),
    ("", {"page": 0}, "page"),
    ("", {"since": "yesterday"}, "since"),
    ("", {"kind": "nope"}, "kind"),
    ("", {"file_digest": "xyz"}, "file_digest"),
    ("", {"order": "up"}, "order"),
    (".csv", {"kind": "nope"}, "kind"),
    ("/proof/inclusion", {"seq": -1}, "seq"),
    ("/proof/inclusion", {"seq": 2**60}, "seq"),
    ("/proof/inclusion", {"leaf_hash": "zz"}, "leaf_hash"),
    ("/proof/inclusion", {"leaf_hash": "ab" * 31}, "leaf_hash"),
    ("/proof/inclusion", {}, "seq"),
    ("/proof/inclusion", {"seq": 1, "tree_size": 1}, "tree_size"),
    ("/proof/inclusion", {"seq": 1, "tree_size": 2**40}, "tree_size"),
    ("/proof/consistency", {}, "old"),
    ("/proof/consistency", {"old": 3, "new": 2**40}, "new"),
    ("/proof/consistency", {"old": 3, "new": 2}, "new"),
    ("/entries", {"start": 0, "end": 1001}, "end"),
    ("/entries", {"start": 5, "end": 4}, "end"),
]


def test_bad_input_is_a_clear_400(api: Api, world: World):
    for suffix, params, field in BAD_INPUT:
        r = get(api, LOG.format(world.a.id) + suffix, world.a.tokens["eseal_admin"], **params)
        assert r.status_code == 400, (suffix, params, r.text)
        assert r.json()["error"] == "invalid_request"
        assert r.json().get("field") == field, (suffix, params, r.text)


def test_odd_times_and_far_pages(api: Api, world: World):
    for v in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"):
        r = get(api, LOG.format(world.a.id), world.a.tokens["eseal_admin"], since=v)
        assert r.status_code in (200, 400), r.text
    r = get(api, LOG.format(world.a.id), world.a.tokens["eseal_admin"], page=10_000_000,
            page_size=500)
    assert r.status_code == 200 and r.json()["items"] == []
