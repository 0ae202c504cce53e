"""Routes of the encryption API: the directory of encryption certificates,
the caller's decryption keys, the organization's key and its grants, and
``POST /decrypt`` (the cloud key unwrap: one recipient info in, the content key
out; the encrypted document itself never reaches the server)."""

from __future__ import annotations

import base64
import binascii
import ssl
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints

from sealkeeper.accounts.models import User
from sealkeeper.encryption.models import EncryptionGrant, EncryptionKey
from sealkeeper.errors import InvalidInput
from sealkeeper.services import UnitOfWork
from sealkeeper.web.api.schemas import Request, Secret, Short
from sealkeeper.web.api.signing import decode_digest
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["encryption"])

# base64 of a RecipientInfo of at most 16 KiB
RecipientInfoB64 = Annotated[str, StringConstraints(min_length=1, max_length=22_000)]
Id = Annotated[str, StringConstraints(max_length=64)]


class CertificateOut(BaseModel):
    key_id: str
    owner: str = Field(description="user or organization")
    email: str | None = Field(default=None, description="the employee's email (user keys)")
    organization_id: str
    key_algorithm: str
    serial: str = Field(description="hex")
    not_before: datetime
    not_after: datetime
    status: str
    current: bool
    certificate: str = Field(description="base64 of the certificate (DER)")
    certificate_pem: str
    chain: list[str] = Field(description="base64 DER of the issuing CA and root")

    @classmethod
    def build(cls, uow: UnitOfWork, row: EncryptionKey) -> CertificateOut:
        email = None
        if row.user_id is not None:
            user = uow.session.get(User, row.user_id)
            email = user.email if user is not None else None
        b64 = base64.b64encode
        return cls(key_id=row.id, owner=str(row.owner), email=email,
                   organization_id=row.organization_id, key_algorithm=row.key_algorithm,
                   serial=row.serial, not_before=row.not_before, not_after=row.not_after,
                   status=str(row.status), current=row.is_current,
                   certificate=b64(row.certificate_der).decode(),
                   certificate_pem=ssl.DER_cert_to_PEM_cert(row.certificate_der),
                   chain=[b64(d).decode() for d in uow.encryption.chain_of(row)[1:]])


class OrgKeyIn(Request):
    algorithm: Annotated[str, StringConstraints(max_length=16)] = "ec-p256"


class EncryptionGrantIn(Request):
    user_id: Id


class EncryptionGrantOut(BaseModel):
    id: str
    organization_id: str
    user_id: str
    email: str
    display_name: str
    granted_by: str
    granted_at: datetime
    withdrawn_at: datetime | None

    @classmethod
    def build(cls, g: EncryptionGrant, u: User) -> EncryptionGrantOut:
        return cls(id=g.id, organization_id=g.organization_id, user_id=u.id, email=u.email,
                   display_name=u.display_name, granted_by=g.granted_by,
                   granted_at=g.granted_at, withdrawn_at=g.withdrawn_at)


class DecryptIn(Request):
    recipient_info: RecipientInfoB64 = Field(
        description="base64 of one DER CMS RecipientInfo (ktri with RSA-OAEP, or kari "
                    "with ECDH) addressed to one of your encryption certificates")
    file_name: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    file_digest: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="base64 of the digest of the encrypted file")
    digest_algorithm: Annotated[str, StringConstraints(max_length=40)] = "sha256"
    approval_password: Secret


class DecryptOut(BaseModel):
    content_key: str = Field(description="base64 of the unwrapped content-encryption key")
    key_id: str
    scheme: str
    log_seq: int


@router.get("/directory", response_model=CertificateOut)
def directory(actor: CurrentActor, uow: UoW, email: Short | None = None,
              organization: Id | None = None) -> CertificateOut:
    """The current encryption certificate of an employee (``?email=``) or an
    organization (``?organization=<id>``) of any validated organization. An
    employee's key is created on first lookup."""
    if (email is None) == (organization is None):
        raise InvalidInput("give either email or organization", field="email")
    if email is not None:
        row = uow.encryption.lookup_user(actor, email)
    else:
        assert organization is not None
        row = uow.encryption.lookup_organization(actor, organization)
    return CertificateOut.build(uow, row)


@router.get("/me/encryption-keys", response_model=list[CertificateOut])
def my_keys(actor: CurrentActor, uow: UoW) -> list[CertificateOut]:
    """The keys you may decrypt with: yours and, with a grant, your organization's."""
    return [CertificateOut.build(uow, r) for r in uow.encryption.my_keys(actor)]


@router.post("/organizations/{org_id}/encryption-key", status_code=201,
             response_model=CertificateOut)
def create_org_key(org_id: str, body: OrgKeyIn, actor: CurrentActor,
                   uow: UoW) -> CertificateOut:
    """E-seal administrator: give the organization an encryption key and certificate."""
    return CertificateOut.build(
        uow, uow.encryption.create_organization_key(actor, org_id, body.algorithm))


@router.get("/organizations/{org_id}/encryption-grants",
            response_model=list[EncryptionGrantOut])
def list_grants(org_id: str, actor: CurrentActor, uow: UoW) -> list[EncryptionGrantOut]:
    """Who may decrypt with the organization's encryption key (administrators)."""
    return [EncryptionGrantOut.build(g, u) for g, u in uow.encryption.grants(actor, org_id)]


@router.post("/organizations/{org_id}/encryption-grants", status_code=201,
             response_model=EncryptionGrantOut)
def grant(org_id: str, body: EncryptionGrantIn, actor: CurrentActor,
          uow: UoW) -> EncryptionGrantOut:
    """E-seal administrator: let an employee decrypt with the organization's key."""
    return EncryptionGrantOut.build(*uow.encryption.grant(actor, org_id, body.user_id))


@router.delete("/organizations/{org_id}/encryption-grants/{user_id}",
               response_model=EncryptionGrantOut)
def withdraw(org_id: str, user_id: str, actor: CurrentActor,
             uow: UoW) -> EncryptionGrantOut:
    """E-seal administrator: withdraw an employee's grant for the organization's key."""
    return EncryptionGrantOut.build(*uow.encryption.withdraw(actor, org_id, user_id))


@router.post("/decrypt", response_model=DecryptOut)
def decrypt(body: DecryptIn, actor: CurrentActor, uow: UoW, response: Response) -> DecryptOut:
    """Unwrap the content-encryption key of one recipient info with your key (or
    your organization's, with a grant), approved with the approval password.
    One usage-log entry (file name, digest of the encrypted file, key used)."""
    try:
        info = base64.b64decode(body.recipient_info, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("not valid base64", field="recipient_info") from None
    digest = decode_digest(body.file_digest, body.digest_algorithm, "file_digest")
    result = uow.encryption.decrypt(actor, info, file_name=body.file_name, file_digest=digest,
                                    password=body.approval_password, api="native")
    response.headers["Cache-Control"] = "no-store"
    return DecryptOut(content_key=base64.b64encode(result.content_key).decode(),
                      key_id=result.key.id, scheme=result.scheme, log_seq=result.log_seq)
