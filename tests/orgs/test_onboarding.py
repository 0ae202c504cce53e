"""The organization story over the API, with mail through a real SMTP server."""

from __future__ import annotations

import hashlib

from factories import auth

PDF = b"%PDF-1.7\n% authorization letter\n%%EOF\n"


def _signup(client, email: str) -> str:
    r = client.post("/api/v1/signup", json={"email": email, "password": "a long password",
                                            "display_name": "Founder"})
    assert r.status_code == 201, r.text
    return r.json()["token"]["token"]


def _apply(client, token: str, **over):
    data = {"legal_name": "Delta Ltd", "registration_number": "D-77",
            "domains": "delta.example, mail.delta.example",
            "eseal_admin_email": "seals@delta.example", **over}
    return client.post("/api/v1/organizations", headers=auth(token), data=data,
                       files={"letter": ("letter.pdf", PDF, "application/pdf")})


def test_apply_approve_validate_grant(smtp_client, mailbox, world):
    client = smtp_client
    op = auth(world.operator_token)
    founder = _signup(client, "founder@delta.example")
    r = _apply(client, founder)
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["status"] == "pending" and org["eseal_admin_id"] is None
    letters = client.get(f"/api/v1/organizations/{org['id']}/letters", headers=op).json()
    assert letters[0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert client.get(f"/api/v1/organizations/{org['id']}/letters/{letters[0]['id']}/file",
                      headers=op).content == PDF
    pending = client.get("/api/v1/organizations?status=pending", headers=op).json()
    assert org["id"] in {o["id"] for o in pending}
    # no seals before validation
    assert client.get(f"/api/v1/organizations/{org['id']}/seals",
                      headers=auth(founder)).status_code == 200
    assert client.get(f"/api/v1/organizations/{org['id']}/seals",
                      headers=auth(founder)).json() == []

    r = client.post(f"/api/v1/organizations/{org['id']}/approve", headers=op)
    assert r.status_code == 200 and r.json()["status"] == "validated"
    seals = client.get(f"/api/v1/organizations/{org['id']}/seals", headers=auth(founder)).json()
    assert sorted(s["type"] for s in seals) == sorted(
        ["official", "authorized_signature", "contract", "employment_agreement", "financial",
         "invoice"])
    assert len({s["seal_id"] for s in seals}) == 6

    # The designated mailbox got its validation link.
    token = mailbox.link_token("seals@delta.example")
    r = client.post("/api/v1/employees/validate",
                    json={"token": token, "password": "another long one"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = client.post("/api/v1/employees/validate",
                    json={"token": token, "password": "another long one"})
    assert r.status_code == 400  # one-time
    eseal = client.post("/api/v1/auth/token", json={"email": "seals@delta.example",
                                                    "password": "another long one"})
    assert eseal.status_code == 201
    eseal_h = auth(eseal.json()["token"])
    assert "eseal_admin" in client.get("/api/v1/me", headers=eseal_h).json()["roles"]

    # Employees need a validated domain.
    r = client.post(f"/api/v1/organizations/{org['id']}/employees", headers=auth(founder),
                    json={"email": "erin@delta.example", "display_name": "Erin"})
    assert r.status_code == 400
    r = client.post(f"/api/v1/organizations/{org['id']}/domains/delta.example/validate",
                    headers=op)
    assert r.status_code == 200 and r.json()["status"] == "validated"
    r = client.post(f"/api/v1/organizations/{org['id']}/employees", headers=auth(founder),
                    json={"email": "erin@delta.example", "display_name": "Erin"})
    assert r.status_code == 201
    erin_id = r.json()["id"]
    r = client.post("/api/v1/employees/validate",
                    json={"token": mailbox.link_token("erin@delta.example"),
                          "password": "erin's password"})
    assert r.status_code == 200
    erin = auth(client.post("/api/v1/auth/token", json={
        "email": "erin@delta.example", "password": "erin's password"}).json()["token"])
    mine = client.get("/api/v1/me/seals", headers=erin).json()
    assert [s["type"] for s in mine] == ["personal"]

    contract = next(s["seal_id"] for s in seals if s["type"] == "contract")
    r = client.post(f"/api/v1/seals/{contract}/grants", headers=eseal_h,
                    json={"user_id": erin_id})
    assert r.status_code == 201
    assert contract in {s["seal_id"] for s in client.get("/api/v1/me/seals", headers=erin).json()}


def test_reject_with_reason_and_reapply(smtp_client, mailbox, world):
    client = smtp_client
    op = auth(world.operator_token)
    founder = _signup(client, "founder@delta.example")
    org = _apply(client, founder).json()
    r = client.post(f"/api/v1/organizations/{org['id']}/reject", headers=op, json={"reason": ""})
    assert r.status_code == 400
    r = client.post(f"/api/v1/organizations/{org['id']}/reject", headers=op,
                    json={"reason": "registration number does not match"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert "registration number does not match" in \
        mailbox.to("founder@delta.example")[-1].get_payload(decode=True).decode()
    # decided: cannot be approved any more
    assert client.post(f"/api/v1/organizations/{org['id']}/approve",
                       headers=op).status_code == 409
    r = _apply(client, founder, registration_number="D-78")
    assert r.status_code == 201


def test_bad_applications(client, world):
    token = world.outsider_token
    r = _apply(client, token, eseal_admin_email="boss@gmail.example")
    assert r.status_code == 400 and r.json()["field"] == "eseal_admin_email"
    r = _apply(client, token, domains="not a domain")
    assert r.status_code == 400 and r.json()["field"] == "domains"
    r = client.post("/api/v1/organizations", headers=auth(token),
                    data={"legal_name": "X", "registration_number": "1", "domains": "x.example",
                          "eseal_admin_email": "a@x.example"},
                    files={"letter": ("l.pdf", b"<html>not a pdf</html>", "application/pdf")})
    assert r.status_code == 400 and r.json()["field"] == "letter"
    # A member of an organization cannot apply again.
    r = _apply(client, world.a.tokens["employee"])
    assert r.status_code == 409


def test_change_of_eseal_administrator(client, world):
    """A new letter, approved by the operator, moves the position at once; there is
    exactly one e-seal administrator before, during and after."""
    a = world.a
    op, admin = auth(world.operator_token), auth(a.tokens["account_admin"])
    old, new = auth(a.tokens["eseal_admin"]), auth(a.tokens["employee2"])
    r = client.post(f"/api/v1/organizations/{a.id}/letters", headers=admin,
                    data={"eseal_admin_email": a.emails["employee2"]},
                    files={"letter": ("new.pdf", PDF, "application/pdf")})
    assert r.status_code == 201, r.text
    letter = r.json()
    # Until the operator decides, nothing changes.
    assert "eseal_admin" in client.get("/api/v1/me", headers=old).json()["roles"]
    assert "eseal_admin" not in client.get("/api/v1/me", headers=new).json()["roles"]
    assert client.post(f"/api/v1/seals/{a.seals['invoice']}/grants", headers=new,
                       json={"user_id": a.users["employee"]}).status_code == 403
    # The account administrator cannot approve their own letter.
    assert client.post(f"/api/v1/organizations/{a.id}/letters/{letter['id']}/approve",
                       headers=admin).status_code == 403
    r = client.post(f"/api/v1/organizations/{a.id}/letters/{letter['id']}/approve", headers=op)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert "eseal_admin" not in client.get("/api/v1/me", headers=old).json()["roles"]
    assert "eseal_admin" in client.get("/api/v1/me", headers=new).json()["roles"]
    assert client.post(f"/api/v1/seals/{a.seals['invoice']}/grants", headers=old,
                       json={"user_id": a.users["employee"]}).status_code == 403
    assert client.post(f"/api/v1/seals/{a.seals['invoice']}/grants", headers=new,
                       json={"user_id": a.users["employee"]}).status_code == 201
    org = client.get(f"/api/v1/organizations/{a.id}", headers=admin).json()
    assert org["eseal_admin_id"] == a.users["employee2"]
