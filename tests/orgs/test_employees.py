"""Deleting an employee: grants withdrawn, tokens disabled, personal seal
revoked, all in one transaction; the records stay."""

from __future__ import annotations

import pytest

from factories import auth
from sealkeeper.accounts.models import ApiToken, User, UserStatus
from sealkeeper.seals.models import Grant, SealStatus
from sealkeeper.services import UnitOfWork


def test_delete_employee_withdraws_everything(client, world, runtime):
    a = world.a
    admin, eseal = auth(a.tokens["account_admin"]), auth(a.tokens["eseal_admin"])
    emp = a.users["employee"]
    # a second grant so that "every grant" means more than one
    r = client.post(f"/api/v1/seals/{a.seals['invoice']}/grants", headers=eseal,
                    json={"user_id": emp})
    assert r.status_code == 201
    assert client.get("/api/v1/me", headers=auth(a.tokens["employee"])).status_code == 200

    r = client.delete(f"/api/v1/organizations/{a.id}/employees/{emp}", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deleted"

    # The token no longer works, right after the deleting request returned.
    r = client.get("/api/v1/me", headers=auth(a.tokens["employee"]))
    assert r.status_code == 401
    # Grants are withdrawn but still listed as history.
    for seal in ("contract", "invoice"):
        rows = client.get(f"/api/v1/seals/{a.seals[seal]}/grants?include_withdrawn=true",
                          headers=eseal).json()
        mine = [g for g in rows if g["user_id"] == emp]
        assert len(mine) == 1 and mine[0]["withdrawn_at"] is not None
        active = client.get(f"/api/v1/seals/{a.seals[seal]}/grants", headers=eseal).json()
        assert emp not in {g["user_id"] for g in active}
    # The employee record and their personal seal remain, revoked.
    r = client.get(f"/api/v1/organizations/{a.id}/employees/{emp}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    seals = client.get(f"/api/v1/organizations/{a.id}/seals", headers=admin).json()
    personal = [s for s in seals if s["seal_id"] == a.personal["employee"]]
    assert personal and personal[0]["status"] == "revoked"
    # Deleting again is a clear conflict.
    r = client.delete(f"/api/v1/organizations/{a.id}/employees/{emp}", headers=admin)
    assert r.status_code == 409


def test_delete_is_one_transaction(world, runtime):
    """If any step fails (here the certificate revocation hook), nothing changes."""
    a = world.a
    emp = a.users["employee"]

    def failing_revoke(seal, now, reason):
        raise RuntimeError("CA unreachable")

    uow = UnitOfWork(runtime)
    try:
        uow.seals._on_revoke = failing_revoke
        admin = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["account_admin"]))
        with pytest.raises(RuntimeError):
            uow.employees.delete(admin, a.id, emp)
        uow.rollback()
    finally:
        uow.close()
    uow = UnitOfWork(runtime)
    try:
        s = uow.session
        assert s.get(User, emp).status == UserStatus.ACTIVE
        assert s.query(Grant).filter_by(user_id=emp, withdrawn_at=None).count() == 1
        assert s.query(ApiToken).filter_by(user_id=emp, revoked_at=None).count() == 1
        personal = uow.seals.personal_seal_of(emp)
        assert personal is not None and personal.status == SealStatus.ACTIVE
    finally:
        uow.close()


def test_cannot_delete_the_administrators(client, world):
    a = world.a
    admin = auth(a.tokens["account_admin"])
    for role in ("account_admin", "eseal_admin"):
        r = client.delete(f"/api/v1/organizations/{a.id}/employees/{a.users[role]}",
                          headers=admin)
        assert r.status_code == 409, r.text


def test_grants_need_validated_employees_of_the_same_org(client, world):
    a, b = world.a, world.b
    eseal = auth(a.tokens["eseal_admin"])
    seal = a.seals["financial"]
    # another organization's employee: not found
    r = client.post(f"/api/v1/seals/{seal}/grants", headers=eseal,
                    json={"user_id": b.users["employee"]})
    assert r.status_code == 404
    # an invited (not yet validated) employee: refused
    admin = auth(a.tokens["account_admin"])
    inv = client.post(f"/api/v1/organizations/{a.id}/employees", headers=admin,
                      json={"email": "new@alpha.example", "display_name": "New"}).json()
    r = client.post(f"/api/v1/seals/{seal}/grants", headers=eseal, json={"user_id": inv["id"]})
    assert r.status_code == 409 and "validated" in r.json()["message"]
    # a personal e-signature cannot be granted
    r = client.post(f"/api/v1/seals/{a.personal['employee']}/grants", headers=eseal,
                    json={"user_id": a.users["employee2"]})
    assert r.status_code == 400
    # by email works, any number of seals per employee and employees per seal
    for s in ("financial", "official"):
        for who in ("employee", "employee2"):
            r = client.post(f"/api/v1/seals/{a.seals[s]}/grants", headers=eseal,
                            json={"email": a.emails[who]})
            assert r.status_code == 201, r.text
    mine = client.get("/api/v1/me/seals", headers=auth(a.tokens["employee2"])).json()
    assert {s["type"] for s in mine} == {"financial", "official", "personal"}


def test_withdrawn_grant_and_disabled_seal_take_effect_at_once(client, world):
    a = world.a
    eseal, emp = auth(a.tokens["eseal_admin"]), auth(a.tokens["employee"])
    seal = a.seals["contract"]
    assert seal in {s["seal_id"] for s in client.get("/api/v1/me/seals", headers=emp).json()}
    r = client.post(f"/api/v1/seals/{seal}/disable", headers=eseal)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    mine = {s["seal_id"]: s["status"] for s in
            client.get("/api/v1/me/seals", headers=emp).json()}
    assert mine[seal] == "disabled"
    assert client.post(f"/api/v1/seals/{seal}/enable", headers=eseal).json()["status"] == "active"
    assert client.delete(f"/api/v1/seals/{seal}/grants/{a.users['employee']}",
                         headers=eseal).status_code == 200
    assert seal not in {s["seal_id"] for s in client.get("/api/v1/me/seals", headers=emp).json()}
    assert client.get(f"/api/v1/seals/{seal}", headers=emp).status_code == 404


def test_delete_revokes_the_encryption_keys(world, runtime):
    from sealkeeper.encryption.models import EncryptionKey, EncryptionKeyStatus

    a = world.a
    uow = UnitOfWork(runtime)
    try:
        colleague = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["employee2"]))
        uow.encryption.lookup_user(colleague, a.emails["employee"])  # creates the key
        admin = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["account_admin"]))
        uow.employees.delete(admin, a.id, a.users["employee"])
        uow.commit()
        keys = uow.session.query(EncryptionKey).filter_by(user_id=a.users["employee"]).all()
        assert keys and all(k.status == EncryptionKeyStatus.REVOKED for k in keys)
        # Relying parties outside sealkeeper see it: the issuing CA's CRL lists the
        # encryption certificate and OCSP answers revoked (affiliationChanged).
        from cryptography import x509

        from sealkeeper.pki.models import CaRole

        crl = x509.load_der_x509_crl(uow.pki.crl(CaRole.ISSUING))
        for k in keys:
            serial = int(k.serial, 16)
            entry = crl.get_revoked_certificate_by_serial_number(serial)
            assert entry is not None
            assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
                == x509.ReasonFlags.affiliation_changed
            assert uow.pki.status_of(serial).status == "revoked"
        # A colleague's live encryption certificate is good, and not in the CRL.
        uow.encryption.lookup_user(colleague, a.emails["employee2"])
        live = uow.session.query(EncryptionKey).filter_by(user_id=a.users["employee2"]).one()
        assert uow.pki.status_of(int(live.serial, 16)).status == "good"
        assert crl.get_revoked_certificate_by_serial_number(int(live.serial, 16)) is None
    finally:
        uow.close()
