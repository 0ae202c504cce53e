"""Routes of the native signing API: the approval password, approvals, and
``POST /sign`` (a detached CMS per document digest; the document itself never
reaches the server)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, StringConstraints

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import SignatureScheme
from sealkeeper.errors import InvalidInput
from sealkeeper.signing.approvals import expires_in
from sealkeeper.signing.service import Document
from sealkeeper.web.api.schemas import Ok, Request, Secret, UserOut
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["signing"])

FileName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
B64 = Annotated[str, StringConstraints(max_length=200)]
SealId = Annotated[str, StringConstraints(max_length=64)]


class PasswordIn(Request):
    approval_password: Secret


class ResetIn(Request):
    approval_password: Secret
    account_password: Secret | None = None


class PasswordStatusOut(BaseModel):
    set: bool
    locked: bool
    failed_attempts: int
    remaining_attempts: int


class DocumentIn(Request):
    file_name: FileName
    digest: B64 = Field(description="base64 of the document's digest")
    digest_algorithm: Annotated[str, StringConstraints(max_length=40)] = "sha256"


class SignIn(Request):
    seal_id: SealId
    documents: list[DocumentIn] = Field(max_length=10_000)
    approval_password: Secret | None = None
    approval: Secret | None = Field(default=None, description="token from POST /approvals")
    format: Literal["cades", "pades"] = Field(
        default="cades", description="pades: no signingTime attribute (PAdES baseline)")
    timestamp: bool = Field(default=False, description="add an RFC 3161 signature timestamp")
    signature_algorithm: Literal["ecdsa", "rsa-pkcs1v15", "rsa-pss"] | None = None


class SignedOut(BaseModel):
    file_name: str
    digest: str
    digest_algorithm: str
    cms: str = Field(description="base64 of the detached CMS SignedData (DER)")
    log_seq: int


class SignOut(BaseModel):
    seal_id: str
    approval_id: str
    certificate_chain: list[str] = Field(description="base64 DER, signer first")
    signatures: list[SignedOut]


class ApprovalIn(Request):
    seal_id: SealId
    digest_algorithm: Annotated[str, StringConstraints(max_length=40)] = "sha256"
    digests: list[B64] = Field(max_length=10_000)
    approval_password: Secret


class ApprovalOut(BaseModel):
    approval: str = Field(description="single-use; shown once")
    approval_id: str
    seal_id: str
    count: int
    expires_at: datetime
    expires_in: int


def decode_digest(value: str, algorithm: str, field: str) -> Hashed:
    alg = DigestAlgorithm.parse(algorithm, field=field + "_algorithm")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("not valid base64", field=field) from None
    try:
        return Hashed(alg, raw)
    except InvalidInput as e:
        raise InvalidInput(e.message, field=field) from None


@router.get("/me/approval-password", response_model=PasswordStatusOut)
def password_status(actor: CurrentActor, uow: UoW) -> PasswordStatusOut:
    return PasswordStatusOut(**uow.approvals.status(actor))


@router.post("/me/approval-password", status_code=201, response_model=Ok)
def set_password(body: PasswordIn, actor: CurrentActor, uow: UoW) -> Ok:
    """Set the 4-digit signing approval password (first use of the e-sign service)."""
    uow.approvals.set_password(actor, body.approval_password)
    return Ok()


@router.post("/me/approval-password/reset", response_model=Ok)
def reset_password(body: ResetIn, actor: CurrentActor, uow: UoW) -> Ok:
    """Reset a forgotten approval password: needs the account password (a fresh
    login). Unlocks signing and voids every outstanding approval."""
    uow.approvals.reset_password(actor, body.approval_password,
                                 account_password=body.account_password)
    return Ok()


@router.post("/organizations/{org_id}/employees/{user_id}/approval-password/reset",
             response_model=UserOut)
def admin_reset(org_id: str, user_id: str, actor: CurrentActor, uow: UoW) -> UserOut:
    """Account administrator: clear an employee's approval password (they set a new
    one on next use); unlocks signing and voids their approvals."""
    return UserOut.from_row(uow.approvals.admin_reset(actor, org_id, user_id))


@router.post("/approvals", status_code=201, response_model=ApprovalOut)
def authorize(body: ApprovalIn, actor: CurrentActor, uow: UoW) -> ApprovalOut:
    """Approve exactly these digests for one seal: a short-lived, single-use approval."""
    hashes = [decode_digest(d, body.digest_algorithm, f"digests[{i}]")
              for i, d in enumerate(body.digests)]
    row, token = uow.signing.authorize(actor, body.seal_id, hashes, body.approval_password,
                                       api="native")
    return ApprovalOut(approval=token, approval_id=row.id, seal_id=body.seal_id,
                       count=row.count, expires_at=row.expires_at,
                       expires_in=expires_in(row, uow.clock()))


@router.post("/sign", response_model=SignOut)
def sign(body: SignIn, actor: CurrentActor, uow: UoW) -> SignOut:
    """Sign document digests with a seal: one detached CMS SignedData each, one
    quota unit and one usage-log entry each. Approve with the approval password or
    an approval for exactly these digests."""
    docs = [Document(d.file_name, decode_digest(d.digest, d.digest_algorithm,
                                                f"documents[{i}].digest"))
            for i, d in enumerate(body.documents)]
    scheme = SignatureScheme(body.signature_algorithm) if body.signature_algorithm else None
    result = uow.signing.sign_documents(
        actor, body.seal_id, docs, password=body.approval_password, approval=body.approval,
        api="native", pades=body.format == "pades", timestamp=body.timestamp, scheme=scheme)
    b64 = base64.b64encode
    return SignOut(
        seal_id=result.seal.seal_id, approval_id=result.approval_id,
        certificate_chain=[b64(c).decode() for c in result.chain],
        signatures=[SignedOut(file_name=d.file_name, digest=b64(d.digest.digest).decode(),
                              digest_algorithm=d.digest.algorithm.value,
                              cms=b64(d.cms).decode(), log_seq=d.log_seq)
                    for d in result.documents])
