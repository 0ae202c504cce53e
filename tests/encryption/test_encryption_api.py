"""The encryption service through the API and the SDK (SQLite and PostgreSQL):
the directory, client-side encryption, the cloud key unwrap with its usage-log
entry, openssl and pyHanko interoperability, grants for the organization's
key, and every refusal with its security-log entry."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from encryption_helpers import (
    APPROVAL,
    current_key_row,
    decryption_entries,
    export_software_key,
    export_user_key,
    key_pem,
    openssl,
    runtime_master_key,
    security_events,
)
from fastapi.testclient import TestClient

from factories import World, auth
from sealkeeper.client import crypt
from sealkeeper.errors import ApprovalRefused, NotFound, PermissionDenied
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from pdfs import make_pdf

DATA = b"quarterly figures, confidential\n" * 40


def _set_password(client: TestClient, token: str, password: str = APPROVAL) -> None:
    r = client.post("/api/v1/me/approval-password", headers=auth(token),
                    json={"approval_password": password})
    assert r.status_code == 201, r.text


def _cert(client: TestClient, token: str, **query: str) -> x509.Certificate:
    r = client.get("/api/v1/directory", headers=auth(token), params=query)
    assert r.status_code == 200, r.text
    return x509.load_der_x509_certificate(base64.b64decode(r.json()["certificate"]))


def _info_for(blob: bytes, cert: x509.Certificate) -> bytes:
    infos = cms.ContentInfo.load(blob)["content"]["recipient_infos"]
    info = crypt.recipient_info_for(infos, cert)
    assert info is not None
    return info


def _decrypt(client: TestClient, token: str, info: bytes, password: str = APPROVAL,
             blob: bytes = b"x", name: str = "f.p7m"):
    return client.post("/api/v1/decrypt", headers=auth(token), json={
        "recipient_info": base64.b64encode(info).decode(), "file_name": name,
        "file_digest": base64.b64encode(hashlib.sha256(blob).digest()).decode(),
        "approval_password": password})


# --------------------------------------------------------------------------- directory


def test_directory(client: TestClient, world: World) -> None:
    a, b = world.a, world.b
    r = client.get("/api/v1/directory", headers=auth(a.tokens["employee"]),
                   params={"email": a.emails["employee2"]})
    assert r.status_code == 200, r.text
    entry = r.json()
    cert = x509.load_der_x509_certificate(base64.b64decode(entry["certificate"]))
    crypt.check_recipient_certificate(cert, email=a.emails["employee2"])
    assert entry["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert entry["owner"] == "user" and entry["email"] == a.emails["employee2"]
    assert len(entry["chain"]) == 2
    # The same key every time, and the one its owner decrypts with.
    again = client.get("/api/v1/directory", headers=auth(b.tokens["employee"]),
                       params={"email": a.emails["employee2"].upper()})
    assert again.status_code == 200 and again.json()["key_id"] == entry["key_id"]
    mine = client.get("/api/v1/me/encryption-keys", headers=auth(a.tokens["employee2"]))
    assert [k["key_id"] for k in mine.json()] == [entry["key_id"]]
    # Separate from the personal signing key.
    seals = client.get("/api/v1/me/seals", headers=auth(a.tokens["employee2"])).json()
    personal = next(s["seal_id"] for s in seals if s["type"] == "personal")
    chain = client.get(f"/api/v1/seals/{personal}/chain.pem",
                       headers=auth(a.tokens["employee2"]))
    signing = x509.load_pem_x509_certificates(chain.content)[0]
    assert signing.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
        cert.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)

    for email in ("nobody@alpha.example", "not-an-email"):
        r = client.get("/api/v1/directory", headers=auth(a.tokens["employee"]),
                       params={"email": email})
        assert r.status_code in (400, 404), r.text
    for token in (world.outsider_token, world.operator_token):
        r = client.get("/api/v1/directory", headers=auth(token),
                       params={"email": a.emails["employee"]})
        assert r.status_code == 403, r.text
    r = client.get("/api/v1/directory", headers=auth(a.tokens["employee"]))
    assert r.status_code == 400
    r = client.get("/api/v1/directory", headers=auth(a.tokens["employee"]),
                   params={"organization": a.id})
    assert r.status_code == 404  # no organization key yet


# --------------------------------------------------------------------------- round trips


def test_cms_round_trip_and_usage_log(client: TestClient, world: World, runtime: Runtime,
                                      sdk, tmp_path: Path) -> None:
    a = world.a
    _set_password(client, a.tokens["employee2"])
    src = tmp_path / "figures.csv"
    src.write_bytes(DATA)
    [enc] = sdk(a.tokens["employee"]).encrypt_files([src], to=[a.emails["employee2"]])
    assert enc == tmp_path / "figures.csv.p7m"
    blob = enc.read_bytes()
    assert DATA[:20] not in blob
    src.unlink()
    [out] = sdk(a.tokens["employee2"]).decrypt_files([enc], approval_password=APPROVAL)
    assert out == src and out.read_bytes() == DATA
    assert out.stat().st_mode & 0o077 == 0

    [entry] = decryption_entries(runtime, a.id)
    assert entry.user_id == a.users["employee2"] and entry.file_name == "figures.csv.p7m"
    assert entry.file_digest == hashlib.sha256(blob).hexdigest()
    assert entry.digest_algorithm == "sha256" and entry.api == "native"
    body = json.loads(entry.entry)
    assert body["key_id"] == current_key_row(runtime, a.users["employee2"]).id
    assert body["scheme"].startswith("ecdh-x963-sha256")
    # Shown in the organization's usage log.
    log = client.get(f"/api/v1/organizations/{a.id}/log",
                     headers=auth(a.tokens["account_admin"]), params={"kind": "decryption"})
    assert log.status_code == 200 and "figures.csv.p7m" in log.text


def test_openssl_decrypts_ours_and_we_decrypt_openssls(client: TestClient, world: World,
                                                        runtime: Runtime, sdk,
                                                        tmp_path: Path) -> None:
    a = world.a
    bob = sdk(a.tokens["employee2"])
    _set_password(client, a.tokens["employee2"])
    src = tmp_path / "report.txt"
    src.write_bytes(DATA)
    [enc] = sdk(a.tokens["employee"]).encrypt_files([src], to=[a.emails["employee2"]])
    key, cert = export_user_key(runtime, a.users["employee2"], tmp_path)
    r = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", enc,
                "-inkey", key, "-recip", cert)
    assert r.returncode == 0, r.stderr
    assert r.stdout == DATA

    (tmp_path / "our.pem").write_text(
        client.get("/api/v1/directory", headers=auth(a.tokens["employee"]),
                   params={"email": a.emails["employee2"]}).json()["certificate_pem"])
    smime = tmp_path / "from-openssl.p7m"
    r = openssl("cms", "-encrypt", "-aes256", "-binary", "-in", src, "-out", smime,
                "-recip", tmp_path / "our.pem")
    assert r.returncode == 0, r.stderr
    [out] = bob.decrypt_files([smime], approval_password=APPROVAL,
                              outputs=[tmp_path / "back.txt"])
    assert out.read_bytes() == DATA
    assert len(decryption_entries(runtime, a.id)) == 1


def test_pdf_opens_with_the_recipients_key_only(client: TestClient, world: World,
                                                 runtime: Runtime, sdk,
                                                 tmp_path: Path) -> None:
    from pyhanko.pdf_utils.crypt import AuthStatus, SimpleEnvelopeKeyDecrypter
    from pyhanko.pdf_utils.reader import PdfFileReader

    a = world.a
    src = tmp_path / "contract.pdf"
    src.write_bytes(make_pdf(2, text="Top secret contract"))
    [enc] = sdk(a.tokens["employee"]).encrypt_files([src], to=[a.emails["employee2"]])
    assert enc.name == "contract-encrypted.pdf"
    assert b"Top secret contract" not in enc.read_bytes()
    sdk(a.tokens["employee"]).my_encryption_keys()  # alice's own key, for the negative case

    def opens(user: str) -> bool:
        row = current_key_row(runtime, a.users[user])
        key = export_software_key(runtime_master_key(runtime), row.key_ref)
        (tmp_path / "k.pem").write_bytes(key_pem(key))
        (tmp_path / "c.der").write_bytes(row.certificate_der)
        decrypter = SimpleEnvelopeKeyDecrypter.load(str(tmp_path / "k.pem"),
                                                    str(tmp_path / "c.der"))
        reader = PdfFileReader(io.BytesIO(enc.read_bytes()))
        assert reader.encrypted
        try:
            status = reader.decrypt_pubkey(decrypter).status
        except Exception:
            return False
        if status == AuthStatus.FAILED:
            return False
        page = reader.root["/Pages"]["/Kids"][0]["/Contents"]
        return b"Top secret contract" in page.data

    assert opens("employee2")
    assert not opens("employee")

    # And through the service: the PDF comes back without encryption.
    _set_password(client, a.tokens["employee2"])
    [out] = sdk(a.tokens["employee2"]).decrypt_files([enc], approval_password=APPROVAL)
    assert out.name == "contract-decrypted.pdf"
    plain = PdfFileReader(io.BytesIO(out.read_bytes()))
    assert not plain.encrypted
    assert b"Top secret contract" in plain.root["/Pages"]["/Kids"][0]["/Contents"].data
    assert len(decryption_entries(runtime, a.id)) == 1
    with pytest.raises(NotFound):
        sdk(a.tokens["employee"]).decrypt_files([enc], approval_password=APPROVAL)


# --------------------------------------------------------------------------- refusals


def test_wrong_password_is_refused_and_shares_the_signing_lockout(
        client: TestClient, world: World, runtime: Runtime) -> None:
    a = world.a
    token = a.tokens["employee"]
    _set_password(client, token)
    cert = _cert(client, token, email=a.emails["employee"])
    blob = crypt.encrypt_cms(DATA, [cert])
    info = _info_for(blob, cert)
    r = _decrypt(client, token, info, password="9999")
    assert r.status_code == 403 and r.json()["error"] == "approval_refused"
    [event] = security_events(runtime, action="decrypt")
    assert event.reason == "approval_refused" and event.user_id == a.users["employee"]
    assert event.organization_id == a.id and "9999" not in event.message
    status = client.get("/api/v1/me/approval-password", headers=auth(token)).json()
    assert status["failed_attempts"] == 1
    for _ in range(4):
        _decrypt(client, token, info, password="9999")
    r = _decrypt(client, token, info)  # even the right password: locked
    assert r.status_code == 423, r.text
    # Signing is locked too: one counter for both.
    r = client.post("/api/v1/sign", headers=auth(token), json={
        "seal_id": a.seals["contract"], "approval_password": APPROVAL,
        "documents": [{"file_name": "x.pdf", "digest": base64.b64encode(
            hashlib.sha256(b"x").digest()).decode()}]})
    assert r.status_code == 423, r.text
    assert decryption_entries(runtime, a.id) == []
    assert {e.reason for e in security_events(runtime, action="decrypt")} == {
        "approval_refused", "signing_locked"}


def test_another_organizations_user_is_refused(client: TestClient, world: World,
                                               runtime: Runtime) -> None:
    a, b = world.a, world.b
    _set_password(client, b.tokens["employee"])
    cert = _cert(client, b.tokens["employee"], email=a.emails["employee"])
    info = _info_for(crypt.encrypt_cms(DATA, [cert]), cert)
    r = _decrypt(client, b.tokens["employee"], info)
    assert r.status_code == 404, r.text
    assert a.id not in r.text and a.name not in r.text
    [event] = security_events(runtime, action="decrypt")
    assert event.reason == "not_found" and event.organization_id == b.id
    # A colleague of the recipient does not get it either.
    _set_password(client, a.tokens["employee2"])
    r = _decrypt(client, a.tokens["employee2"], info)
    assert r.status_code == 404
    assert len(security_events(runtime, action="decrypt")) == 2
    assert decryption_entries(runtime, a.id) == []


def test_deleted_recipient_is_refused(client: TestClient, world: World,
                                      runtime: Runtime) -> None:
    a = world.a
    bob_token = a.tokens["employee2"]
    _set_password(client, bob_token)
    cert = _cert(client, a.tokens["employee"], email=a.emails["employee2"])
    blob = crypt.encrypt_cms(DATA, [cert])
    info = _info_for(blob, cert)
    assert _decrypt(client, bob_token, info).status_code == 200
    uow = UnitOfWork(runtime)
    try:
        stale = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["employee2"]))
    finally:
        uow.close()
    r = client.delete(f"/api/v1/organizations/{a.id}/employees/{a.users['employee2']}",
                      headers=auth(a.tokens["account_admin"]))
    assert r.status_code == 200, r.text

    # Their tokens died with the account...
    assert _decrypt(client, bob_token, info).status_code == 401
    # ... a request already past authentication is refused by the service ...
    uow = UnitOfWork(runtime)
    try:
        with pytest.raises(PermissionDenied):
            uow.encryption.decrypt(stale, info, file_name="f.p7m",
                                   file_digest=crypt_digest(blob), password=APPROVAL,
                                   api="native")
        uow.rollback()
    finally:
        uow.close()
    [event] = security_events(runtime, action="decrypt")
    assert event.user_id == a.users["employee2"] and event.reason == "forbidden"
    # ... nobody else in the organization may use the key ...
    _set_password(client, a.tokens["account_admin"])
    assert _decrypt(client, a.tokens["account_admin"], info).status_code == 404
    assert len(security_events(runtime, action="decrypt")) == 2
    # ... and the directory no longer offers the certificate.
    r = client.get("/api/v1/directory", headers=auth(a.tokens["employee"]),
                   params={"email": a.emails["employee2"]})
    assert r.status_code == 404
    assert len(decryption_entries(runtime, a.id)) == 1  # only the one before deletion


def crypt_digest(blob: bytes):
    from sealkeeper.crypto.digests import Hashed

    return Hashed.of(blob)


def test_organization_key_needs_a_grant(client: TestClient, world: World, runtime: Runtime,
                                        sdk, tmp_path: Path) -> None:
    a = world.a
    admin = a.tokens["eseal_admin"]
    r = client.post(f"/api/v1/organizations/{a.id}/encryption-key", headers=auth(admin),
                    json={"algorithm": "rsa-2048"})
    assert r.status_code == 201, r.text
    org_key = r.json()
    assert org_key["owner"] == "organization" and org_key["key_algorithm"] == "rsa-2048"
    again = client.post(f"/api/v1/organizations/{a.id}/encryption-key", headers=auth(admin),
                        json={})
    assert again.status_code == 409
    looked_up = client.get("/api/v1/directory", headers=auth(world.b.tokens["employee"]),
                           params={"organization": a.id})
    assert looked_up.status_code == 200 and looked_up.json()["key_id"] == org_key["key_id"]

    src = tmp_path / "memo.txt"
    src.write_bytes(DATA)
    [enc] = sdk(world.b.tokens["employee"]).encrypt_files([src], to_orgs=[a.id])
    bob = sdk(a.tokens["employee2"])
    _set_password(client, a.tokens["employee2"])
    org_cert = x509.load_der_x509_certificate(base64.b64decode(org_key["certificate"]))
    info = _info_for(enc.read_bytes(), org_cert)
    r = _decrypt(client, a.tokens["employee2"], info)
    assert r.status_code == 403, r.text
    assert security_events(runtime, action="decrypt")[0].reason == "forbidden"
    with pytest.raises(NotFound):  # the org key is not among bob's keys yet
        bob.decrypt_files([enc], approval_password=APPROVAL, outputs=[tmp_path / "o1"])

    r = client.post(f"/api/v1/organizations/{a.id}/encryption-grants", headers=auth(admin),
                    json={"user_id": a.users["employee2"]})
    assert r.status_code == 201, r.text
    listed = client.get(f"/api/v1/organizations/{a.id}/encryption-grants",
                        headers=auth(a.tokens["account_admin"]))
    assert [g["user_id"] for g in listed.json()] == [a.users["employee2"]]
    [out] = bob.decrypt_files([enc], approval_password=APPROVAL, outputs=[tmp_path / "o2"])
    assert out.read_bytes() == DATA
    [entry] = decryption_entries(runtime, a.id)
    assert json.loads(entry.entry)["key_owner"] == "organization"

    r = client.delete(f"/api/v1/organizations/{a.id}/encryption-grants/"
                      f"{a.users['employee2']}", headers=auth(admin))
    assert r.status_code == 200
    with pytest.raises(NotFound):
        bob.decrypt_files([enc], approval_password=APPROVAL, outputs=[tmp_path / "o3"])
    assert _decrypt(client, a.tokens["employee2"], info).status_code == 403
    # Another organization's administrator cannot grant A's key.
    r = client.post(f"/api/v1/organizations/{a.id}/encryption-grants",
                    headers=auth(world.b.tokens["eseal_admin"]),
                    json={"user_id": world.b.users["employee"]})
    assert r.status_code == 404
    # Grants and withdrawals of the organization's key are in its usage log.
    log = client.get(f"/api/v1/organizations/{a.id}/log", headers=auth(a.tokens["account_admin"]),
                     params={"seal_id": "org-encryption-key", "order": "asc"})
    assert log.status_code == 200, log.text
    assert [(e["kind"], e["user_id"]) for e in log.json()["items"]] == [
        ("grant", a.users["employee2"]), ("withdrawal", a.users["employee2"])]


def test_bad_input_is_a_clear_400(client: TestClient, world: World, runtime: Runtime) -> None:
    a = world.a
    token = a.tokens["employee"]
    _set_password(client, token)
    cert = _cert(client, token, email=a.emails["employee"])
    info = _info_for(crypt.encrypt_cms(DATA, [cert]), cert)
    good = {"recipient_info": base64.b64encode(info).decode(), "file_name": "f",
            "file_digest": base64.b64encode(b"\0" * 32).decode(),
            "approval_password": APPROVAL}
    for patch in ({"recipient_info": "!!!"}, {"recipient_info": base64.b64encode(
                   b"\x30\x03\x02\x01\x00").decode()},
                  {"file_digest": base64.b64encode(b"\0" * 5).decode()},
                  {"digest_algorithm": "md5"}, {"file_name": ""},
                  {"file_name": "a\x01b"}, {"approval_password": "12"},
                  {"recipient_info": base64.b64encode(info[:-3]).decode()}):
        r = client.post("/api/v1/decrypt", headers=auth(token), json={**good, **patch})
        assert r.status_code == 400, (patch, r.text)
        assert r.json()["error"] == "invalid_request"
    # A corrupted wrapped key: refused (after the password), logged as a refusal.
    bad = bytearray(info)
    bad[-3] ^= 0xFF
    r = client.post("/api/v1/decrypt", headers=auth(token),
                    json={**good, "recipient_info": base64.b64encode(bytes(bad)).decode()})
    assert r.status_code == 400, r.text
    assert [e.reason for e in security_events(runtime, action="decrypt")] == ["unwrap_failed"]
    assert decryption_entries(runtime, a.id) == []


def test_seal_limited_token_cannot_decrypt(client: TestClient, world: World,
                                           runtime: Runtime) -> None:
    a = world.a
    _set_password(client, a.tokens["employee"])
    r = client.post("/api/v1/me/tokens", headers=auth(a.tokens["employee"]),
                    json={"name": "ci", "seal_ids": [a.seals["contract"]]})
    limited = r.json()["token"]
    cert = _cert(client, a.tokens["employee"], email=a.emails["employee"])
    info = _info_for(crypt.encrypt_cms(DATA, [cert]), cert)
    assert _decrypt(client, limited, info).status_code == 403
    assert _decrypt(client, a.tokens["employee"], info).status_code == 200


def test_sdk_maps_refusals(client: TestClient, world: World, sdk, tmp_path: Path) -> None:
    a = world.a
    _set_password(client, a.tokens["employee"])
    src = tmp_path / "x.bin"
    src.write_bytes(DATA)
    alice = sdk(a.tokens["employee"])
    [enc] = alice.encrypt_files([src], to=[a.emails["employee"]])
    with pytest.raises(ApprovalRefused):
        alice.decrypt_files([enc], approval_password="0000", outputs=[tmp_path / "y"])
    assert not (tmp_path / "y").exists()


def test_revoked_key_and_expiry(client: TestClient, world: World, runtime: Runtime) -> None:
    from datetime import timedelta

    from sealkeeper.encryption.service import EncryptionService

    a = world.a
    token = a.tokens["employee"]
    _set_password(client, token)
    old_cert = _cert(client, token, email=a.emails["employee"])
    old_info = _info_for(crypt.encrypt_cms(DATA, [old_cert]), old_cert)

    # After the certificate expires, the next lookup issues a new key; the old
    # one still decrypts the files made for it.
    uow = UnitOfWork(runtime)
    try:
        later = EncryptionService(uow.session, lambda: runtime.clock() + timedelta(days=4 * 365),
                                  pki=uow.pki, audit=uow.audit, approvals=uow.approvals,
                                  security=uow.security)
        actor = uow.accounts.actor_for(uow.accounts.find_by_email(a.emails["employee"]))
        new = later.lookup_user(actor, a.emails["employee"])
        assert new.serial != format(old_cert.serial_number, "x")
        assert len(later.my_keys(actor)) == 2
        uow.commit()
    finally:
        uow.close()
    assert _decrypt(client, token, old_info).status_code == 200

    # A revoked key never decrypts again.
    uow = UnitOfWork(runtime)
    try:
        assert uow.encryption.revoke_user_keys(a.users["employee"]) == 2
        uow.commit()
    finally:
        uow.close()
    r = _decrypt(client, token, old_info)
    assert r.status_code == 409 and "revoked" in r.text
    assert security_events(runtime, action="decrypt")[-1].reason == "conflict"
