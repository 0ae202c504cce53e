"""The encryption service: encryption keys and certificates, the directory,
grants for organization keys, and the cloud key unwrap.

Documents are encrypted on the client for the recipients' encryption
certificates; the service only ever sees one recipient info (the content key
wrapped for one certificate) and gives back the unwrapped content key.

Keys. Every active employee of a validated organization has one current
encryption key, created in the key store (purpose *decrypt*, separate from any
signing key) the first time anyone looks the employee up or the employee lists
their own keys. An organization gets one when its e-seal administrator asks.
A key whose certificate has expired is replaced on the next lookup; the old one
keeps decrypting old files. A revoked key never decrypts again.

Who may decrypt with a key: its owner for a personal key; for the
organization's key, the employees the e-seal administrator granted it
(:class:`~sealkeeper.encryption.models.EncryptionGrant`, one grant per
organization covering its current and past keys; modelled on seal grants).

Checks at the moment of decrypting, in order (any refusal consumes nothing
and is written to the security log, except malformed input): the recipient
info parses; the caller's account is active in a validated organization and
their API token is not limited to seals; the recipient info names a key of the
caller's organization (another organization's key is *not found*); the caller
owns it or holds a grant for the organization's key; the key is not revoked;
the approval password (the signing one: same lockout, same failure counter);
the key unwraps the content key. Then one usage-log entry: file name, digest
of the encrypted file, the key used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import User, UserStatus
from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.audit.encoding import EntryKind
from sealkeeper.audit.security import PendingSecurityEvents, SecurityEventDraft
from sealkeeper.audit.service import AuditLog
from sealkeeper.authz import Actor, require_admin, require_eseal_admin
from sealkeeper.clock import Clock
from sealkeeper.crypto import envelope, x509ca
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, KeyPurpose
from sealkeeper.encryption.models import (
    EncryptionGrant,
    EncryptionKey,
    EncryptionKeyStatus,
    KeyOwner,
)
from sealkeeper.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SealkeeperError,
)
from sealkeeper.orgs.models import Organization, OrgStatus
from sealkeeper.pki.models import CaRole
from sealkeeper.pki.service import PkiService, serial_hex
from sealkeeper.signing.approvals import ApprovalService
from sealkeeper.validation import normalize_email, require_text

__all__ = ["DEFAULT_KEY_ALGORITHM", "EncryptionService", "Unwrapped"]

T = TypeVar("T")

DEFAULT_KEY_ALGORITHM = KeyAlgorithm.EC_P256
#: Pseudo seal fields of the organization key's grant entries in the usage log.
GRANT_LOG_SEAL_ID = "org-encryption-key"
GRANT_LOG_SEAL_TYPE = "encryption"


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """A content key given back to the caller, and where it was logged."""

    key: EncryptionKey
    content_key: bytes
    scheme: str
    log_seq: int


class EncryptionService:
    def __init__(self, session: Session, clock: Clock, *, pki: PkiService, audit: AuditLog,
                 approvals: ApprovalService, security: PendingSecurityEvents,
                 user_key_algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM) -> None:
        self.s = session
        self.clock = clock
        self.pki = pki
        self.audit = audit
        self.approvals = approvals
        self.security = security
        self.user_key_algorithm = KeyAlgorithm(user_key_algorithm)

    # -- refusals ------------------------------------------------------------

    def _refusing(self, actor: Actor, action: str, api: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SealkeeperError as e:
            if not isinstance(e, InvalidInput):
                self._refused(actor, action, api, e.code, e.message)
            raise

    def _refused(self, actor: Actor, action: str, api: str, reason: str, message: str) -> None:
        self.security.add(SecurityEventDraft(
            action=action, reason=reason, message=message,
            organization_id=actor.organization_id, user_id=actor.user_id, api=api))

    # -- the directory -------------------------------------------------------

    def _require_directory_user(self, actor: Actor) -> None:
        org = self.s.get(Organization, actor.organization_id) if actor.organization_id else None
        if org is None or org.status != OrgStatus.VALIDATED:
            raise PermissionDenied("only members of a validated organization may use the "
                                   "encryption directory")

    def lookup_user(self, actor: Actor, email: str) -> EncryptionKey:
        """The current encryption key of the employee with this email (in any
        validated organization), created on first lookup."""
        self._require_directory_user(actor)
        address = normalize_email(email).lower()
        user = self.s.scalar(select(User).where(User.email == address))
        if user is None or not self._receives(user):
            raise NotFound("no encryption certificate for this email")
        return self._current_user_key(user)

    def lookup_organization(self, actor: Actor, org_id: str) -> EncryptionKey:
        """The current encryption key of a validated organization, if it has one."""
        self._require_directory_user(actor)
        org = self.s.get(Organization, org_id) if isinstance(org_id, str) else None
        if org is None or org.status != OrgStatus.VALIDATED:
            raise NotFound("no encryption certificate for this organization")
        row = self._current(org.id, None)
        if row is None:
            raise NotFound("no encryption certificate for this organization")
        return self._renewed_if_expired(row, org, None)

    def my_keys(self, actor: Actor) -> list[EncryptionKey]:
        """The keys the actor may decrypt with: their own (current and past,
        the current one created if missing) and, with a grant, the
        organization's."""
        user = self.s.get(User, actor.user_id)
        if user is None or not self._receives(user):
            return []
        self._current_user_key(user)
        rows = list(self.s.scalars(
            select(EncryptionKey).where(EncryptionKey.user_id == user.id,
                                        EncryptionKey.status == EncryptionKeyStatus.ACTIVE)
            .order_by(EncryptionKey.created_at)))
        assert user.organization_id is not None
        if self._grant_in_force(user.organization_id, user.id):
            rows += list(self.s.scalars(
                select(EncryptionKey).where(
                    EncryptionKey.organization_id == user.organization_id,
                    EncryptionKey.owner == KeyOwner.ORGANIZATION,
                    EncryptionKey.status == EncryptionKeyStatus.ACTIVE)
                .order_by(EncryptionKey.created_at)))
        return rows

    def chain_of(self, row: EncryptionKey) -> list[bytes]:
        """The certificate followed by the issuing CA and root (DER)."""
        return [row.certificate_der, *self.pki.chain_ders()]

    def _receives(self, user: User) -> bool:
        """An active, validated employee of a validated organization."""
        if user.status != UserStatus.ACTIVE or user.validated_at is None \
                or user.organization_id is None:
            return False
        org = self.s.get(Organization, user.organization_id)
        return org is not None and org.status == OrgStatus.VALIDATED

    # -- keys ----------------------------------------------------------------

    def _current(self, org_id: str, user_id: str | None) -> EncryptionKey | None:
        q = select(EncryptionKey).where(EncryptionKey.is_current.is_(True))
        if user_id is None:
            q = q.where(EncryptionKey.organization_id == org_id,
                        EncryptionKey.user_id.is_(None))
        else:
            q = q.where(EncryptionKey.user_id == user_id)
        return self.s.scalar(q)

    def _current_user_key(self, user: User) -> EncryptionKey:
        assert user.organization_id is not None
        org = self.s.get(Organization, user.organization_id)
        assert org is not None
        row = self._current(org.id, user.id)
        if row is None:
            return self._create(org, user, self.user_key_algorithm)
        return self._renewed_if_expired(row, org, user)

    def _renewed_if_expired(self, row: EncryptionKey, org: Organization,
                            user: User | None) -> EncryptionKey:
        if row.not_after > self.clock() and row.status == EncryptionKeyStatus.ACTIVE:
            return row
        row.is_current = False
        self.s.flush()
        return self._create(org, user, KeyAlgorithm(row.key_algorithm))

    def _create(self, org: Organization, user: User | None,
                algorithm: KeyAlgorithm) -> EncryptionKey:
        """A new decryption key and its certificate, as the current key of the
        user (or of the organization when ``user`` is None)."""
        now = self.clock()
        keystore = self.pki.keystore
        label = f"enc-{user.id}" if user is not None else f"enc-org-{org.id}"
        gen = keystore.generate(algorithm, label=label, purpose=KeyPurpose.DECRYPT)
        issuing = self.pki.key(CaRole.ISSUING)
        subject: x509ca.SealSubject
        if user is not None:
            subject = x509ca.PersonalSignature(name=user.display_name, email=user.email,
                                               organization=org.legal_name)
        else:
            subject = x509ca.OrganizationSeal(
                organization=org.legal_name,
                organization_identifier=f"NTRXX-{org.registration_number}",
                seal_name=f"{org.legal_name} Encryption")
        years = self.pki.settings.seal_certificate_years
        cert = x509ca.issue_encryption_certificate(
            issuing.handle, issuing.certificate, gen.public_key, subject=subject,
            serial=x509ca.new_serial(), not_before=now,
            not_after=now + timedelta(days=365 * years), urls=self.pki.urls)
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        row = EncryptionKey(
            organization_id=org.id, owner=KeyOwner.USER if user else KeyOwner.ORGANIZATION,
            user_id=user.id if user else None, key_algorithm=algorithm.value,
            key_ref=gen.key_ref, certificate_der=cert.public_bytes(Encoding.DER),
            issuer_key_id=issuing.id, serial=serial_hex(cert.serial_number),
            key_identifier=ski.hex(), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, status=EncryptionKeyStatus.ACTIVE,
            is_current=True, created_at=now)
        try:
            with self.s.begin_nested():
                self.s.add(row)
                self.s.flush()
        except IntegrityError:
            # Another request created the current key meanwhile: use that one.
            keystore.destroy(gen.key_ref)
            other = self._current(org.id, user.id if user else None)
            if other is None:
                raise
            return other
        return row

    def create_organization_key(self, actor: Actor, org_id: str,
                                algorithm: KeyAlgorithm | str = DEFAULT_KEY_ALGORITHM,
                                ) -> EncryptionKey:
        """The e-seal administrator gives the organization an encryption key."""
        org = self._org(actor, org_id)
        require_eseal_admin(actor, org.id, "organization")
        try:
            alg = KeyAlgorithm(algorithm)
        except ValueError:
            raise InvalidInput(f"unknown key algorithm {algorithm!r}; use one of "
                               f"{', '.join(a.value for a in KeyAlgorithm)}",
                               field="algorithm") from None
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated")
        if self._current(org.id, None) is not None:
            raise Conflict("the organization already has an encryption key")
        return self._create(org, None, alg)

    def revoke_user_keys(self, user_id: str, reason: str = "affiliation_changed") -> int:
        """Revoke every key of a user (for the deletion of an employee; the
        decryption checks refuse a deleted employee in any case)."""
        now = self.clock()
        count = 0
        for row in self.s.scalars(select(EncryptionKey).where(
                EncryptionKey.user_id == user_id,
                EncryptionKey.status == EncryptionKeyStatus.ACTIVE)):
            row.status, row.revoked_at, row.revocation_reason = \
                EncryptionKeyStatus.REVOKED, now, reason
            count += 1
        self.s.flush()
        if count:  # relying parties outside sealkeeper learn it from the CRL and OCSP
            self.pki.publish_crl(CaRole.ISSUING)
        return count

    def _org(self, actor: Actor, org_id: str) -> Organization:
        org = self.s.get(Organization, org_id) if isinstance(org_id, str) else None
        if org is None or not actor.member_of(org.id):
            raise NotFound("organization not found")
        return org

    # -- grants for the organization's key -----------------------------------

    def _grant_in_force(self, org_id: str, user_id: str) -> bool:
        return self.s.scalar(select(EncryptionGrant.id).where(
            EncryptionGrant.organization_id == org_id, EncryptionGrant.user_id == user_id,
            EncryptionGrant.withdrawn_at.is_(None))) is not None

    def grants(self, actor: Actor, org_id: str) -> list[tuple[EncryptionGrant, User]]:
        org = self._org(actor, org_id)
        require_admin(actor, org.id)
        q = (select(EncryptionGrant, User).join(User, User.id == EncryptionGrant.user_id)
             .where(EncryptionGrant.organization_id == org.id,
                    EncryptionGrant.withdrawn_at.is_(None))
             .order_by(EncryptionGrant.granted_at))
        return [(g, u) for g, u in self.s.execute(q).all()]

    def grant(self, actor: Actor, org_id: str, user_id: str) -> tuple[EncryptionGrant, User]:
        """Let an employee decrypt with the organization's keys (idempotent)."""
        org = self._org(actor, org_id)
        require_eseal_admin(actor, org.id, "organization")
        user = self.s.get(User, user_id) if isinstance(user_id, str) else None
        if user is None or user.organization_id != org.id:
            raise NotFound("employee not found")
        if not self._receives(user):
            raise Conflict("only validated employees can be granted the organization's "
                           "encryption key")
        existing = self.s.scalar(select(EncryptionGrant).where(
            EncryptionGrant.organization_id == org.id, EncryptionGrant.user_id == user.id,
            EncryptionGrant.withdrawn_at.is_(None)))
        if existing is not None:
            return existing, user
        row = EncryptionGrant(organization_id=org.id, user_id=user.id,
                              granted_by=actor.user_id, granted_at=self.clock())
        self.s.add(row)
        self.s.flush()
        self._log_grant(EntryKind.GRANT, org, user, actor.user_id)
        return row, user

    def withdraw(self, actor: Actor, org_id: str, user_id: str) -> tuple[EncryptionGrant, User]:
        org = self._org(actor, org_id)
        require_eseal_admin(actor, org.id, "organization")
        row = self.s.scalar(select(EncryptionGrant).where(
            EncryptionGrant.organization_id == org.id, EncryptionGrant.user_id == user_id,
            EncryptionGrant.withdrawn_at.is_(None))) if isinstance(user_id, str) else None
        if row is None:
            raise NotFound("this employee holds no grant for the organization's "
                           "encryption key")
        row.withdrawn_at, row.withdrawn_by = self.clock(), actor.user_id
        user = self.s.get(User, row.user_id)
        assert user is not None
        self.s.flush()
        self._log_grant(EntryKind.WITHDRAWAL, org, user, actor.user_id)
        return row, user

    def _log_grant(self, kind: EntryKind, org: Organization, user: User, by: str) -> None:
        make = EntryDraft.grant if kind == EntryKind.GRANT else EntryDraft.withdrawal
        self.audit.append(org.id, [make(
            seal_id=GRANT_LOG_SEAL_ID, seal_name=f"{org.legal_name} Encryption"[:300],
            seal_type=GRANT_LOG_SEAL_TYPE, user_id=user.id, user_email=user.email,
            by_user_id=by)])

    # -- decryption ----------------------------------------------------------

    def decrypt(self, actor: Actor, recipient_info: bytes, *, file_name: str,
                file_digest: Hashed, password: str, api: str) -> Unwrapped:
        """Unwrap the content key of ``recipient_info`` (a DER CMS RecipientInfo)
        for the caller; see the module docstring for the checks."""
        def run() -> Unwrapped:
            parsed = envelope.parse_recipient_info(recipient_info)
            name = require_text(file_name, "file_name", max_len=1024)
            user = self._decrypting_user(actor)
            row, index = self._key_for(actor, parsed)
            if row.status != EncryptionKeyStatus.ACTIVE:
                raise Conflict("this encryption key is revoked")
            self.approvals.verify(actor.user_id, password)
            handle = KeyHandle(self.pki.keystore, row.key_ref, KeyAlgorithm(row.key_algorithm))
            try:
                content_key = envelope.unwrap_content_key(parsed, index, handle)
            except envelope.UnwrapFailed:
                self._refused(actor, "decrypt", api, "unwrap_failed",
                              f"the content key did not unwrap with encryption key {row.id}")
                raise InvalidInput("the content key cannot be unwrapped: the file is damaged "
                                   "or was not encrypted for this key",
                                   field="recipient_info") from None
            draft = replace(
                EntryDraft.decryption(
                    user_id=user.id, user_email=user.email, file_name=name, api=api,
                    key_id=row.id, key_owner=str(row.owner), key_algorithm=row.key_algorithm,
                    certificate_serial=row.serial, scheme=parsed.scheme),
                file_digest=file_digest.digest.hex(),
                digest_algorithm=file_digest.algorithm.value)
            appended = self.audit.append(row.organization_id, [draft])
            return Unwrapped(row, content_key, parsed.scheme, appended[0].seq)

        return self._refusing(actor, "decrypt", api, run)

    def _decrypting_user(self, actor: Actor) -> User:
        user = self.s.get(User, actor.user_id)
        if user is None or user.status != UserStatus.ACTIVE:
            raise PermissionDenied("this account is deleted; it can no longer decrypt")
        if actor.token_seal_ids is not None:
            raise PermissionDenied("this API token is limited to some seals; decrypt with "
                                   "an unrestricted token")
        org = self.s.get(Organization, user.organization_id) if user.organization_id else None
        if org is None or org.status != OrgStatus.VALIDATED:
            raise PermissionDenied("only members of a validated organization can decrypt")
        return user

    def _key_for(self, actor: Actor,
                 parsed: envelope.ParsedRecipient) -> tuple[EncryptionKey, int]:
        """The caller's key among those the recipient info names, and its index."""
        mine: list[tuple[EncryptionKey, int]] = []
        for index, rid in enumerate(parsed.rids):
            for row in self._rows_for(rid):
                if row.organization_id == actor.organization_id:
                    mine.append((row, index))
        if not mine:
            raise NotFound("no encryption key of yours matches this recipient info")
        for row, index in mine:
            if row.owner == KeyOwner.USER and row.user_id == actor.user_id:
                return row, index
        for row, index in mine:
            if row.owner == KeyOwner.ORGANIZATION:
                if self._grant_in_force(row.organization_id, actor.user_id):
                    return row, index
                raise PermissionDenied("you have no grant to decrypt with the "
                                       "organization's encryption key")
        raise NotFound("no encryption key of yours matches this recipient info")

    def _rows_for(self, rid: envelope.RecipientId) -> Sequence[EncryptionKey]:
        if rid.key_identifier is not None:
            q = select(EncryptionKey).where(
                EncryptionKey.key_identifier == rid.key_identifier.hex())
        elif rid.serial is not None and rid.serial > 0:
            q = select(EncryptionKey).where(EncryptionKey.serial == serial_hex(rid.serial))
        else:
            return []
        return [row for row in self.s.scalars(q) if rid.matches(row.certificate_der)]
