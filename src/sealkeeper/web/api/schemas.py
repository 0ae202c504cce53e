"""Wire models of the JSON API v1: requests forbid unknown fields; responses
are built from domain rows by ``from_row`` and never carry secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from sealkeeper.accounts.models import ApiToken, User
from sealkeeper.authz import Actor
from sealkeeper.orgs.models import AuthorizationLetter, Domain, Organization
from sealkeeper.pki.models import SealCertificate
from sealkeeper.quota.models import QuotaOrder
from sealkeeper.seals.models import Grant, Seal

Short = Annotated[str, StringConstraints(max_length=300)]
Secret = Annotated[str, StringConstraints(max_length=200)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise ValueError("NUL characters are not allowed")
        return value


class SignupIn(Request):
    email: Short
    password: Secret
    display_name: Short


class LoginIn(Request):
    email: Short
    password: Secret
    token_name: Short = "sign-in"


class ValidateIn(Request):
    token: Secret
    password: Secret
    display_name: Short | None = None


class TokenIn(Request):
    name: Short
    seal_ids: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None, max_length=100)


class ReasonIn(Request):
    reason: Annotated[str, StringConstraints(max_length=2000)]


class DomainIn(Request):
    name: Short


class EmployeeIn(Request):
    email: Short
    display_name: Short


class GrantIn(Request):
    user_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    email: Short | None = None


class UnitsIn(Request):
    units: int


class CreditIn(Request):
    units: int
    reference: Short | None = None


class CreditOrderIn(Request):
    reference: Short | None = None


# -- responses --------------------------------------------------------------


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    organization_id: str | None
    status: str
    created_at: datetime
    validated_at: datetime | None
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, u: User) -> UserOut:
        return cls(id=u.id, email=u.email, display_name=u.display_name,
                   organization_id=u.organization_id, status=u.status,
                   created_at=u.created_at, validated_at=u.validated_at,
                   deleted_at=u.deleted_at)


class MeOut(BaseModel):
    user: UserOut
    roles: list[str]
    token_seal_ids: list[str] | None

    @classmethod
    def build(cls, user: User, actor: Actor) -> MeOut:
        seal_ids = sorted(actor.token_seal_ids) if actor.token_seal_ids is not None else None
        return cls(user=UserOut.from_row(user), roles=actor.roles, token_seal_ids=seal_ids)


class TokenOut(BaseModel):
    id: str
    name: str
    prefix: str
    seal_ids: list[str] | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, t: ApiToken) -> TokenOut:
        return cls(id=t.id, name=t.name, prefix=t.prefix, seal_ids=t.seal_ids,
                   created_at=t.created_at, revoked_at=t.revoked_at)


class NewTokenOut(TokenOut):
    token: str = Field(description="The token itself. Shown this once only; store it now.")


class SignupOut(BaseModel):
    user: UserOut
    token: NewTokenOut


class OrganizationOut(BaseModel):
    id: str
    legal_name: str
    registration_number: str
    status: str
    rejection_reason: str | None
    account_admin_id: str
    eseal_admin_id: str | None
    quota_balance: int
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_row(cls, o: Organization) -> OrganizationOut:
        return cls(id=o.id, legal_name=o.legal_name, registration_number=o.registration_number,
                   status=o.status, rejection_reason=o.rejection_reason,
                   account_admin_id=o.account_admin_id, eseal_admin_id=o.eseal_admin_id,
                   quota_balance=o.quota_balance, created_at=o.created_at,
                   decided_at=o.decided_at)


class LetterOut(BaseModel):
    id: str
    organization_id: str
    eseal_admin_email: str
    filename: str
    content_type: str
    sha256: str
    size: int
    status: str
    reason: str | None
    submitted_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_row(cls, letter: AuthorizationLetter) -> LetterOut:
        return cls(id=letter.id, organization_id=letter.organization_id,
                   eseal_admin_email=letter.eseal_admin_email, filename=letter.filename,
                   content_type=letter.content_type, sha256=letter.sha256,
                   size=len(letter.content), status=letter.status, reason=letter.reason,
                   submitted_at=letter.submitted_at, decided_at=letter.decided_at)


class DomainOut(BaseModel):
    id: str
    name: str
    status: str
    validation_method: str | None
    validated_at: datetime | None

    @classmethod
    def from_row(cls, d: Domain) -> DomainOut:
        return cls(id=d.id, name=d.name, status=d.status,
                   validation_method=d.validation_method, validated_at=d.validated_at)


class SealOut(BaseModel):
    seal_id: str
    type: str
    type_label: str
    name: str
    status: str
    organization_id: str
    owner_user_id: str | None
    key_algorithm: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, s: Seal) -> SealOut:
        from sealkeeper.seals.models import SealType

        return cls(seal_id=s.seal_id, type=s.type, type_label=SealType(s.type).label,
                   name=s.name, status=s.status, organization_id=s.organization_id,
                   owner_user_id=s.owner_user_id, key_algorithm=s.key_algorithm,
                   created_at=s.created_at)


class MySealOut(SealOut):
    access: str = Field(description="'personal' or 'granted'")


class GrantOut(BaseModel):
    id: str
    seal_id: str
    user_id: str
    email: str
    display_name: str
    granted_by: str
    granted_at: datetime
    withdrawn_at: datetime | None

    @classmethod
    def build(cls, g: Grant, seal_id: str, u: User) -> GrantOut:
        return cls(id=g.id, seal_id=seal_id, user_id=u.id, email=u.email,
                   display_name=u.display_name, granted_by=g.granted_by,
                   granted_at=g.granted_at, withdrawn_at=g.withdrawn_at)


class OrderOut(BaseModel):
    id: str
    organization_id: str
    units: int
    reference: str | None
    status: str
    created_at: datetime
    credited_at: datetime | None

    @classmethod
    def from_row(cls, o: QuotaOrder) -> OrderOut:
        return cls(id=o.id, organization_id=o.organization_id, units=o.units,
                   reference=o.reference, status=o.status, created_at=o.created_at,
                   credited_at=o.credited_at)


class QuotaOut(BaseModel):
    balance: int
    orders: list[OrderOut]


class Ok(BaseModel):
    ok: bool = True


class RevokeIn(Request):
    reason: str = "cessation_of_operation"


class CertificateOut(BaseModel):
    serial: str
    source: str
    status: str
    is_current: bool
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    key_fingerprint: str
    pem: str

    @classmethod
    def from_row(cls, c: SealCertificate) -> CertificateOut:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        pem = x509.load_der_x509_certificate(c.der).public_bytes(Encoding.PEM).decode()
        return cls(serial=c.serial, source=c.source, status=c.status, is_current=c.is_current,
                   not_before=c.not_before, not_after=c.not_after, revoked_at=c.revoked_at,
                   revocation_reason=c.revocation_reason, key_fingerprint=c.key_fingerprint,
                   pem=pem)
