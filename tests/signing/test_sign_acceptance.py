"""Issue 4 acceptance: lockout under concurrency and across restarts, approvals
bound to user / seal / hashes / time, grant withdrawal between approval and
signing, and exact quota under 50 concurrent requests."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from factories import auth, build_world
from sealkeeper.audit.queries import LogFilter
from sealkeeper.errors import SigningLocked
from sealkeeper.orgs.models import Organization
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork
from sealkeeper.signing.models import ApprovalCredential
from sealkeeper.web.app import create_app
from server import Server


def _d(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _set_pw(client, token, pw="1234"):
    assert client.post("/api/v1/me/approval-password", headers=auth(token),
                       json={"approval_password": pw}).status_code == 201


def test_concurrent_wrong_passwords_evaluate_at_most_one_more(runtime, world):
    """From a count of 4, 50 concurrent wrong tries evaluate at most one password."""
    emp_id = world.a.users["employee"]
    uow = UnitOfWork(runtime)
    actor = uow.accounts.actor_for(uow.accounts.find_by_email(world.a.emails["employee"]))
    uow.approvals.set_password(actor, "1234")
    uow.session.get(ApprovalCredential, emp_id).failed_count = 4
    uow.commit()
    uow.close()
    evaluated = []
    real_verify = runtime.passwords.verify

    def counting_verify(stored, password):
        evaluated.append(1)
        return real_verify(stored, password)

    runtime.passwords.verify = counting_verify  # count argon2 evaluations
    outcomes = []
    barrier = threading.Barrier(50)

    def attempt():
        u = UnitOfWork(runtime)
        try:
            barrier.wait()
            u.approvals.verify(emp_id, "9999")
            outcomes.append("ok")
        except SigningLocked:
            outcomes.append("locked")
        except Exception as e:  # ApprovalRefused
            outcomes.append(type(e).__name__)
        finally:
            u.rollback()
            u.close()

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runtime.passwords.verify = real_verify
    assert len(evaluated) <= 1
    assert outcomes.count("ApprovalRefused") <= 1
    assert outcomes.count("locked") >= 49
    uow = UnitOfWork(runtime)
    assert uow.session.get(ApprovalCredential, emp_id).failed_count == 5
    with pytest.raises(SigningLocked):
        uow.approvals.verify(emp_id, "1234")  # even the right one
    uow.close()


def test_lock_survives_a_server_restart(tmp_path):
    data = tmp_path / "data"
    with Server(data, args=("--demo",)) as srv:
        demo = json.loads((data / "demo.json").read_text())
        alice = next(u for u in demo["users"] if u["email"] == "alice@example.com")
        seal = next(s["seal_id"] for s in demo["seals"] if s["type"] == "contract")
        wrong = "0000" if alice["approval_password"] != "0000" else "1111"
        h = {"Authorization": f"Bearer {alice['token']}"}
        body = {"seal_id": seal, "documents": [{"file_name": "x", "digest": _d(b"x")}]}
        for _ in range(5):
            r = httpx.post(srv.url + "/api/v1/sign", headers=h,
                           json={**body, "approval_password": wrong})
            assert r.status_code == 403
        port = srv.port
    with Server(data, args=("--demo",), port=port) as srv:
        r = httpx.post(srv.url + "/api/v1/sign", headers=h,
                       json={**body, "approval_password": alice["approval_password"]})
        assert r.status_code == 423, r.text


def test_approval_binding(runtime, world, engine):
    clock = FakeClock()
    rt = Runtime.build(runtime.settings, engine=engine, clock=clock, keystore=runtime.keystore)
    a = world.a
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        emp, emp2 = a.tokens["employee"], a.tokens["employee2"]
        _set_pw(client, emp)
        _set_pw(client, emp2)
        eseal = auth(a.tokens["eseal_admin"])
        # employee2 also gets the contract seal, and employee the invoice seal
        for seal, who in (("contract", "employee2"), ("invoice", "employee")):
            assert client.post(f"/api/v1/seals/{a.seals[seal]}/grants", headers=eseal,
                               json={"user_id": a.users[who]}).status_code == 201

        def approve(token, seal="contract", digests=(_d(b"h1"),)):
            r = client.post("/api/v1/approvals", headers=auth(token), json={
                "seal_id": a.seals[seal], "digests": list(digests),
                "approval_password": "1234"})
            assert r.status_code == 201, r.text
            return r.json()["approval"]

        def sign(token, approval, seal="contract", digest=_d(b"h1")):
            return client.post("/api/v1/sign", headers=auth(token), json={
                "seal_id": a.seals[seal], "approval": approval,
                "documents": [{"file_name": "f", "digest": digest}]})

        ap = approve(emp)
        assert sign(emp, ap, digest=_d(b"h2")).status_code == 403       # another hash
        assert sign(emp, ap, seal="invoice").status_code == 403          # another seal
        assert sign(emp2, ap).status_code == 403                         # another user
        assert sign(emp, ap).status_code == 200                          # exactly right
        assert sign(emp, ap).status_code == 403                          # used twice
        ap = approve(emp)
        clock.now += timedelta(seconds=rt.settings.approval_ttl_seconds + 1)
        r = sign(emp, ap)
        assert r.status_code == 403 and "expired" in r.json()["message"]
        # A grant withdrawn after the approval refuses the next request.
        ap = approve(emp2)
        assert client.delete(f"/api/v1/seals/{a.seals['contract']}/grants/"
                             f"{a.users['employee2']}", headers=eseal).status_code == 200
        r = sign(emp2, ap)
        assert r.status_code == 403 and "grant" in r.json()["message"]
        # A disabled seal too, and a password reset voids outstanding approvals.
        ap = approve(emp)
        client.post(f"/api/v1/seals/{a.seals['contract']}/disable", headers=eseal)
        assert sign(emp, ap).status_code == 409
        client.post(f"/api/v1/seals/{a.seals['contract']}/enable", headers=eseal)
        assert client.post("/api/v1/me/approval-password/reset", headers=auth(emp), json={
            "approval_password": "4321", "account_password": "correct horse battery"}
            ).status_code == 200
        r = sign(emp, ap)
        assert r.status_code == 403 and "voided" in r.json()["message"]
        # Every refusal is in the security log, readable by the administrator.
        events = client.get(f"/api/v1/organizations/{a.id}/security-events",
                            headers=eseal).json()
        items = events["items"] if isinstance(events, dict) else events
        assert len(items) >= 8


def test_fifty_concurrent_requests_with_quota_ten(tmp_path, databases):
    """On PostgreSQL, with a quota of 10, 50 concurrent signing requests give
    exactly 10 signatures, 10 log entries and a balance of 0."""
    engine = databases.get("postgresql")
    url = engine.url.render_as_string(hide_password=False)
    data = tmp_path / "data"
    with Server(data, args=("--workers", "2"),
                env={"SEALKEEPER_DATABASE_URL": url}) as srv:
        rt = Runtime.build(
            __import__("sealkeeper.config", fromlist=["Settings"]).Settings(
                data_dir=data, public_base_url=srv.url, argon2_time_cost=1,
                argon2_memory_kib=1024, argon2_parallelism=1),
            engine=engine)
        world = build_world(rt)
        a = world.a
        uow = UnitOfWork(rt)
        uow.session.get(Organization, a.id).quota_balance = 10
        emp_actor = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["employee"]))
        uow.approvals.set_password(emp_actor, "1234")
        uow.commit()
        uow.close()
        statuses: list[int] = []
        errors: list[str] = []
        barrier = threading.Barrier(50)

        def one(i: int) -> None:
            barrier.wait()
            r = httpx.post(srv.url + "/api/v1/sign", headers=auth(a.tokens["employee"]),
                           json={"seal_id": a.seals["contract"], "approval_password": "1234",
                                 "documents": [{"file_name": f"{i}.pdf",
                                                "digest": _d(str(i).encode())}]},
                           timeout=120)
            statuses.append(r.status_code)
            if r.status_code not in (200, 402):
                errors.append(r.text)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert statuses.count(200) == 10, sorted(statuses)
        assert statuses.count(402) == 40, sorted(statuses)
        uow = UnitOfWork(rt)
        assert uow.session.get(Organization, a.id).quota_balance == 0
        admin = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["eseal_admin"]))
        page = uow.audit.entries(admin, a.id, LogFilter(kind="signature"))
        assert page.total == 10
        uow.close()
