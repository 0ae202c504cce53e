"""Quota: orders, operator credits, and atomic consumption under concurrency."""

from __future__ import annotations

import threading

from factories import auth
from sealkeeper.orgs.models import Organization
from sealkeeper.services import UnitOfWork


def test_order_then_operator_credits(client, world):
    a = world.a
    admin, op = auth(a.tokens["account_admin"]), auth(world.operator_token)
    start = client.get(f"/api/v1/organizations/{a.id}/quota", headers=admin).json()["balance"]
    order = client.post(f"/api/v1/organizations/{a.id}/quota/orders", headers=admin,
                        json={"units": 500}).json()
    assert order["status"] == "pending"
    q = client.get(f"/api/v1/organizations/{a.id}/quota", headers=admin).json()
    assert q["balance"] == start  # pending orders add nothing
    r = client.post(f"/api/v1/quota/orders/{order['id']}/credit", headers=op,
                    json={"reference": "PAY-42"})
    assert r.status_code == 200 and r.json()["status"] == "credited"
    # crediting twice is refused
    r = client.post(f"/api/v1/quota/orders/{order['id']}/credit", headers=op, json={})
    assert r.status_code == 409
    q = client.get(f"/api/v1/organizations/{a.id}/quota", headers=admin).json()
    assert q["balance"] == start + 500
    r = client.post(f"/api/v1/organizations/{a.id}/quota/credit", headers=op,
                    json={"units": 0})
    assert r.status_code == 400 and r.json()["field"] == "units"


def _consume_concurrently(runtime, org_id: str, attempts: int) -> int:
    wins = []
    barrier = threading.Barrier(attempts)

    def worker() -> None:
        uow = UnitOfWork(runtime)
        try:
            barrier.wait()
            ok = uow.quota.try_consume(org_id)
            uow.commit()
            if ok:
                wins.append(1)
        finally:
            uow.close()

    threads = [threading.Thread(target=worker) for _ in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(wins)


def test_consumption_is_atomic(runtime, world):
    org_id = world.a.id
    uow = UnitOfWork(runtime)
    uow.session.get(Organization, org_id).quota_balance = 10
    uow.commit()
    uow.close()
    assert _consume_concurrently(runtime, org_id, 30) == 10
    uow = UnitOfWork(runtime)
    assert uow.session.get(Organization, org_id).quota_balance == 0
    assert uow.quota.try_consume(org_id) is False
    uow.close()
