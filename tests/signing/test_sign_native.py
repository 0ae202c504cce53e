"""The native signing API: password, approvals, lockout, quota, the CMS it returns."""

from __future__ import annotations

import base64
import hashlib
import subprocess

import pytest
from asn1crypto import cms

from factories import auth


def _digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _set_pw(client, token, pw="1234"):
    r = client.post("/api/v1/me/approval-password", headers=auth(token),
                    json={"approval_password": pw})
    assert r.status_code == 201, r.text


def test_sign_with_password_returns_verifiable_cms(client, world, tmp_path):
    a = world.a
    emp = a.tokens["employee"]
    _set_pw(client, emp)
    data = b"hello contract"
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        "seal_id": a.seals["contract"], "approval_password": "1234",
        "documents": [{"file_name": "c.pdf", "digest": _digest(data)}]})
    assert r.status_code == 200, r.text
    out = r.json()
    sig = base64.b64decode(out["signatures"][0]["cms"])
    info = cms.ContentInfo.load(sig)
    attrs = {a["type"].native: a["values"][0].native
             for a in info["content"]["signer_infos"][0]["signed_attrs"]}
    assert attrs["message_digest"] == hashlib.sha256(data).digest()
    assert "signing_time" in attrs and "signing_certificate_v2" in attrs
    chain = [base64.b64decode(c) for c in out["certificate_chain"]]
    (tmp_path / "doc.bin").write_bytes(data)
    (tmp_path / "sig.der").write_bytes(sig)
    (tmp_path / "root.der").write_bytes(chain[-1])
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", tmp_path / "root.der",
                    "-out", tmp_path / "root.pem"], check=True)
    res = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                          tmp_path / "sig.der", "-content", tmp_path / "doc.bin", "-CAfile",
                          tmp_path / "root.pem", "-purpose", "any", "-out", "/dev/null"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_wrong_password_lockout(client, world):
    a = world.a
    emp = a.tokens["employee"]
    _set_pw(client, emp, "4321")
    body = {"seal_id": a.seals["contract"], "approval_password": "0000",
            "documents": [{"file_name": "x", "digest": _digest(b"x")}]}
    for _ in range(5):
        r = client.post("/api/v1/sign", headers=auth(emp), json=body)
        assert r.status_code == 403, r.text
    r = client.post("/api/v1/sign", headers=auth(emp), json={**body, "approval_password": "4321"})
    assert r.status_code == 423, r.text
    st = client.get("/api/v1/me/approval-password", headers=auth(emp)).json()
    assert st["locked"] is True
    events = client.get(f"/api/v1/organizations/{a.id}/security-events",
                        headers=auth(a.tokens["eseal_admin"]))
    if events.status_code == 200:
        items = events.json()["items"] if isinstance(events.json(), dict) else events.json()
        assert len(items) >= 6
    # reset with a fresh login
    r = client.post("/api/v1/me/approval-password/reset", headers=auth(emp),
                    json={"approval_password": "5555", "account_password": "wrong password"})
    assert r.status_code == 401
    r = client.post("/api/v1/me/approval-password/reset", headers=auth(emp),
                    json={"approval_password": "5555",
                          "account_password": "correct horse battery"})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/sign", headers=auth(emp), json={**body, "approval_password": "5555"})
    assert r.status_code == 200, r.text


def test_approval_bound_to_hashes_once(client, world):
    a = world.a
    emp = a.tokens["employee"]
    _set_pw(client, emp)
    h1, h2 = _digest(b"one"), _digest(b"two")
    r = client.post("/api/v1/approvals", headers=auth(emp), json={
        "seal_id": a.seals["contract"], "digests": [h1], "approval_password": "1234"})
    assert r.status_code == 201, r.text
    token = r.json()["approval"]
    sign = {"seal_id": a.seals["contract"], "approval": token}
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        **sign, "documents": [{"file_name": "2", "digest": h2}]})
    assert r.status_code == 403 and r.json()["error"] == "approval_refused"
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        **sign, "documents": [{"file_name": "1", "digest": h1}]})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        **sign, "documents": [{"file_name": "1", "digest": h1}]})
    assert r.status_code == 403


def test_quota_refuses_whole_batch(client, world, runtime):
    from sealkeeper.orgs.models import Organization
    from sealkeeper.services import UnitOfWork

    a = world.a
    uow = UnitOfWork(runtime)
    uow.session.get(Organization, a.id).quota_balance = 2
    uow.commit()
    uow.close()
    emp = a.tokens["employee"]
    _set_pw(client, emp)
    docs = [{"file_name": str(i), "digest": _digest(bytes([i]))} for i in range(3)]
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        "seal_id": a.seals["contract"], "approval_password": "1234", "documents": docs})
    assert r.status_code == 402, r.text
    q = client.get(f"/api/v1/organizations/{a.id}/quota", headers=auth(a.tokens["account_admin"]))
    assert q.json()["balance"] == 2
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        "seal_id": a.seals["contract"], "approval_password": "1234", "documents": docs[:2]})
    assert r.status_code == 200
    assert [s["log_seq"] for s in r.json()["signatures"]] == sorted(
        s["log_seq"] for s in r.json()["signatures"])


@pytest.mark.parametrize("doc,field", [
    ({"file_name": "x", "digest": "AAAA"}, "documents[0].digest"),
    ({"file_name": "x", "digest": "***"}, "documents[0].digest"),
    ({"file_name": "x", "digest": _digest(b"x"), "digest_algorithm": "sha1"},
     "documents[0].digest_algorithm"),
    ({"file_name": "x", "digest": _digest(b"x"), "digest_algorithm": "md5"},
     "documents[0].digest_algorithm"),
    ({"file_name": "x", "digest": _digest(b"x"), "digest_algorithm": "whirlpool"},
     "documents[0].digest_algorithm"),
])
def test_bad_digests(client, world, doc, field):
    emp = world.a.tokens["employee"]
    r = client.post("/api/v1/sign", headers=auth(emp), json={
        "seal_id": world.a.seals["contract"], "approval_password": "1234", "documents": [doc]})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_empty_and_oversized_batches(client, world):
    emp = world.a.tokens["employee"]
    base = {"seal_id": world.a.seals["contract"], "approval_password": "1234"}
    r = client.post("/api/v1/sign", headers=auth(emp), json={**base, "documents": []})
    assert r.status_code == 400 and r.json()["field"] == "documents"
    docs = [{"file_name": str(i), "digest": _digest(str(i).encode())} for i in range(101)]
    r = client.post("/api/v1/sign", headers=auth(emp), json={**base, "documents": docs})
    assert r.status_code == 400 and r.json()["field"] == "documents"
