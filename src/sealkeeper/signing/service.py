"""The signing service behind every API: the checks made at the moment of
signing, then one CMS signature per document, one quota unit and one
usage-log entry each, all in the caller's transaction.

Checks, in order (any refusal is a clear error, consumes nothing, and is
written to the security log even though the request rolls back):
the seal exists for this user, the API token may use it, the user may use it
(personal owner or a grant in force), the seal is active, the organization is
validated, the seal's certificate is valid now and not revoked, the approval
(password or single-use approval) covers exactly these hashes, and the quota
covers the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.audit.security import PendingSecurityEvents, SecurityEventDraft
from sealkeeper.audit.service import AuditLog
from sealkeeper.authz import Actor
from sealkeeper.clock import Clock
from sealkeeper.crypto.cms import timestamp_attribute
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, SignatureScheme
from sealkeeper.errors import (
    ApprovalRefused,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    SealkeeperError,
)
from sealkeeper.orgs.models import Organization, OrgStatus
from sealkeeper.pki.models import CertStatus, SealCertificate
from sealkeeper.pki.service import PkiService
from sealkeeper.quota.service import QuotaService
from sealkeeper.seals.models import Grant, Seal, SealStatus
from sealkeeper.signing.approvals import ApprovalService
from sealkeeper.signing.models import Approval
from sealkeeper.signing.templates import TemplateCache

T = TypeVar("T")

#: Tolerated clock skew when checking certificate validity.
CERT_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Document:
    file_name: str
    digest: Hashed


@dataclass(frozen=True, slots=True)
class Signed:
    file_name: str
    digest: Hashed
    cms: bytes
    signature: bytes
    log_seq: int


@dataclass(frozen=True, slots=True)
class SignResult:
    seal: Seal
    certificate: SealCertificate
    chain: list[bytes]
    approval_id: str
    documents: list[Signed]


@dataclass(frozen=True, slots=True)
class RawSignature:
    """A signature over a hash as such (CSC signHash)."""

    digest: Hashed
    signature: bytes
    log_seq: int


class SigningService:
    def __init__(self, session: Session, clock: Clock, *, pki: PkiService, quota: QuotaService,
                 audit: AuditLog, approvals: ApprovalService,
                 security: PendingSecurityEvents, templates: TemplateCache,
                 batch_limit: int) -> None:
        self.s = session
        self.clock = clock
        self.pki = pki
        self.quota = quota
        self.audit = audit
        self.approvals = approvals
        self.security = security
        self.templates = templates
        self.batch_limit = batch_limit

    # -- refusals ------------------------------------------------------------

    def _refusing(self, actor: Actor, action: str, seal_id: str | None, api: str,
                  fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SealkeeperError as e:
            if not isinstance(e, InvalidInput):
                self.security.add(SecurityEventDraft(
                    action=action, reason=e.code, message=e.message,
                    organization_id=actor.organization_id, user_id=actor.user_id,
                    seal_id=seal_id, api=api))
            raise

    # -- the checks made at the moment of signing ----------------------------

    def usable_seal(self, actor: Actor, seal_id: str,
                    ) -> tuple[Seal, Organization, SealCertificate]:
        """The seal, its organization and current certificate, if this user may sign
        with it right now."""
        found = self._seal_org_cert(seal_id, actor.user_id)
        if found is None or not actor.member_of(found[0].organization_id):
            raise NotFound("seal not found")
        seal, org, cert_or_none, granted = found
        if actor.token_seal_ids is not None and seal.seal_id not in actor.token_seal_ids:
            raise PermissionDenied("this API token is not allowed to use this seal")
        if seal.owner_user_id is not None:
            if seal.owner_user_id != actor.user_id:
                raise NotFound("seal not found")
        elif not granted:
            raise PermissionDenied("you have no grant to use this seal")
        if seal.status != SealStatus.ACTIVE:
            raise Conflict(f"this seal is {seal.status}")
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated")
        if cert_or_none is None:
            raise Conflict("this seal has no certificate")
        cert = cert_or_none
        now = self.clock()
        if cert.status != CertStatus.GOOD:
            raise Conflict("the seal's certificate is revoked")
        if now + CERT_SKEW < cert.not_before:
            raise Conflict("the seal's certificate is not valid yet")
        if now - CERT_SKEW > cert.not_after:
            raise Conflict("the seal's certificate has expired")
        return seal, org, cert

    def _seal_org_cert(self, seal_id: str, user_id: str,
                       ) -> tuple[Seal, Organization, SealCertificate | None, bool] | None:
        """The seal, its organization, its current certificate and whether the user
        holds a grant in force for it, in one query (every signature request makes
        it)."""
        if not isinstance(seal_id, str) or len(seal_id) > 64:
            return None
        granted = (select(Grant.id)
                   .where(Grant.seal_pk == Seal.id, Grant.user_id == user_id,
                          Grant.withdrawn_at.is_(None))
                   .exists())
        row = self.s.execute(
            select(Seal, Organization, SealCertificate, granted)
            .join(Organization, Organization.id == Seal.organization_id)
            .outerjoin(SealCertificate, and_(SealCertificate.seal_pk == Seal.id,
                                             SealCertificate.is_current.is_(True)))
            .where(Seal.seal_id == seal_id)).first()
        return None if row is None else (row[0], row[1], row[2], bool(row[3]))

    def check_batch(self, documents: Sequence[object]) -> None:
        if not documents:
            raise InvalidInput("give at least one document", field="documents")
        if len(documents) > self.batch_limit:
            raise InvalidInput(f"at most {self.batch_limit} documents per request",
                               field="documents")

    # -- approvals -----------------------------------------------------------

    def authorize(self, actor: Actor, seal_id: str, hashes: Sequence[Hashed], password: str,
                  api: str) -> tuple[Approval, str]:
        def run() -> tuple[Approval, str]:
            self.check_batch(hashes)
            seal, _, _ = self.usable_seal(actor, seal_id)
            return self.approvals.authorize(actor, seal, hashes, password)

        return self._refusing(actor, "authorize", seal_id, api, run)

    def extend_approval(self, actor: Actor, seal_id: str, approval: str,
                        hashes: Sequence[Hashed] | None, api: str) -> Approval:
        """A fresh lifetime for an unused approval of this seal (CSC
        credentials/extendTransaction); ``hashes``, when given, must be exactly
        the approved ones."""
        def run() -> Approval:
            seal, _, _ = self.usable_seal(actor, seal_id)
            row = self.approvals.extend(actor, approval)
            if row.seal_pk != seal.id:
                raise ApprovalRefused("this approval is for another seal")
            if hashes is not None and (
                    not hashes or len({h.algorithm for h in hashes}) != 1
                    or row.digest_algorithm != hashes[0].algorithm.value
                    or sorted(row.hashes) != sorted(h.digest.hex() for h in hashes)):
                raise ApprovalRefused("this approval does not cover exactly these hashes")
            return row

        return self._refusing(actor, "extend", seal_id, api, run)

    def _approve(self, actor: Actor, seal: Seal, hashes: Sequence[Hashed],
                 password: str | None, approval: str | None) -> str:
        if (password is None) == (approval is None):
            raise InvalidInput("give either the approval password or an approval",
                               field="approval_password")
        if password is not None:
            self.approvals.verify(actor.user_id, password)
            return "password"
        assert approval is not None
        return self.approvals.consume(actor, seal, approval, hashes).id

    # -- signing -------------------------------------------------------------

    def sign_documents(self, actor: Actor, seal_id: str, documents: Sequence[Document], *,
                       password: str | None = None, approval: str | None = None, api: str,
                       pades: bool = False, timestamp: bool = False,
                       scheme: SignatureScheme | None = None) -> SignResult:
        """A detached CMS SignedData per document digest (native API)."""
        def run() -> SignResult:
            self.check_batch(documents)
            seal, org, cert = self.usable_seal(actor, seal_id)
            hashes = [d.digest for d in documents]
            _same_algorithm(hashes)
            approval_id = self._approve(actor, seal, hashes, password, approval)
            if org.quota_balance < len(documents):  # as read with the seal, just now
                self._consume_quota(seal, len(documents))  # refuses, whole batch
            key_alg = KeyAlgorithm(seal.key_algorithm or "")
            sch = _scheme(key_alg, scheme)
            handle = self.pki.seal_handle(seal)
            template = self.templates.get(cert.id, lambda: self.pki.chain_of(cert),
                                          hashes[0].algorithm, sch, key_alg, pades)
            now = self.clock()
            out = []
            for doc in documents:
                attrs = template.signed_attributes(doc.digest, None if pades else now)
                signature = handle.sign(template.to_be_signed_digest(attrs), sch)
                unsigned = None
                if timestamp:
                    token = self.pki.timestamp_token(Hashed.of(signature, doc.digest.algorithm))
                    unsigned = [timestamp_attribute(token)]
                out.append((doc, template.assemble(attrs, signature, unsigned), signature))
            # Quota and log entries are written together, after every external call
            # (key store, TSA): a failure there consumes nothing.
            self._consume_quota(seal, len(documents))
            rows = self._log(actor, seal, [(d.file_name, d.digest, sig) for d, _, sig in out],
                             api, approval_id, "cades" if not pades else "pades")
            return SignResult(seal=seal, certificate=cert, chain=self.pki.chain_of(cert),
                              approval_id=approval_id,
                              documents=[Signed(d.file_name, d.digest, cms, sig, r)
                                         for (d, cms, sig), r in zip(out, rows, strict=True)])

        return self._refusing(actor, "sign", seal_id, api, run)

    def sign_hashes(self, actor: Actor, seal_id: str, hashes: Sequence[Hashed], *,
                    password: str | None = None, approval: str | None = None, api: str,
                    scheme: SignatureScheme | None = None,
                    pss_salt_length: int | None = None,
                    ) -> tuple[SignResult, list[RawSignature]]:
        """Raw signatures over the given hashes (CSC signatures/signHash).
        ``pss_salt_length``: the RSA-PSS salt length the client asked for."""
        def run() -> tuple[SignResult, list[RawSignature]]:
            self.check_batch(hashes)
            seal, org, cert = self.usable_seal(actor, seal_id)
            _same_algorithm(hashes)
            approval_id = self._approve(actor, seal, hashes, password, approval)
            if org.quota_balance < len(hashes):  # as read with the seal, just now
                self._consume_quota(seal, len(hashes))  # refuses, whole batch
            sch = _scheme(KeyAlgorithm(seal.key_algorithm or ""), scheme)
            handle = self.pki.seal_handle(seal)
            salt = pss_salt_length if sch is SignatureScheme.RSA_PSS else None
            sigs = [handle.sign(h, sch, pss_salt_length=salt) for h in hashes]
            self._consume_quota(seal, len(hashes))
            rows = self._log(actor, seal, [("", h, s) for h, s in zip(hashes, sigs, strict=True)],
                             api, approval_id, "raw")
            result = SignResult(seal=seal, certificate=cert, chain=self.pki.chain_of(cert),
                                approval_id=approval_id, documents=[])
            return result, [RawSignature(h, s, r)
                            for h, s, r in zip(hashes, sigs, rows, strict=True)]

        return self._refusing(actor, "sign", seal_id, api, run)

    def _consume_quota(self, seal: Seal, n: int) -> None:
        if not self.quota.try_consume(seal.organization_id, n):
            raise QuotaExhausted(
                f"the organization's API quota does not cover {n} signature"
                f"{'s' if n != 1 else ''}; order more quota")

    def _log(self, actor: Actor, seal: Seal, items: Sequence[tuple[str, Hashed, bytes]],
             api: str, approval_id: str, form: str) -> list[int]:
        drafts = [EntryDraft.signature(
            seal_id=seal.seal_id, seal_name=seal.name, seal_type=str(seal.type),
            user_id=actor.user_id, user_email=actor.email, file_name=name or "(hash)",
            digest=digest,
            api=api, approval_id=approval_id, signature_sha256=Hashed.of(sig).digest.hex(),
            form=form) for name, digest, sig in items]
        return [row.seq for row in self.audit.append(seal.organization_id, drafts)]


def _same_algorithm(hashes: Sequence[Hashed]) -> None:
    if len({h.algorithm for h in hashes}) != 1:
        raise InvalidInput("all documents of one request use the same digest algorithm",
                           field="digest_algorithm")


def _scheme(key_alg: KeyAlgorithm, requested: SignatureScheme | None) -> SignatureScheme:
    if key_alg.is_rsa:
        if requested in (None, SignatureScheme.RSA_PKCS1V15):
            return SignatureScheme.RSA_PKCS1V15
        if requested == SignatureScheme.RSA_PSS:
            return SignatureScheme.RSA_PSS
    elif requested in (None, SignatureScheme.ECDSA):
        return SignatureScheme.ECDSA
    raise InvalidInput(f"the seal's {key_alg} key cannot sign with {requested}",
                       field="signature_algorithm")
