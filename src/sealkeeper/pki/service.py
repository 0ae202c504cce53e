"""The CA of the service: initialisation, seal certificates (ours or an
outside CA's), re-key and renewal, revocation, CRLs, OCSP and time-stamps.

Every operation runs in the caller's transaction; a revocation regenerates
the CRL in that same transaction, so the CRL and OCSP tell the truth the
moment the revoking request returns.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from sqlalchemy import select
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import User
from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.clock import Clock
from sealkeeper.config import Settings
from sealkeeper.crypto import crl as crl_mod
from sealkeeper.crypto import ocsp as ocsp_mod
from sealkeeper.crypto import x509ca
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, KeyStore
from sealkeeper.crypto.tsa import TimeStampAuthority
from sealkeeper.encryption.models import EncryptionKey, EncryptionKeyStatus
from sealkeeper.errors import Conflict, InvalidInput, NotFound
from sealkeeper.orgs.models import Organization
from sealkeeper.pki.models import CaKey, CaRole, CertSource, CertStatus, CrlState, SealCertificate
from sealkeeper.seals.models import Seal, SealType

#: CRLs and OCSP responses are dated (thisUpdate) this much before they are
#: made, so that relying parties whose clocks run up to this much behind ours
#: take them as current (docs/operations.md, "Clocks").
REVOCATION_BACKDATE = timedelta(minutes=5)

REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
}


@dataclass(frozen=True)
class LoadedKey:
    id: str
    role: CaRole
    handle: KeyHandle
    cert: x509.Certificate | None

    @property
    def certificate(self) -> x509.Certificate:
        if self.cert is None:
            raise Conflict(f"the {self.role} key has no certificate")
        return self.cert

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


class PkiCache:
    """Per-process cache of parsed CA rows (keyed by row id, never stale: a
    re-initialised CA has new ids)."""

    def __init__(self) -> None:
        self._keys: dict[str, LoadedKey] = {}
        self._tsas: dict[str, TimeStampAuthority] = {}
        self._chains: dict[str, tuple[bytes, ...]] = {}
        self._lock = threading.Lock()

    def chain(self, cert_id: str, build: Callable[[], list[bytes]]) -> list[bytes]:
        """A seal certificate's chain (a certificate row never changes its chain)."""
        hit = self._chains.get(cert_id)
        if hit is None:
            hit = tuple(build())
            with self._lock:
                self._chains[cert_id] = hit
        return list(hit)

    def tsa(self, key: LoadedKey, build: Callable[[], TimeStampAuthority]) -> TimeStampAuthority:
        hit = self._tsas.get(key.id)
        if hit is None:
            hit = self._tsas[key.id] = build()
        return hit

    def load(self, row: CaKey, store: KeyStore) -> LoadedKey:
        hit = self._keys.get(row.id)
        if hit is None:
            cert = (x509.load_der_x509_certificate(row.certificate_der)
                    if row.certificate_der else None)
            hit = LoadedKey(row.id, CaRole(row.role),
                            KeyHandle(store, row.key_ref, KeyAlgorithm(row.key_algorithm)), cert)
            with self._lock:
                self._keys[row.id] = hit
        return hit


def spki_fingerprint(public_key: PublicKeyTypes) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def serial_hex(serial: int) -> str:
    return format(serial, "x")


class PkiService:
    def __init__(self, session: Session, clock: Clock, keystore: KeyStore, settings: Settings,
                 cache: PkiCache, log: Callable[[str, EntryDraft], object] | None = None) -> None:
        self.s = session
        self.clock = clock
        self.keystore = keystore
        self.settings = settings
        self.cache = cache
        self._log = log

    def _record_key_change(self, seal: Seal, row: SealCertificate, action: str,
                           by: str | None) -> None:
        if self._log is not None:
            self._log(seal.organization_id, EntryDraft.rekey(
                seal_id=seal.seal_id, seal_name=seal.name, seal_type=str(seal.type),
                by_user_id=by, action=action, certificate_serial=row.serial,
                certificate_sha256=hashlib.sha256(row.der).hexdigest(),
                key_fingerprint=row.key_fingerprint))

    # -- configuration -------------------------------------------------------

    @property
    def config(self) -> x509ca.CaConfig:
        st = self.settings
        return x509ca.CaConfig(organization=st.ca_organization, country=st.ca_country,
                               root_common_name=st.ca_root_name,
                               issuing_common_name=st.ca_issuing_name,
                               root_years=st.ca_root_years, issuing_years=st.ca_issuing_years,
                               seal_years=st.seal_certificate_years)

    @property
    def urls(self) -> x509ca.PkiUrls:
        base = self.settings.base_url + "/pki"
        return x509ca.PkiUrls(crl_url=f"{base}/crl/issuing.crl", ocsp_url=f"{base}/ocsp",
                              ca_issuers_url=f"{base}/issuing.crt",
                              root_crl_url=f"{base}/crl/root.crl",
                              root_ca_issuers_url=f"{base}/root.crt")

    # -- the CA itself -------------------------------------------------------

    def key(self, role: CaRole) -> LoadedKey:
        row = self.s.scalar(select(CaKey).where(CaKey.role == role, CaKey.active.is_(True)))
        if row is None:
            raise Conflict("the CA is not initialised: run 'sealkeeper ca init'")
        return self.cache.load(row, self.keystore)

    def key_by_id(self, key_id: str) -> LoadedKey:
        row = self.s.get(CaKey, key_id)
        if row is None:
            raise NotFound("CA key not found")
        return self.cache.load(row, self.keystore)

    def is_initialised(self) -> bool:
        return self.s.scalar(select(CaKey.id).where(CaKey.role == CaRole.TSA,
                                                    CaKey.active.is_(True))) is not None

    def init_ca(self) -> dict[CaRole, LoadedKey]:
        """Create whatever part of the hierarchy is missing (idempotent)."""
        now = self.clock()
        out: dict[CaRole, LoadedKey] = {}
        alg = KeyAlgorithm(self.settings.ca_key_algorithm)
        cfg = self.config
        for role in (CaRole.ROOT, CaRole.ISSUING, CaRole.OCSP, CaRole.TSA, CaRole.LOG):
            row = self.s.scalar(select(CaKey).where(CaKey.role == role, CaKey.active.is_(True)))
            if row is None:
                gen = self.keystore.generate(alg, label=f"sealkeeper-{role}")
                handle = KeyHandle(self.keystore, gen.key_ref, alg)
                cert: x509.Certificate | None
                if role == CaRole.ROOT:
                    cert = x509ca.issue_root(handle, cfg, now)
                elif role == CaRole.ISSUING:
                    root = out[CaRole.ROOT]
                    cert = x509ca.issue_intermediate(root.handle, root.certificate,
                                                     gen.public_key, cfg, now, urls=self.urls)
                elif role == CaRole.OCSP:
                    issuing = out[CaRole.ISSUING]
                    cert = x509ca.issue_ocsp_responder(issuing.handle, issuing.certificate,
                                                       gen.public_key, cfg, now)
                elif role == CaRole.TSA:
                    issuing = out[CaRole.ISSUING]
                    cert = x509ca.issue_tsa(issuing.handle, issuing.certificate,
                                            gen.public_key, cfg, now, urls=self.urls)
                else:
                    cert = None
                row = CaKey(role=role, key_algorithm=alg.value, key_ref=gen.key_ref,
                            certificate_der=cert.public_bytes(serialization.Encoding.DER)
                            if cert else None, active=True, created_at=now)
                self.s.add(row)
                self.s.flush()
            out[role] = self.cache.load(row, self.keystore)
        for role in (CaRole.ROOT, CaRole.ISSUING):
            if self.s.get(CrlState, out[role].id) is None:
                self._publish_crl(out[role], None)
        return out

    def chain_ders(self) -> list[bytes]:
        """The issuing CA and root certificates (what follows a seal certificate)."""
        return [self.key(CaRole.ISSUING).der, self.key(CaRole.ROOT).der]

    # -- seal certificates ---------------------------------------------------

    def provision_seal(self, seal: Seal, now: datetime) -> None:
        """Give a new seal its key pair (in the key store) and certificate."""
        alg = KeyAlgorithm(self.settings.seal_key_algorithm)
        gen = self.keystore.generate(alg, label=f"seal-{seal.seal_id}")
        seal.key_ref = gen.key_ref
        seal.key_algorithm = alg.value
        self._issue(seal, gen.public_key, now)

    def seal_handle(self, seal: Seal) -> KeyHandle:
        if seal.key_ref is None or seal.key_algorithm is None:
            raise Conflict("this seal has no key")
        return KeyHandle(self.keystore, seal.key_ref, KeyAlgorithm(seal.key_algorithm))

    def _subject(self, seal: Seal) -> x509ca.SealSubject:
        org = self.s.get(Organization, seal.organization_id)
        assert org is not None
        if seal.type == SealType.PERSONAL:
            user = self.s.get(User, seal.owner_user_id) if seal.owner_user_id else None
            if user is None:
                raise Conflict("the personal seal has no owner")
            return x509ca.PersonalSignature(name=user.display_name, email=user.email,
                                            organization=org.legal_name)
        return x509ca.OrganizationSeal(organization=org.legal_name,
                                       organization_identifier=f"NTRXX-{org.registration_number}",
                                       seal_name=seal.name)

    def _issue(self, seal: Seal, public_key: PublicKeyTypes, now: datetime) -> SealCertificate:
        issuing = self.key(CaRole.ISSUING)
        serial = x509ca.new_serial()
        cert = x509ca.issue_seal_certificate(
            issuing.handle, issuing.certificate, public_key, subject=self._subject(seal),
            serial=serial, not_before=now,
            not_after=now + timedelta(days=365 * self.settings.seal_certificate_years),
            urls=self.urls)
        return self._store_current(seal, cert, CertSource.INTERNAL, issuing.id, None, now)

    def _store_current(self, seal: Seal, cert: x509.Certificate, source: CertSource,
                       issuer_key_id: str | None, chain_pem: bytes | None,
                       now: datetime) -> SealCertificate:
        for old in self.s.scalars(select(SealCertificate).where(
                SealCertificate.seal_pk == seal.id, SealCertificate.is_current.is_(True))):
            old.is_current = False
        self.s.flush()
        row = SealCertificate(
            seal_pk=seal.id, serial=serial_hex(cert.serial_number), issuer_key_id=issuer_key_id,
            der=cert.public_bytes(serialization.Encoding.DER), chain_pem=chain_pem,
            source=source, key_fingerprint=spki_fingerprint(cert.public_key()),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            status=CertStatus.GOOD, is_current=True, created_at=now)
        self.s.add(row)
        self.s.flush()
        return row

    def current_certificate(self, seal: Seal) -> SealCertificate:
        row = self.s.scalar(select(SealCertificate).where(
            SealCertificate.seal_pk == seal.id, SealCertificate.is_current.is_(True)))
        if row is None:
            raise Conflict("this seal has no certificate")
        return row

    def certificates(self, seal: Seal) -> list[SealCertificate]:
        return list(self.s.scalars(select(SealCertificate)
                                   .where(SealCertificate.seal_pk == seal.id)
                                   .order_by(SealCertificate.created_at)))

    def chain_of(self, row: SealCertificate) -> list[bytes]:
        """The certificate followed by its issuers (signer first)."""
        return self.cache.chain(row.id, lambda: self._build_chain(row))

    def _build_chain(self, row: SealCertificate) -> list[bytes]:
        if row.source == CertSource.EXTERNAL:
            rest = x509.load_pem_x509_certificates(row.chain_pem) if row.chain_pem else []
            return [row.der, *(c.public_bytes(serialization.Encoding.DER) for c in rest)]
        issuer = (self.key_by_id(row.issuer_key_id) if row.issuer_key_id
                  else self.key(CaRole.ISSUING))
        return [row.der, issuer.der, self.key(CaRole.ROOT).der]

    def renew(self, seal: Seal, by: str | None = None) -> SealCertificate:
        """A new certificate for the same key; the old one stays valid."""
        self._require_usable(seal)
        row = self._issue(seal, self.seal_handle(seal).public_key(), self.clock())
        self._record_key_change(seal, row, "renew", by)
        return row

    def rekey(self, seal: Seal, by: str | None = None,
              action: str = "rekey") -> tuple[SealCertificate, bytes | None]:
        """A new key pair and certificate under the same SealID. Returns the old
        key_ref, for the caller to destroy once the change is committed."""
        self._require_usable(seal)
        old_ref = seal.key_ref
        self.provision_seal(seal, self.clock())
        row = self.current_certificate(seal)
        self._record_key_change(seal, row, action, by)
        return row, old_ref

    def csr(self, seal: Seal) -> bytes:
        """A PKCS#10 request (PEM) for the seal's key, for an outside CA."""
        self._require_usable(seal)
        req = x509ca.build_csr(self.seal_handle(seal), self._subject(seal))
        return req.public_bytes(serialization.Encoding.PEM)

    def import_chain(self, seal: Seal, chain: bytes, by: str | None = None) -> SealCertificate:
        """Install a certificate chain an outside CA issued for the seal's key."""
        self._require_usable(seal)
        certs = x509ca.check_chain_matches_key(chain, self.seal_handle(seal).public_key(),
                                               now=self.clock())
        leaf, rest = certs[0], certs[1:]
        chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in rest)
        row = self._store_current(seal, leaf, CertSource.EXTERNAL, None, chain_pem or None,
                                  self.clock())
        self._record_key_change(seal, row, "import_certificate", by)
        return row

    def _require_usable(self, seal: Seal) -> None:
        from sealkeeper.seals.models import SealStatus

        if seal.status == SealStatus.REVOKED:
            raise Conflict("this seal is revoked")

    # -- revocation ----------------------------------------------------------

    def revoke_seal(self, seal: Seal, now: datetime, reason: str = "unspecified",
                    *, only_key: str | None = None) -> int:
        """Revoke the seal's certificates (all, or those of one key); reissue the CRL."""
        if reason not in REASONS:
            raise InvalidInput(f"unknown revocation reason {reason!r}", field="reason")
        q = select(SealCertificate).where(SealCertificate.seal_pk == seal.id,
                                          SealCertificate.status == CertStatus.GOOD)
        if only_key is not None:
            q = q.where(SealCertificate.key_fingerprint == only_key)
        count = 0
        for row in self.s.scalars(q):
            row.status = CertStatus.REVOKED
            row.revoked_at = now
            row.revocation_reason = reason
            count += 1
        self.s.flush()
        if count:
            self.publish_crl(CaRole.ISSUING)
        return count

    def status_of(self, serial: int) -> ocsp_mod.CertStatusInfo:
        """OCSP status of a certificate issued by our issuing CA (a seal's or an
        encryption certificate)."""
        issuing = self.key(CaRole.ISSUING)
        for _, revoked, revoked_at, reason in self._issued(issuing.id,
                                                           serial=serial_hex(serial)):
            if revoked and revoked_at is not None:
                return ocsp_mod.CertStatusInfo.revoked(revoked_at,
                                                       REASONS.get(reason or "unspecified"))
            return ocsp_mod.CertStatusInfo.good()
        for role in (CaRole.OCSP, CaRole.TSA):
            k = self.key(role)
            if k.certificate.serial_number == serial:
                return ocsp_mod.CertStatusInfo.good()
        return ocsp_mod.CertStatusInfo.unknown()

    def _issued(self, issuer_id: str, *, serial: str | None = None,
                revoked_only: bool = False) -> list[tuple[str, bool, datetime | None, str | None]]:
        """(serial hex, revoked?, revoked at, reason) of the seal and encryption
        certificates ``issuer_id`` issued: both are in its CRL and OCSP answers."""
        out: list[tuple[str, bool, datetime | None, str | None]] = []
        for table, revoked in ((SealCertificate, CertStatus.REVOKED),
                               (EncryptionKey, EncryptionKeyStatus.REVOKED)):
            q = select(table.serial, table.status == revoked, table.revoked_at,
                       table.revocation_reason).where(table.issuer_key_id == issuer_id)
            if serial is not None:
                q = q.where(table.serial == serial)
            if revoked_only:
                q = q.where(table.status == revoked)
            out.extend((r[0], bool(r[1]), r[2], r[3]) for r in self.s.execute(q))
        return out

    # -- CRLs ----------------------------------------------------------------

    def crl(self, role: CaRole) -> bytes:
        """The current CRL of the root or the issuing CA (reissued when stale)."""
        if role not in (CaRole.ROOT, CaRole.ISSUING):
            raise NotFound("no CRL for this CA")
        issuer = self.key(role)
        state = self.s.get(CrlState, issuer.id)
        now = self.clock()
        if state is None or state.stale or now >= state.next_update - timedelta(hours=1):
            return self.publish_crl(role)
        return state.der

    def publish_crl(self, role: CaRole) -> bytes:
        return self._publish_crl(self.key(role), self.s.get(CrlState, self.key(role).id,
                                                            with_for_update=True))

    def _publish_crl(self, issuer: LoadedKey, state: CrlState | None) -> bytes:
        now = self.clock()
        entries: list[crl_mod.RevokedEntry] = []
        if issuer.role == CaRole.ISSUING:
            for serial, _, revoked_at, reason in self._issued(issuer.id, revoked_only=True):
                assert revoked_at is not None
                entries.append(crl_mod.RevokedEntry(
                    int(serial, 16), revoked_at,
                    REASONS.get(reason or "unspecified", x509.ReasonFlags.unspecified)))
        number = (state.number + 1) if state is not None else 1
        next_update = now + timedelta(hours=self.settings.crl_validity_hours)
        # Dated REVOCATION_BACKDATE early (never before a revocation it lists).
        this_update = max([now - REVOCATION_BACKDATE, *(e.revoked_at for e in entries)])
        der = crl_mod.build_crl(issuer.handle, issuer.certificate, entries, number,
                                min(this_update, now), next_update)
        if state is None:
            self.s.add(CrlState(issuer_key_id=issuer.id, number=number, this_update=now,
                                next_update=next_update, der=der, stale=False))
        else:
            state.number, state.this_update, state.next_update = number, now, next_update
            state.der, state.stale = der, False
        self.s.flush()
        return der

    # -- OCSP and time-stamps ------------------------------------------------

    def ocsp(self, request_der: bytes) -> bytes:
        request = ocsp_mod.parse_request(request_der)
        responder, issuing = self.key(CaRole.OCSP), self.key(CaRole.ISSUING)
        return ocsp_mod.build_response(responder.handle, responder.certificate,
                                       issuing.certificate, request, self.status_of,
                                       self.clock(), self.settings.ocsp_validity_seconds,
                                       backdate=REVOCATION_BACKDATE)

    def _tsa(self) -> TimeStampAuthority:
        tsa = self.key(CaRole.TSA)
        return self.cache.tsa(tsa, lambda: TimeStampAuthority(
            tsa.handle, tsa.certificate, [self.key(CaRole.ISSUING).certificate],
            self.settings.tsa_policy_oid, accuracy_seconds=self.settings.tsa_accuracy_seconds))

    def timestamp_response(self, request_der: bytes) -> bytes:
        return self._tsa().respond(request_der, self.clock(), secrets.randbits(63))

    def timestamp_token(self, imprint: Hashed) -> bytes:
        return self._tsa().stamp(imprint, self.clock(), secrets.randbits(63))

