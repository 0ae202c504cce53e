"""A request the CSC layer refuses commits nothing: the route class renders the
error itself, and the unit of work must still roll back (here: the SAD a
refused signHash consumed is usable again, and no quota was taken)."""

from __future__ import annotations

from test_csc_api import authorize, h, set_pin, sign_hash

from factories import auth
from sealkeeper.orgs.models import Organization
from sealkeeper.services import UnitOfWork


def _set_quota(runtime, org_id: str, units: int) -> None:
    uow = UnitOfWork(runtime)
    uow.session.get(Organization, org_id).quota_balance = units
    uow.commit()
    uow.close()


def test_refused_sign_hash_leaves_the_sad_unused(client, world, runtime):
    a = world.a
    emp = a.tokens["employee"]
    set_pin(client, emp)
    cid = a.seals["contract"]
    hashes = [h(b"to be signed")]
    r = authorize(client, "v2", emp, cid, hashes)
    assert r.status_code == 200, r.text
    sad = r.json()["SAD"]
    _set_quota(runtime, a.id, 0)
    r = sign_hash(client, "v2", emp, cid, sad, hashes)
    assert r.status_code == 403 and r.json()["error"] == "access_denied", r.text
    _set_quota(runtime, a.id, 5)
    r = sign_hash(client, "v2", emp, cid, sad, hashes)
    assert r.status_code == 200, r.text
    q = client.get(f"/api/v1/organizations/{a.id}/quota", headers=auth(a.tokens["eseal_admin"]))
    assert q.json()["balance"] == 4
