"""Organization validation: applying, the operator's decision, authorization
letters (and so who the e-seal administrator is), and email domains."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import OneTimePurpose, User, UserStatus
from sealkeeper.accounts.service import AccountService
from sealkeeper.authz import (
    Actor,
    require_account_admin,
    require_member_or_operator,
    require_operator,
)
from sealkeeper.clock import Clock
from sealkeeper.errors import Conflict, InvalidInput, NotFound
from sealkeeper.mail import Outbox
from sealkeeper.orgs.letters import UploadedFile, check_letter
from sealkeeper.orgs.models import (
    AuthorizationLetter,
    Domain,
    DomainStatus,
    LetterStatus,
    Organization,
    OrgStatus,
)
from sealkeeper.seals.service import SealService
from sealkeeper.validation import email_domain, normalize_domain, normalize_email, require_text

MAX_DOMAINS = 20


class OrganizationService:
    def __init__(self, session: Session, clock: Clock, accounts: AccountService,
                 seals: SealService, outbox: Outbox, base_url: str) -> None:
        self.s = session
        self.clock = clock
        self.accounts = accounts
        self.seals = seals
        self.outbox = outbox
        self.base_url = base_url

    # -- applying ----------------------------------------------------------

    def apply(self, actor: Actor, *, legal_name: str, registration_number: str,
              domains: list[str], eseal_admin_email: str, letter: UploadedFile) -> Organization:
        """The applicant becomes the organization's account administrator."""
        applicant = self._user(actor.user_id)
        if applicant.is_operator:
            raise Conflict("an operator account cannot apply for an organization")
        if applicant.organization_id is not None:
            raise Conflict("this account already belongs to an organization")
        legal_name = require_text(legal_name, "legal_name")
        registration_number = require_text(registration_number, "registration_number",
                                           max_len=100)
        names = self._domain_list(domains)
        admin_email = normalize_email(eseal_admin_email, "eseal_admin_email")
        if email_domain(admin_email) not in names:
            raise InvalidInput("the e-seal administrator's mailbox must be in one of the "
                               "organization's email domains", field="eseal_admin_email")
        letter = check_letter(letter)
        now = self.clock()
        org = Organization(legal_name=legal_name, registration_number=registration_number,
                           status=OrgStatus.PENDING, account_admin_id=applicant.id,
                           created_at=now)
        self.s.add(org)
        self.s.flush()
        applicant.organization_id = org.id
        for name in names:
            self.s.add(Domain(organization_id=org.id, name=name, created_at=now))
        self._add_letter(org, applicant.id, admin_email, letter)
        self.s.flush()
        return org

    def _domain_list(self, domains: list[str]) -> list[str]:
        names = sorted({normalize_domain(d, "domains") for d in domains})
        if not names:
            raise InvalidInput("name at least one email domain", field="domains")
        if len(names) > MAX_DOMAINS:
            raise InvalidInput(f"at most {MAX_DOMAINS} domains", field="domains")
        return names

    def _add_letter(self, org: Organization, by: str, admin_email: str,
                    letter: UploadedFile) -> AuthorizationLetter:
        row = AuthorizationLetter(
            organization_id=org.id, eseal_admin_email=admin_email, filename=letter.filename,
            content_type=letter.content_type, sha256=letter.sha256, content=letter.data,
            status=LetterStatus.PENDING, submitted_by=by, submitted_at=self.clock())
        self.s.add(row)
        return row

    # -- reading -----------------------------------------------------------

    def get(self, actor: Actor, org_id: str) -> Organization:
        org = self.s.get(Organization, org_id) if isinstance(org_id, str) else None
        if org is None:
            raise NotFound("organization not found")
        require_member_or_operator(actor, org.id)
        return org

    def search(self, actor: Actor, status: OrgStatus | None = None) -> list[Organization]:
        require_operator(actor)
        q = select(Organization).order_by(Organization.created_at)
        if status is not None:
            q = q.where(Organization.status == status)
        return list(self.s.scalars(q))

    def letters(self, actor: Actor, org_id: str) -> list[AuthorizationLetter]:
        org = self.get(actor, org_id)
        if not actor.is_operator:
            require_account_admin(actor, org.id)
        return list(self.s.scalars(select(AuthorizationLetter)
                                   .where(AuthorizationLetter.organization_id == org.id)
                                   .order_by(AuthorizationLetter.submitted_at)))

    def letter(self, actor: Actor, org_id: str, letter_id: str) -> AuthorizationLetter:
        for row in self.letters(actor, org_id):
            if row.id == letter_id:
                return row
        raise NotFound("letter not found")

    def eseal_admin(self, org: Organization) -> User | None:
        return self.s.get(User, org.eseal_admin_id) if org.eseal_admin_id else None

    # -- the operator's decisions ------------------------------------------

    def approve(self, actor: Actor, org_id: str) -> Organization:
        require_operator(actor)
        org = self.get(actor, org_id)
        if org.status != OrgStatus.PENDING:
            raise Conflict(f"the organization is already {org.status}")
        letter = self._pending_letter(org)
        if letter is None:
            raise Conflict("the organization has no pending authorization letter")
        now = self.clock()
        org.status = OrgStatus.VALIDATED
        org.decided_at = now
        org.decided_by = actor.user_id
        self._accept_letter(actor, org, letter)
        self.seals.create_organization_seals(org)
        return org

    def reject(self, actor: Actor, org_id: str, reason: str) -> Organization:
        require_operator(actor)
        org = self.get(actor, org_id)
        reason = require_text(reason, "reason", max_len=2000)
        if org.status != OrgStatus.PENDING:
            raise Conflict(f"the organization is already {org.status}")
        now = self.clock()
        org.status = OrgStatus.REJECTED
        org.rejection_reason = reason
        org.decided_at = now
        org.decided_by = actor.user_id
        letter = self._pending_letter(org)
        if letter is not None:
            letter.status = LetterStatus.REJECTED
            letter.reason = reason
            letter.decided_at = now
            letter.decided_by = actor.user_id
        applicant = self._user(org.account_admin_id)
        # The applicant may apply again with a corrected application.
        applicant.organization_id = None
        self.outbox.add(applicant.email, "Your organization application was rejected",
                        f"The application of {org.legal_name} was rejected.\n\n"
                        f"Reason: {reason}\n")
        return org

    # -- changing the e-seal administrator ---------------------------------

    def submit_letter(self, actor: Actor, org_id: str, eseal_admin_email: str,
                      letter: UploadedFile) -> AuthorizationLetter:
        org = self.get(actor, org_id)
        require_account_admin(actor, org.id)
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated yet")
        if self._pending_letter(org) is not None:
            raise Conflict("a letter is already waiting for the operator's decision")
        admin_email = normalize_email(eseal_admin_email, "eseal_admin_email")
        if self._validated_domain(org.id, email_domain(admin_email)) is None:
            raise InvalidInput("the e-seal administrator's mailbox must be in a validated "
                               "domain of the organization", field="eseal_admin_email")
        row = self._add_letter(org, actor.user_id, admin_email, check_letter(letter))
        self.s.flush()
        return row

    def decide_letter(self, actor: Actor, org_id: str, letter_id: str, *, approve: bool,
                      reason: str | None = None) -> AuthorizationLetter:
        require_operator(actor)
        org = self.get(actor, org_id)
        letter = self.s.get(AuthorizationLetter, letter_id) if isinstance(letter_id, str) \
            else None
        if letter is None or letter.organization_id != org.id:
            raise NotFound("letter not found")
        if letter.status != LetterStatus.PENDING:
            raise Conflict(f"the letter is already {letter.status}")
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("decide the organization's application first")
        if approve:
            self._accept_letter(actor, org, letter)
        else:
            letter.status = LetterStatus.REJECTED
            letter.reason = require_text(reason or "", "reason", max_len=2000)
            letter.decided_at = self.clock()
            letter.decided_by = actor.user_id
        return letter

    def _accept_letter(self, actor: Actor, org: Organization,
                       letter: AuthorizationLetter) -> None:
        letter.status = LetterStatus.APPROVED
        letter.decided_at = self.clock()
        letter.decided_by = actor.user_id
        admin = self.accounts.find_by_email(letter.eseal_admin_email)
        if admin is not None and admin.organization_id not in (None, org.id):
            raise Conflict("the designated e-seal administrator's mailbox belongs to another "
                           "organization")
        if admin is not None and admin.status == UserStatus.DELETED:
            raise Conflict("the designated e-seal administrator's account was deleted")
        if admin is None:
            admin = User(email=letter.eseal_admin_email,
                         display_name=letter.eseal_admin_email.split("@")[0],
                         organization_id=org.id, status=UserStatus.INVITED,
                         created_at=self.clock())
            self.s.add(admin)
            self.s.flush()
            token = self.accounts.issue_one_time(admin, OneTimePurpose.EMPLOYEE_VALIDATION)
            self.outbox.add(
                admin.email, "You are the e-seal administrator of " + org.legal_name,
                f"{org.legal_name} designated this mailbox as its e-seal administrator.\n"
                f"Validate the account and choose a password:\n"
                f"{self.base_url}/validate?token={token}\n")
        admin.organization_id = org.id
        org.eseal_admin_id = admin.id

    def _pending_letter(self, org: Organization) -> AuthorizationLetter | None:
        return self.s.scalar(select(AuthorizationLetter).where(
            AuthorizationLetter.organization_id == org.id,
            AuthorizationLetter.status == LetterStatus.PENDING))

    # -- domains -----------------------------------------------------------

    def domains(self, actor: Actor, org_id: str) -> list[Domain]:
        org = self.get(actor, org_id)
        return list(self.s.scalars(select(Domain).where(Domain.organization_id == org.id)
                                   .order_by(Domain.name)))

    def add_domain(self, actor: Actor, org_id: str, name: str) -> Domain:
        org = self.get(actor, org_id)
        require_account_admin(actor, org.id)
        name = normalize_domain(name)
        existing = self.s.scalar(select(Domain).where(Domain.organization_id == org.id,
                                                      Domain.name == name))
        if existing is not None:
            return existing
        count = len(self.domains(actor, org.id))
        if count >= MAX_DOMAINS:
            raise Conflict(f"at most {MAX_DOMAINS} domains per organization")
        d = Domain(organization_id=org.id, name=name, created_at=self.clock())
        self.s.add(d)
        self.s.flush()
        return d

    def mark_domain_validated(self, actor: Actor, org_id: str, name: str,
                              method: str = "operator") -> Domain:
        """Operator override (the DNS / mail proofs call :meth:`_validate_domain`)."""
        require_operator(actor)
        org = self.get(actor, org_id)
        d = self.s.scalar(select(Domain).where(Domain.organization_id == org.id,
                                               Domain.name == normalize_domain(name)))
        if d is None:
            raise NotFound("domain not found")
        return self._validate_domain(d, method)

    def record_domain_proof(self, d: Domain, method: str) -> Domain:
        """Validate a domain whose control was just proven (a DNS TXT record, a
        code mailed to the domain); the caller checked the proof and the right
        of the actor to ask (:mod:`sealkeeper.console.domain_proofs`)."""
        return self._validate_domain(d, method)

    def _validate_domain(self, d: Domain, method: str) -> Domain:
        taken = self.s.scalar(select(Domain.id).where(
            Domain.name == d.name, Domain.status == DomainStatus.VALIDATED,
            Domain.organization_id != d.organization_id))
        if taken is not None:
            raise Conflict("this domain is already validated for another organization")
        if d.status != DomainStatus.VALIDATED:
            d.status = DomainStatus.VALIDATED
            d.validation_method = method
            d.validated_at = self.clock()
        return d

    def _validated_domain(self, org_id: str, name: str) -> Domain | None:
        return self.s.scalar(select(Domain).where(Domain.organization_id == org_id,
                                                  Domain.name == name,
                                                  Domain.status == DomainStatus.VALIDATED))

    def _user(self, user_id: str) -> User:
        user = self.s.get(User, user_id)
        if user is None:
            raise NotFound("user not found")
        return user
