"""Employees: added by the account administrator, validated by a mailed
one-time link, deleted with every grant, token and certificate withdrawn in
the same transaction (their past records stay)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import OneTimePurpose, User, UserStatus
from sealkeeper.accounts.service import AccountService
from sealkeeper.authz import Actor, require_account_admin, require_admin
from sealkeeper.clock import Clock
from sealkeeper.errors import Conflict, InvalidInput, NotFound
from sealkeeper.mail import Outbox
from sealkeeper.orgs.models import Organization, OrgStatus
from sealkeeper.orgs.service import OrganizationService
from sealkeeper.seals.service import GrantService, SealService
from sealkeeper.validation import email_domain, normalize_email, require_text


class EmployeeService:
    def __init__(self, session: Session, clock: Clock, accounts: AccountService,
                 orgs: OrganizationService, seals: SealService, grants: GrantService,
                 outbox: Outbox, base_url: str,
                 on_delete: Callable[[User], object] | None = None) -> None:
        self.s = session
        self.clock = clock
        self.accounts = accounts
        self.orgs = orgs
        self.seals = seals
        self.grants = grants
        self.outbox = outbox
        self.base_url = base_url
        self._on_delete = on_delete

    def add(self, actor: Actor, org_id: str, email: str, display_name: str) -> User:
        org = self._org(actor, org_id)
        require_account_admin(actor, org.id)
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated yet")
        email = normalize_email(email)
        name = require_text(display_name, "display_name", max_len=200)
        if self.orgs._validated_domain(org.id, email_domain(email)) is None:
            raise InvalidInput("the email is not in a validated domain of the organization",
                               field="email")
        user = self.accounts.find_by_email(email)
        if user is not None:
            if user.organization_id != org.id or user.status == UserStatus.DELETED:
                raise Conflict("this email already has an account", field="email")
            if user.status == UserStatus.ACTIVE:
                raise Conflict("this employee is already validated", field="email")
        else:
            user = User(email=email, display_name=name, organization_id=org.id,
                        status=UserStatus.INVITED, created_at=self.clock())
            self.s.add(user)
            self.s.flush()
        self._invite(org, user)
        return user

    def resend_invitation(self, actor: Actor, org_id: str, user_id: str) -> User:
        org = self._org(actor, org_id)
        require_account_admin(actor, org.id)
        user = self._employee(org, user_id)
        if user.status != UserStatus.INVITED:
            raise Conflict("this employee has already validated")
        self._invite(org, user)
        return user

    def _invite(self, org: Organization, user: User) -> None:
        token = self.accounts.issue_one_time(user, OneTimePurpose.EMPLOYEE_VALIDATION)
        self.outbox.add(
            user.email, f"Validate your {org.legal_name} e-sign account",
            f"{org.legal_name} added you as an employee on sealkeeper.\n"
            f"Open this link to validate your email address and choose a password:\n"
            f"{self.base_url}/validate?token={token}\n\nThe link works once, for 7 days.\n")

    def validate(self, token: str, password: str, display_name: str | None = None) -> User:
        """The employee follows the mailed link: the account becomes active and
        their personal e-signature is created."""
        if not isinstance(token, str) or not token.startswith("sko_") or len(token) > 100:
            raise InvalidInput("this link is invalid, expired or already used", field="token")
        user = self.accounts.consume_one_time(token, OneTimePurpose.EMPLOYEE_VALIDATION)
        self.accounts.set_password(user, password)
        if display_name:
            user.display_name = require_text(display_name, "display_name", max_len=200)
        user.status = UserStatus.ACTIVE
        user.validated_at = self.clock()
        self.seals.create_personal_seal(user)
        return user

    def all(self, actor: Actor, org_id: str) -> list[User]:
        org = self._org(actor, org_id)
        require_admin(actor, org.id)
        return list(self.s.scalars(select(User).where(User.organization_id == org.id)
                                   .order_by(User.created_at, User.email)))

    def get(self, actor: Actor, org_id: str, user_id: str) -> User:
        org = self._org(actor, org_id)
        require_admin(actor, org.id)
        return self._employee(org, user_id)

    def delete(self, actor: Actor, org_id: str, user_id: str) -> User:
        """Withdraw every grant, disable every token and revoke the personal
        certificate, all in the caller's transaction."""
        org = self._org(actor, org_id)
        require_account_admin(actor, org.id)
        user = self._employee(org, user_id)
        if user.status == UserStatus.DELETED:
            raise Conflict("this employee is already deleted")
        if user.id == org.account_admin_id:
            raise Conflict("the account administrator cannot be deleted")
        if user.id == org.eseal_admin_id:
            raise Conflict("the e-seal administrator cannot be deleted; designate another "
                           "one with a new authorization letter first")
        now = self.clock()
        self.grants.withdraw_all_for_user(user.id, by=actor.user_id)
        self.accounts.revoke_all_tokens(user.id)
        personal = self.seals.personal_seal_of(user.id)
        if personal is not None:
            self.seals.revoke_seal(personal, "affiliation_changed")
        if self._on_delete is not None:
            self._on_delete(user)  # e.g. revoke the encryption keys
        user.status = UserStatus.DELETED
        user.deleted_at = now
        user.password_hash = None
        return user

    def _org(self, actor: Actor, org_id: str) -> Organization:
        org = self.s.get(Organization, org_id) if isinstance(org_id, str) else None
        if org is None or not actor.member_of(org.id):
            raise NotFound("organization not found")
        return org

    def _employee(self, org: Organization, user_id: str) -> User:
        user = self.s.get(User, user_id) if isinstance(user_id, str) else None
        if user is None or user.organization_id != org.id:
            raise NotFound("employee not found")
        return user
