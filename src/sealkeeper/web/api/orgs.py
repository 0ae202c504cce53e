"""Routes: organizations, authorization letters, domains, employees."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from sealkeeper.errors import InvalidInput
from sealkeeper.orgs.letters import MAX_LETTER_BYTES, UploadedFile
from sealkeeper.orgs.models import OrgStatus
from sealkeeper.web.api.schemas import (
    DomainIn,
    DomainOut,
    EmployeeIn,
    LetterOut,
    OrganizationOut,
    ReasonIn,
    SealOut,
    UserOut,
)
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["organizations"])


async def _read_upload(upload: UploadFile) -> UploadedFile:
    data = await upload.read(MAX_LETTER_BYTES + 1)
    return UploadedFile(upload.filename or "letter", upload.content_type or "", data)


def _status(value: str | None) -> OrgStatus | None:
    if value is None:
        return None
    try:
        return OrgStatus(value)
    except ValueError:
        raise InvalidInput("status must be pending, validated or rejected",
                           field="status") from None


@router.post("/organizations", status_code=201, response_model=OrganizationOut)
async def apply(
    actor: CurrentActor, uow: UoW,
    legal_name: Annotated[str, Form(max_length=300)],
    registration_number: Annotated[str, Form(max_length=100)],
    domains: Annotated[str, Form(max_length=5000, description="comma-separated")],
    eseal_admin_email: Annotated[str, Form(max_length=320)],
    letter: Annotated[UploadFile, File(description="the signed authorization letter")],
) -> OrganizationOut:
    """Apply for organization validation; the caller becomes the account administrator."""
    upload = await _read_upload(letter)
    org = uow.orgs.apply(actor, legal_name=legal_name, registration_number=registration_number,
                         domains=[d for d in domains.split(",") if d.strip()],
                         eseal_admin_email=eseal_admin_email, letter=upload)
    return OrganizationOut.from_row(org)


@router.get("/organizations", response_model=list[OrganizationOut])
def list_organizations(actor: CurrentActor, uow: UoW,
                       status: str | None = None) -> list[OrganizationOut]:
    """Operator: every organization, optionally by status."""
    return [OrganizationOut.from_row(o) for o in uow.orgs.search(actor, _status(status))]


@router.get("/organizations/{org_id}", response_model=OrganizationOut)
def get_organization(org_id: str, actor: CurrentActor, uow: UoW) -> OrganizationOut:
    return OrganizationOut.from_row(uow.orgs.get(actor, org_id))


@router.post("/organizations/{org_id}/approve", response_model=OrganizationOut)
def approve(org_id: str, actor: CurrentActor, uow: UoW) -> OrganizationOut:
    """Operator: validate the organization; its six seals are created."""
    return OrganizationOut.from_row(uow.orgs.approve(actor, org_id))


@router.post("/organizations/{org_id}/reject", response_model=OrganizationOut)
def reject(org_id: str, body: ReasonIn, actor: CurrentActor, uow: UoW) -> OrganizationOut:
    return OrganizationOut.from_row(uow.orgs.reject(actor, org_id, body.reason))


@router.get("/organizations/{org_id}/letters", response_model=list[LetterOut])
def list_letters(org_id: str, actor: CurrentActor, uow: UoW) -> list[LetterOut]:
    return [LetterOut.from_row(x) for x in uow.orgs.letters(actor, org_id)]


@router.post("/organizations/{org_id}/letters", status_code=201, response_model=LetterOut)
async def submit_letter(
    org_id: str, actor: CurrentActor, uow: UoW,
    eseal_admin_email: Annotated[str, Form(max_length=320)],
    letter: Annotated[UploadFile, File()],
) -> LetterOut:
    """Account administrator: designate a new e-seal administrator (the operator decides)."""
    upload = await _read_upload(letter)
    return LetterOut.from_row(uow.orgs.submit_letter(actor, org_id, eseal_admin_email, upload))


@router.get("/organizations/{org_id}/letters/{letter_id}/file")
def letter_file(org_id: str, letter_id: str, actor: CurrentActor, uow: UoW) -> Response:
    row = uow.orgs.letter(actor, org_id, letter_id)
    return Response(row.content, media_type=row.content_type, headers={
        "Content-Disposition": f'attachment; filename="letter-{row.id}"',
        "X-Content-SHA256": row.sha256})


@router.post("/organizations/{org_id}/letters/{letter_id}/approve", response_model=LetterOut)
def approve_letter(org_id: str, letter_id: str, actor: CurrentActor, uow: UoW) -> LetterOut:
    return LetterOut.from_row(uow.orgs.decide_letter(actor, org_id, letter_id, approve=True))


@router.post("/organizations/{org_id}/letters/{letter_id}/reject", response_model=LetterOut)
def reject_letter(org_id: str, letter_id: str, body: ReasonIn, actor: CurrentActor,
                  uow: UoW) -> LetterOut:
    return LetterOut.from_row(uow.orgs.decide_letter(actor, org_id, letter_id, approve=False,
                                                     reason=body.reason))


@router.get("/organizations/{org_id}/domains", response_model=list[DomainOut])
def list_domains(org_id: str, actor: CurrentActor, uow: UoW) -> list[DomainOut]:
    return [DomainOut.from_row(d) for d in uow.orgs.domains(actor, org_id)]


@router.post("/organizations/{org_id}/domains", status_code=201, response_model=DomainOut)
def add_domain(org_id: str, body: DomainIn, actor: CurrentActor, uow: UoW) -> DomainOut:
    return DomainOut.from_row(uow.orgs.add_domain(actor, org_id, body.name))


@router.post("/organizations/{org_id}/domains/{name}/validate", response_model=DomainOut)
def validate_domain(org_id: str, name: str, actor: CurrentActor, uow: UoW) -> DomainOut:
    """Operator: mark a domain validated."""
    return DomainOut.from_row(uow.orgs.mark_domain_validated(actor, org_id, name))


@router.get("/organizations/{org_id}/employees", response_model=list[UserOut])
def list_employees(org_id: str, actor: CurrentActor, uow: UoW) -> list[UserOut]:
    return [UserOut.from_row(u) for u in uow.employees.all(actor, org_id)]


@router.post("/organizations/{org_id}/employees", status_code=201, response_model=UserOut)
def add_employee(org_id: str, body: EmployeeIn, actor: CurrentActor, uow: UoW) -> UserOut:
    """Account administrator: add an employee; a validation link is mailed to them."""
    return UserOut.from_row(uow.employees.add(actor, org_id, body.email, body.display_name))


@router.get("/organizations/{org_id}/employees/{user_id}", response_model=UserOut)
def get_employee(org_id: str, user_id: str, actor: CurrentActor, uow: UoW) -> UserOut:
    return UserOut.from_row(uow.employees.get(actor, org_id, user_id))


@router.post("/organizations/{org_id}/employees/{user_id}/resend", response_model=UserOut)
def resend_invitation(org_id: str, user_id: str, actor: CurrentActor, uow: UoW) -> UserOut:
    return UserOut.from_row(uow.employees.resend_invitation(actor, org_id, user_id))


@router.delete("/organizations/{org_id}/employees/{user_id}", response_model=UserOut)
def delete_employee(org_id: str, user_id: str, actor: CurrentActor, uow: UoW) -> UserOut:
    """Account administrator: delete an employee. Every grant is withdrawn, every token
    disabled and the personal certificate revoked, at once; past records remain."""
    return UserOut.from_row(uow.employees.delete(actor, org_id, user_id))


@router.get("/organizations/{org_id}/seals", response_model=list[SealOut])
def organization_seals(org_id: str, actor: CurrentActor, uow: UoW) -> list[SealOut]:
    return [SealOut.from_row(s) for s in uow.seals.organization_seals(actor, org_id)]
