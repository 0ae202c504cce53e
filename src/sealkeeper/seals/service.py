"""Seals and grants: creation (six per organization, one personal per
employee), status changes, and who may use which seal."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import User, UserStatus
from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.authz import Actor, require_admin, require_eseal_admin
from sealkeeper.clock import Clock
from sealkeeper.errors import Conflict, InvalidInput, NotFound
from sealkeeper.orgs.models import Domain, DomainStatus, Organization, OrgStatus
from sealkeeper.seals.models import (
    ORGANIZATION_SEAL_TYPES,
    Grant,
    Seal,
    SealStatus,
    SealType,
)
from sealkeeper.validation import email_domain

#: Appends an entry to an organization's tamper-evident log (audit layer).
LogWriter = Callable[[str, EntryDraft], object]

#: Called when a seal is created, to give it a key and certificate (PKI layer).
SealHook = Callable[[Seal, datetime], None]
#: Called when a seal is revoked, with an RFC 5280 reason name, to revoke its
#: certificates (PKI layer).
RevokeHook = Callable[[Seal, datetime, str], object]


def new_seal_id() -> str:
    """A SealID: 'SEAL-' and 16 base32 characters (80 random bits)."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")
    return "SEAL-" + "-".join(raw[i:i + 4] for i in range(0, 16, 4))


class SealService:
    def __init__(self, session: Session, clock: Clock, *,
                 on_create: SealHook | None = None,
                 on_revoke: RevokeHook | None = None,
                 log: LogWriter | None = None) -> None:
        self.s = session
        self.clock = clock
        self._on_create = on_create
        self._on_revoke = on_revoke
        self._log = log

    def record_status(self, seal: Seal, by: str | None, **details: str) -> None:
        if self._log is not None:
            self._log(seal.organization_id, EntryDraft.seal_status(
                seal_id=seal.seal_id, seal_name=seal.name, seal_type=str(seal.type),
                status=str(seal.status), by_user_id=by, **details))

    # -- creation (internal, called by the organization / employee flows) --

    def create_organization_seals(self, org: Organization) -> list[Seal]:
        return [self._create(org.id, t, f"{org.legal_name} {t.label}") for t in
                ORGANIZATION_SEAL_TYPES]

    def create_personal_seal(self, user: User) -> Seal:
        if user.organization_id is None:
            raise Conflict("only members of an organization have a personal e-signature")
        existing = self.personal_seal_of(user.id)
        if existing is not None:
            return existing
        return self._create(user.organization_id, SealType.PERSONAL, user.display_name,
                            owner=user.id)

    def _create(self, org_id: str, seal_type: SealType, name: str,
                owner: str | None = None) -> Seal:
        now = self.clock()
        seal = Seal(seal_id=new_seal_id(), organization_id=org_id, type=seal_type, name=name,
                    owner_user_id=owner, status=SealStatus.ACTIVE, created_at=now)
        self.s.add(seal)
        self.s.flush()
        if self._on_create is not None:
            self._on_create(seal, now)
        return seal

    # -- reading -----------------------------------------------------------

    def by_seal_id(self, seal_id: str) -> Seal | None:
        if not isinstance(seal_id, str) or len(seal_id) > 64:
            return None
        return self.s.scalar(select(Seal).where(Seal.seal_id == seal_id))

    def get_visible(self, actor: Actor, seal_id: str) -> Seal:
        """A seal the actor may see: any seal of their organization for an
        administrator, otherwise only seals they may use."""
        seal = self.by_seal_id(seal_id)
        if seal is None or not actor.member_of(seal.organization_id):
            raise NotFound("seal not found")
        if actor.is_eseal_admin or actor.is_account_admin:
            return seal
        if seal.owner_user_id == actor.user_id or self.grant_in_force(seal, actor.user_id):
            return seal
        raise NotFound("seal not found")

    def organization_seals(self, actor: Actor, org_id: str) -> list[Seal]:
        require_admin(actor, org_id)
        return list(self.s.scalars(
            select(Seal).where(Seal.organization_id == org_id)
            .order_by(Seal.type != SealType.OFFICIAL, Seal.created_at, Seal.seal_id)))

    def personal_seal_of(self, user_id: str) -> Seal | None:
        return self.s.scalar(select(Seal).where(Seal.owner_user_id == user_id,
                                                Seal.type == SealType.PERSONAL))

    def my_seals(self, actor: Actor) -> list[tuple[Seal, str]]:
        """Seals the actor may use now, each with how ('granted' / 'personal')."""
        out: list[tuple[Seal, str]] = []
        personal = self.personal_seal_of(actor.user_id)
        if personal is not None and personal.status != SealStatus.REVOKED:
            out.append((personal, "personal"))
        granted = self.s.scalars(
            select(Seal).join(Grant, Grant.seal_pk == Seal.id)
            .where(Grant.user_id == actor.user_id, Grant.withdrawn_at.is_(None),
                   Seal.status != SealStatus.REVOKED)
            .order_by(Seal.created_at, Seal.seal_id))
        out.extend((s, "granted") for s in granted)
        if actor.token_seal_ids is not None:
            out = [(s, how) for s, how in out if s.seal_id in actor.token_seal_ids]
        return out

    def grant_in_force(self, seal: Seal, user_id: str) -> bool:
        return self.s.scalar(
            select(Grant.id).where(Grant.seal_pk == seal.id, Grant.user_id == user_id,
                                   Grant.withdrawn_at.is_(None))) is not None

    # -- status ------------------------------------------------------------

    def set_enabled(self, actor: Actor, seal_id: str, enabled: bool) -> Seal:
        seal = self._administered(actor, seal_id)
        if seal.status == SealStatus.REVOKED:
            raise Conflict("this seal is revoked; it can never be used again")
        new = SealStatus.ACTIVE if enabled else SealStatus.DISABLED
        if seal.status != new:
            seal.status = new
            seal.status_changed_at = self.clock()
            self.record_status(seal, actor.user_id)
        return seal

    def revoke(self, actor: Actor, seal_id: str,
               reason: str = "cessation_of_operation") -> Seal:
        """E-seal administrator: retire a seal for good; its certificates are revoked."""
        seal = self._administered(actor, seal_id)
        if seal.status == SealStatus.REVOKED:
            raise Conflict("this seal is already revoked")
        self.revoke_seal(seal, reason, by=actor.user_id)
        return seal

    def revoke_seal(self, seal: Seal, reason: str = "cessation_of_operation",
                    by: str | None = None) -> None:
        """Revoke for good (also internal: employee deletion)."""
        if seal.status == SealStatus.REVOKED:
            return
        now = self.clock()
        seal.status = SealStatus.REVOKED
        seal.status_changed_at = now
        if self._on_revoke is not None:
            self._on_revoke(seal, now, reason)
        self.record_status(seal, by, reason=reason)

    def administered(self, actor: Actor, seal_id: str) -> Seal:
        """A seal of the actor's organization that the actor administers."""
        return self._administered(actor, seal_id)

    def _administered(self, actor: Actor, seal_id: str) -> Seal:
        seal = self.by_seal_id(seal_id)
        if seal is None or not actor.member_of(seal.organization_id):
            raise NotFound("seal not found")
        require_eseal_admin(actor, seal.organization_id)
        return seal


class GrantService:
    """Only the e-seal administrator grants and withdraws usage rights."""

    def __init__(self, session: Session, clock: Clock, seals: SealService,
                 log: LogWriter | None = None) -> None:
        self.s = session
        self.clock = clock
        self.seals = seals
        self._log = log

    def _record(self, kind: str, seal: Seal, user: User, by: str, **details: str) -> None:
        if self._log is None:
            return
        make = EntryDraft.grant if kind == "grant" else EntryDraft.withdrawal
        self._log(seal.organization_id, make(
            seal_id=seal.seal_id, seal_name=seal.name, seal_type=str(seal.type),
            user_id=user.id, user_email=user.email, by_user_id=by, **details))

    def grant(self, actor: Actor, seal_id: str, user_id: str) -> Grant:
        seal = self.seals._administered(actor, seal_id)
        if seal.type == SealType.PERSONAL:
            raise InvalidInput("a personal e-signature belongs to its owner and cannot be "
                               "granted", field="seal_id")
        if seal.status == SealStatus.REVOKED:
            raise Conflict("this seal is revoked")
        user = self._grantable_user(seal.organization_id, user_id)
        existing = self.s.scalar(select(Grant).where(
            Grant.seal_pk == seal.id, Grant.user_id == user.id, Grant.withdrawn_at.is_(None)))
        if existing is not None:
            return existing
        g = Grant(seal_pk=seal.id, user_id=user.id, granted_by=actor.user_id,
                  granted_at=self.clock())
        self.s.add(g)
        self.s.flush()
        self._record("grant", seal, user, actor.user_id)
        return g

    def withdraw(self, actor: Actor, seal_id: str, user_id: str) -> Grant:
        seal = self.seals._administered(actor, seal_id)
        g = self.s.scalar(select(Grant).where(
            Grant.seal_pk == seal.id, Grant.user_id == user_id, Grant.withdrawn_at.is_(None)))
        if g is None:
            raise NotFound("this employee holds no grant for this seal")
        g.withdrawn_at = self.clock()
        g.withdrawn_by = actor.user_id
        user = self.s.get(User, g.user_id)
        assert user is not None
        self._record("withdrawal", seal, user, actor.user_id)
        return g

    def withdraw_all_for_user(self, user_id: str, by: str,
                              reason: str = "employee_deleted") -> int:
        rows = list(self.s.execute(
            select(Grant, Seal).join(Seal, Seal.id == Grant.seal_pk)
            .where(Grant.user_id == user_id, Grant.withdrawn_at.is_(None))))
        user = self.s.get(User, user_id)
        now = self.clock()
        for g, seal in rows:
            g.withdrawn_at, g.withdrawn_by = now, by
            if user is not None:
                self._record("withdrawal", seal, user, by, reason=reason)
        self.s.flush()
        return len(rows)

    def grants_of_seal(self, actor: Actor, seal_id: str,
                       include_withdrawn: bool = False) -> list[tuple[Grant, User]]:
        seal = self.seals.by_seal_id(seal_id)
        if seal is None or not actor.member_of(seal.organization_id):
            raise NotFound("seal not found")
        require_admin(actor, seal.organization_id, "seal")
        q = (select(Grant, User).join(User, User.id == Grant.user_id)
             .where(Grant.seal_pk == seal.id).order_by(Grant.granted_at))
        if not include_withdrawn:
            q = q.where(Grant.withdrawn_at.is_(None))
        return [(g, u) for g, u in self.s.execute(q)]

    def _grantable_user(self, org_id: str, user_id: str) -> User:
        user = self.s.get(User, user_id) if isinstance(user_id, str) else None
        if user is None or user.organization_id != org_id:
            raise NotFound("employee not found")
        org = self.s.get(Organization, org_id)
        if org is None or org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated")
        if user.status != UserStatus.ACTIVE or user.validated_at is None:
            raise Conflict("only validated employees can be granted a seal")
        validated = self.s.scalar(select(Domain.id).where(
            Domain.organization_id == org_id, Domain.name == email_domain(user.email),
            Domain.status == DomainStatus.VALIDATED))
        if validated is None:
            raise Conflict("only employees whose email is in a validated domain of the "
                           "organization can be granted a seal")
        return user



class SealImages:
    """The stamp image of a seal: the organization's upload, or one generated
    from the organization's (or the person's) name and the seal type."""

    def __init__(self, session: Session, seals: SealService) -> None:
        self.s = session
        self.seals = seals

    def _name(self, seal: Seal) -> str:
        if seal.type == SealType.PERSONAL and seal.owner_user_id:
            user = self.s.get(User, seal.owner_user_id)
            return user.display_name if user else seal.name
        org = self.s.get(Organization, seal.organization_id)
        return org.legal_name if org else seal.name

    def png(self, actor: Actor, seal_id: str) -> bytes:
        from sealkeeper.seals import images

        seal = self.seals.get_visible(actor, seal_id)
        if seal.custom_image_png is not None:
            return seal.custom_image_png
        return images.render_png(str(seal.type), self._name(seal))

    def svg(self, actor: Actor, seal_id: str) -> str:
        from sealkeeper.seals import images

        seal = self.seals.get_visible(actor, seal_id)
        return images.render_svg(str(seal.type), self._name(seal))

    def upload(self, actor: Actor, seal_id: str, data: bytes, content_type: str) -> Seal:
        """E-seal administrator: use the organization's own image (PNG or JPEG)."""
        from sealkeeper.seals import images

        seal = self.seals.administered(actor, seal_id)
        png, _ = images.validate_uploaded_image(data, content_type)
        seal.custom_image_png = png
        return seal

    def reset(self, actor: Actor, seal_id: str) -> Seal:
        seal = self.seals.administered(actor, seal_id)
        seal.custom_image_png = None
        return seal
