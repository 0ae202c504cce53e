"""Adversarial signing requests, on SQLite and PostgreSQL. Every attack must
get a clear 4xx (never a 5xx), no signature, no quota consumed, no usage-log
entry, and a security-log entry saying who tried what and why it was refused.

(tests/signing/test_sign_acceptance.py covers the lockout arithmetic and the
approval bindings by status code; these tests add the ledger and the
security log, the CSC API, and the refusals it does not try.)
"""

from __future__ import annotations

import base64
import hashlib
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fault_helpers import ECDSA_SHA256, SHA256_OID, Ledger, assert_refused
from sqlalchemy import select, update

from factories import PASSWORD, auth
from sealkeeper.audit.models import SecurityEvent
from sealkeeper.pki.models import CertStatus, SealCertificate
from sealkeeper.runtime import Runtime
from sealkeeper.seals.models import Seal
from sealkeeper.signing.service import CERT_SKEW
from sealkeeper.web.app import create_app


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(runtime, engine, clock) -> Iterator[TestClient]:
    """The app on a clock the test moves."""
    rt = Runtime.build(runtime.settings, engine=engine, clock=clock, keystore=runtime.keystore)
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def ledger(engine, world) -> Ledger:
    return Ledger(engine, world.a.id)


def d(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def set_pw(client, token, pw="1234"):
    r = client.post("/api/v1/me/approval-password", headers=auth(token),
                    json={"approval_password": pw})
    assert r.status_code == 201, r.text


def sign(client, token, seal, *, digests=(b"doc",), password=None, approval=None):
    body = {"seal_id": seal, "documents": [{"file_name": f"f{i}.pdf", "digest": d(x)}
                                           for i, x in enumerate(digests)]}
    if approval is not None:
        body["approval"] = approval
    else:
        body["approval_password"] = password or "1234"
    return client.post("/api/v1/sign", headers=auth(token), json=body)


def approve(client, token, seal, digests=(b"doc",), pw="1234"):
    return client.post("/api/v1/approvals", headers=auth(token), json={
        "seal_id": seal, "digests": [d(x) for x in digests], "approval_password": pw})


def csc_authorize(client, token, seal, digests=(b"doc",), pin="1234", version="v2"):
    return client.post(f"/csc/{version}/credentials/authorize", headers=auth(token), json={
        "credentialID": seal, "numSignatures": len(digests), "hashes": [d(x) for x in digests],
        "hashAlgorithmOID": SHA256_OID, "authData": [{"id": "PIN", "value": pin}]})


def csc_sign(client, token, seal, sad, digests=(b"doc",), version="v2"):
    return client.post(f"/csc/{version}/signatures/signHash", headers=auth(token), json={
        "credentialID": seal, "SAD": sad, "hashes": [d(x) for x in digests],
        "hashAlgorithmOID": SHA256_OID, "signAlgo": ECDSA_SHA256})


def csc_refused(r, *codes: int) -> None:
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    if codes:
        assert r.status_code in codes, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert set(body) == {"error", "error_description"}, body


def events(engine, since: int = 0) -> list[SecurityEvent]:
    with engine.connect() as c:
        rows = c.execute(select(SecurityEvent.action, SecurityEvent.reason,
                                SecurityEvent.user_id, SecurityEvent.seal_id,
                                SecurityEvent.organization_id, SecurityEvent.message,
                                SecurityEvent.api)
                         .order_by(SecurityEvent.created_at)).all()
    return list(rows)[since:]


# -- the approval password -----------------------------------------------------------


def test_brute_force_sequential_across_apis(app, world, ledger, engine):
    """Five wrong passwords through /sign, /approvals and CSC authorize lock
    every API; the right one is then refused too. Nothing is signed."""
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp, "4821")
    with ledger.unchanged(min_events=9) as before:
        attempts = [
            lambda pw: sign(app, emp, seal, password=pw),
            lambda pw: approve(app, emp, seal, pw=pw),
            lambda pw: csc_authorize(app, emp, seal, pin=pw),
            lambda pw: csc_authorize(app, emp, seal, pin=pw, version="v1"),
            lambda pw: sign(app, emp, seal, password=pw),
        ]
        for i, attempt in enumerate(attempts):
            r = attempt(f"{i:04d}")
            # native: 403 approval_refused; CSC: 400 invalid_pin / invalid_authentication_data
            assert r.status_code == (400 if i in (2, 3) else 403), r.text
        for attempt in attempts[:2]:
            r = attempt("4821")  # the right one, too late
            assert_refused(r, 423)
        for attempt in attempts[2:4]:
            csc_refused(attempt("4821"))
    st = app.get("/api/v1/me/approval-password", headers=auth(emp)).json()
    assert st["locked"] is True and st["remaining_attempts"] == 0
    new = events(engine, before.security_events)
    assert [e.reason for e in new[:5]] == ["approval_refused"] * 5
    assert {e.reason for e in new[5:]} == {"signing_locked"}
    assert all(e.user_id == a.users["employee"] and e.seal_id == seal for e in new)
    assert {e.api for e in new} == {"native", "csc-v1", "csc-v2"}
    for e in new:  # the messages name no password
        assert "4821" not in e.message and "0000" not in e.message


def test_brute_force_fifty_in_parallel(app, world, ledger, engine):
    """50 concurrent wrong passwords from a fresh count: exactly five are
    evaluated, the other 45 find signing locked; no 5xx, nothing signed, and
    all 50 are in the security log. (PostgreSQL, the server database: on the
    embedded SQLite every request takes the one write lock in turn.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrency runs on PostgreSQL")
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp, "4821")
    statuses: list[int] = []
    barrier = threading.Barrier(50)

    def one(i: int) -> None:
        barrier.wait()
        r = sign(app, emp, seal, password=f"{i + 1000:04d}") if i % 2 else \
            approve(app, emp, seal, pw=f"{i + 1000:04d}")
        statuses.append(r.status_code)

    with ledger.unchanged(min_events=50) as before:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [403] * 5 + [423] * 45, sorted(statuses)
        assert_refused(sign(app, emp, seal, password="4821"), 423)
    new = events(engine, before.security_events)
    assert len(new) == 51
    assert sorted(e.reason for e in new).count("approval_refused") == 5


# -- approvals replayed ----------------------------------------------------------------


def test_native_approval_replays(app, world, ledger, engine, clock):
    a = world.a
    emp, emp2 = a.tokens["employee"], a.tokens["employee2"]
    set_pw(app, emp)
    set_pw(app, emp2)
    eseal = auth(a.tokens["eseal_admin"])
    for seal, who in (("contract", "employee2"), ("invoice", "employee")):
        assert app.post(f"/api/v1/seals/{a.seals[seal]}/grants", headers=eseal,
                        json={"user_id": a.users[who]}).status_code == 201
    contract, invoice = a.seals["contract"], a.seals["invoice"]
    ap = approve(app, emp, contract, (b"h1", b"h2")).json()["approval"]
    b_emp = world.b.tokens["employee"]
    with ledger.unchanged(min_events=7):
        assert_refused(sign(app, emp, contract, digests=(b"h1", b"h3"), approval=ap), 403)
        assert_refused(sign(app, emp, contract, digests=(b"h1",), approval=ap), 403)  # subset
        assert_refused(sign(app, emp, contract, digests=(b"h1", b"h2", b"h2"), approval=ap),
                       403)
        assert_refused(sign(app, emp, invoice, digests=(b"h1", b"h2"), approval=ap), 403)
        assert_refused(sign(app, emp2, contract, digests=(b"h1", b"h2"), approval=ap), 403)
        assert_refused(sign(app, b_emp, contract, digests=(b"h1", b"h2"), approval=ap), 404)
        # The SAD of the native API is no CSC SAD for another seal either.
        csc_refused(csc_sign(app, emp, invoice, ap, (b"h1", b"h2")))
    r = sign(app, emp, contract, digests=(b"h2", b"h1"), approval=ap)  # order is free
    assert r.status_code == 200, r.text
    with ledger.unchanged(min_events=2):
        assert_refused(sign(app, emp, contract, digests=(b"h1", b"h2"), approval=ap), 403)
        csc_refused(csc_sign(app, emp, contract, ap, (b"h1", b"h2")))
        # Expiry, by the server's clock.
        ap = approve(app, emp, contract).json()["approval"]
        clock.now += timedelta(seconds=app.app.state.runtime.settings.approval_ttl_seconds)
        r = sign(app, emp, contract, approval=ap)
        assert_refused(r, 403)
        assert "expired" in r.json()["message"]


def test_csc_sad_replays(app, world, ledger, engine, clock):
    a = world.a
    emp, emp2 = a.tokens["employee"], a.tokens["employee2"]
    set_pw(app, emp)
    set_pw(app, emp2)
    eseal = auth(a.tokens["eseal_admin"])
    assert app.post(f"/api/v1/seals/{a.seals['invoice']}/grants", headers=eseal,
                    json={"user_id": a.users["employee"]}).status_code == 201
    assert app.post(f"/api/v1/seals/{a.seals['contract']}/grants", headers=eseal,
                    json={"user_id": a.users["employee2"]}).status_code == 201
    contract, invoice = a.seals["contract"], a.seals["invoice"]
    sad = csc_authorize(app, emp, contract, (b"x1",)).json()["SAD"]
    with ledger.unchanged(min_events=3):
        csc_refused(csc_sign(app, emp, contract, sad, (b"x2",)))            # another hash
        csc_refused(csc_sign(app, emp, invoice, sad, (b"x1",)))             # another seal
        csc_refused(csc_sign(app, emp2, contract, sad, (b"x1",)))           # another user
        csc_refused(csc_sign(app, world.b.tokens["employee"], contract, sad, (b"x1",)))
    # The SAD survives those refusals (v2 SAD, v1 path: same credential, same hash).
    assert csc_sign(app, emp, contract, sad, (b"x1",), version="v1").status_code == 200
    with ledger.unchanged(min_events=2):
        csc_refused(csc_sign(app, emp, contract, sad, (b"x1",)))            # reuse
        # ...nor as a native approval after its use.
        assert_refused(sign(app, emp, contract, digests=(b"x1",), approval=sad), 403)
    sad = csc_authorize(app, emp, contract, (b"x3",)).json()["SAD"]
    clock.now += timedelta(seconds=301)
    with ledger.unchanged(min_events=2):
        r = csc_sign(app, emp, contract, sad, (b"x3",))
        csc_refused(r)
        assert "expired" in r.json()["error_description"]
        r = app.post("/csc/v2/credentials/extendTransaction", headers=auth(emp), json={
            "credentialID": contract, "SAD": sad})
        csc_refused(r)


# -- state changes between the approval and the signature ----------------------------------


@pytest.mark.parametrize("change", ["grant_withdrawn", "seal_disabled", "employee_deleted",
                                    "password_reset"])
def test_change_between_approval_and_signing(change, app, world, ledger, engine):
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp)
    ap = approve(app, emp, seal, (b"n1",)).json()["approval"]
    sad = csc_authorize(app, emp, seal, (b"c1",)).json()["SAD"]
    eseal = auth(a.tokens["eseal_admin"])
    admin = auth(a.tokens["account_admin"])
    if change == "grant_withdrawn":
        r = app.delete(f"/api/v1/seals/{seal}/grants/{a.users['employee']}", headers=eseal)
    elif change == "seal_disabled":
        r = app.post(f"/api/v1/seals/{seal}/disable", headers=eseal)
    elif change == "employee_deleted":
        r = app.delete(f"/api/v1/organizations/{a.id}/employees/{a.users['employee']}",
                       headers=admin)
    else:
        r = app.post("/api/v1/me/approval-password/reset", headers=auth(emp),
                     json={"approval_password": "9753", "account_password": PASSWORD})
    assert r.status_code == 200, r.text
    with ledger.unchanged(min_events=2) as before:
        assert_refused(sign(app, emp, seal, digests=(b"n1",), approval=ap))
        csc_refused(csc_sign(app, emp, seal, sad, (b"c1",)))
    new = events(engine, before.security_events)
    assert {e.user_id for e in new} == {a.users["employee"]}
    assert all(e.organization_id == a.id for e in new), new


# -- the seal's certificate ---------------------------------------------------------------


def _edit_certificate(engine, seal_id: str, **values) -> None:
    with engine.begin() as c:
        pk = c.scalar(select(Seal.id).where(Seal.seal_id == seal_id))
        c.execute(update(SealCertificate).where(SealCertificate.seal_pk == pk,
                                                SealCertificate.is_current)
                  .values(**values))


@pytest.mark.parametrize("state", ["expired", "not_yet_valid", "revoked"])
def test_unusable_certificate_refuses_signing(state, app, world, ledger, engine, clock):
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp)
    ap = approve(app, emp, seal, (b"z",)).json()["approval"]
    sad = csc_authorize(app, emp, seal, (b"z",)).json()["SAD"]
    just_outside = CERT_SKEW + timedelta(seconds=5)
    values = {"expired": {"not_after": clock.now - just_outside},
              "not_yet_valid": {"not_before": clock.now + just_outside},
              "revoked": {"status": CertStatus.REVOKED, "revoked_at": clock.now}}[state]
    _edit_certificate(engine, seal, **values)
    with ledger.unchanged(min_events=4) as before:
        assert_refused(sign(app, emp, seal, digests=(b"z",), approval=ap), 409)
        assert_refused(sign(app, emp, seal, digests=(b"z",)), 409)
        assert_refused(approve(app, emp, seal, (b"y",)), 409)
        csc_refused(csc_sign(app, emp, seal, sad, (b"z",)))
    word = {"expired": "expired", "not_yet_valid": "not valid yet", "revoked": "revoked"}[state]
    assert all(word in e.message for e in events(engine, before.security_events))


def test_seal_revoked_through_the_api_refuses_signing(app, world, ledger, engine):
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp)
    ap = approve(app, emp, seal, (b"z",)).json()["approval"]
    r = app.post(f"/api/v1/seals/{seal}/revoke", headers=auth(a.tokens["eseal_admin"]),
                 json={"reason": "key_compromise"})
    assert r.status_code == 200, r.text
    with ledger.unchanged(min_events=2):
        assert_refused(sign(app, emp, seal, digests=(b"z",), approval=ap), 409)
        assert_refused(sign(app, emp, seal, digests=(b"z",)), 409)


def test_certificate_validity_tolerates_five_minutes_of_skew(app, world, ledger, engine,
                                                             clock):
    """The documented tolerance (docs/operations.md): a certificate that became
    valid up to CERT_SKEW ahead of this server's clock, or expired up to CERT_SKEW
    ago, still signs."""
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp)
    inside = CERT_SKEW - timedelta(seconds=5)
    _edit_certificate(engine, seal, not_before=clock.now + inside)
    assert sign(app, emp, seal, digests=(b"early",)).status_code == 200
    _edit_certificate(engine, seal, not_before=clock.now - timedelta(days=1),
                      not_after=clock.now - inside)
    assert sign(app, emp, seal, digests=(b"late",)).status_code == 200


# -- quota -----------------------------------------------------------------------------------


def test_batch_larger_than_the_remaining_quota_is_refused_whole(app, world, ledger, engine):
    a = world.a
    emp, seal = a.tokens["employee"], a.seals["contract"]
    set_pw(app, emp)
    ledger.set_balance(3)
    docs = tuple(f"q{i}".encode() for i in range(5))
    sad = csc_authorize(app, emp, seal, docs).json()["SAD"]
    with ledger.unchanged(min_events=2) as before:
        r = sign(app, emp, seal, digests=docs)
        assert_refused(r, 402)
        assert "quota" in r.json()["message"]
        r = csc_sign(app, emp, seal, sad, docs)
        csc_refused(r, 403)
        assert "quota" in r.json()["error_description"]
    assert {e.reason for e in events(engine, before.security_events)} == {"quota_exhausted"}
    # The SAD was not spent by the refusal; nor was anything else.
    r = sign(app, emp, seal, digests=docs[:3])
    assert r.status_code == 200, r.text
    after = ledger.state()
    assert after.balance == 0 and after.signatures == before.signatures + 3
    with ledger.unchanged(min_events=1):
        assert_refused(sign(app, emp, seal, digests=(b"one more",)), 402)


# -- another organization's ids ---------------------------------------------------------------


def test_every_route_with_another_organizations_ids_changes_nothing(client, world, runtime,
                                                                    engine):
    """Members of B (and an outsider) call every API route with A's ids: refused
    as the authorization table says, and A's quota, log and B's are untouched.
    The signing routes also leave a security event."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
    from test_authorization import CASES, Case, call, expected, extras

    ids = extras(runtime, world, Case("POST", "/api/v1/decrypt", set()))
    ledger_a, ledger_b = Ledger(engine, world.a.id), Ledger(engine, world.b.id)
    toks = {"b.account_admin": world.b.tokens["account_admin"],
            "b.eseal_admin": world.b.tokens["eseal_admin"],
            "b.employee": world.b.tokens["employee"], "outsider": world.outsider_token}
    for tok in toks.values():
        if tok != world.outsider_token:
            set_pw(client, tok, "1234")
    a_before, b_before = ledger_a.state(), ledger_b.state()
    signing_calls = 0
    for case in CASES:
        if any(f"{{{k}}}" in case.path and not v for k, v in ids.items()):
            continue  # needs an object these ids do not include (operator-only routes)
        for role, tok in toks.items():
            want = expected(case, role)
            if want < 400:  # allowed for anyone (e.g. /me routes): not A's data
                continue
            r = call(client, case, ids, tok)
            assert r.status_code == want, f"{case.id} as {role}: {r.status_code} {r.text}"
            signing_calls += case.path in ("/api/v1/sign", "/api/v1/approvals",
                                           "/api/v1/decrypt") and role != "outsider"
    for case in ({"credentialID": world.a.seals["contract"]},):
        for method in ("credentials/info", "credentials/authorize", "signatures/signHash",
                       "credentials/extendTransaction"):
            for role, tok in toks.items():
                body = {**case, "numSignatures": 1, "hashes": [d(b"x")],
                        "hashAlgorithmOID": SHA256_OID, "SAD": "ska_" + "x" * 40,
                        "signAlgo": ECDSA_SHA256, "authData": [{"id": "PIN", "value": "1234"}]}
                r = client.post(f"/csc/v2/{method}", headers=auth(tok), json=body)
                csc_refused(r)
                assert "SEAL" not in r.text or "credentialID" in r.text
    a_after, b_after = ledger_a.state(), ledger_b.state()
    assert (a_after.balance, a_after.log_size) == (a_before.balance, a_before.log_size)
    assert (b_after.balance, b_after.log_size) == (b_before.balance, b_before.log_size)
    assert a_after.security_events >= a_before.security_events + signing_calls
