"""Proving control of an email domain (M2): a DNS TXT record, or a code
mailed to a fixed administrative mailbox of the domain (admin@, postmaster@).

DNS: the account administrator publishes ``_sealkeeper-challenge.<domain>``
TXT ``<token>``; the check resolves it with dnspython against the configured
resolver (``SEALKEEPER_DNS_RESOLVER`` / ``_PORT``, else the system's).

Mail: an 8-digit code, stored as a pepper MAC, valid for a limited time and
five attempts; every attempt is counted in a transaction of its own before
the code is compared, so guessing cannot outrun the limit.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

import dns.exception
import dns.resolver
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sealkeeper.authz import Actor, require_account_admin
from sealkeeper.clock import Clock
from sealkeeper.config import Settings
from sealkeeper.console.models import DomainMailCode
from sealkeeper.crypto.keystore.base import KeyStore
from sealkeeper.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from sealkeeper.mail import Outbox
from sealkeeper.orgs.models import Domain, DomainStatus
from sealkeeper.orgs.service import OrganizationService
from sealkeeper.signing.approvals import Durable

__all__ = ["MAILBOXES", "MAX_CODE_ATTEMPTS", "RECORD_LABEL", "DnsTxtLookup", "DomainProofs"]

RECORD_LABEL = "_sealkeeper-challenge"
MAILBOXES = ("admin", "postmaster")
MAX_CODE_ATTEMPTS = 5


class DnsTxtLookup:
    """TXT records of a name through the configured resolver."""

    def __init__(self, settings: Settings) -> None:
        self.nameservers = [a.strip() for a in (settings.dns_resolver or "").split(",")
                            if a.strip()]
        self.port = settings.dns_resolver_port
        self.timeout = settings.dns_timeout_seconds

    def __call__(self, name: str) -> list[str]:
        try:
            resolver = dns.resolver.Resolver(configure=not self.nameservers)
        except dns.resolver.NoResolverConfiguration as e:
            raise ConfigurationError("no DNS resolver is configured: set "
                                     "SEALKEEPER_DNS_RESOLVER") from e
        if self.nameservers:
            resolver.nameservers = self.nameservers
            resolver.port = self.port
        resolver.timeout = resolver.lifetime = self.timeout
        try:
            answer = resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as e:
            raise Conflict(f"the DNS lookup of {name} timed out; try again in a moment",
                           field="dns") from e
        except dns.exception.DNSException as e:
            raise Conflict(f"the DNS lookup of {name} failed ({type(e).__name__}); try "
                           "again in a moment", field="dns") from e
        out = []
        for rdata in answer:
            strings = getattr(rdata, "strings", ())
            out.append(b"".join(strings).decode("utf-8", "replace"))
        return out


class DomainProofs:
    def __init__(self, session: Session, clock: Clock, orgs: OrganizationService,
                 keystore: KeyStore, outbox: Outbox, durable: Durable,
                 settings: Settings) -> None:
        self.s = session
        self.clock = clock
        self.orgs = orgs
        self.keystore = keystore
        self.outbox = outbox
        self.durable = durable
        self.lookup = DnsTxtLookup(settings)
        self.code_ttl = timedelta(minutes=settings.domain_code_minutes)

    def _domain(self, actor: Actor, org_id: str, domain_id: str) -> Domain:
        org = self.orgs.get(actor, org_id)
        require_account_admin(actor, org.id)
        d = self.s.get(Domain, domain_id) if isinstance(domain_id, str) else None
        if d is None or d.organization_id != org.id:
            raise NotFound("domain not found")
        return d

    # -- DNS -------------------------------------------------------------------

    @staticmethod
    def record_name(d: Domain) -> str:
        return f"{RECORD_LABEL}.{d.name}"

    def dns_challenge(self, actor: Actor, org_id: str, domain_id: str) -> tuple[str, str]:
        """The TXT record to publish: (name, value). The value stays the same
        until the domain is validated."""
        d = self._domain(actor, org_id, domain_id)
        if d.challenge is None:
            d.challenge = "sealkeeper-" + secrets.token_urlsafe(24)
            self.s.flush()
        return self.record_name(d), d.challenge

    def check_dns(self, actor: Actor, org_id: str, domain_id: str) -> Domain:
        d = self._domain(actor, org_id, domain_id)
        if d.status == DomainStatus.VALIDATED:
            return d
        if d.challenge is None:
            raise Conflict("show the DNS record to publish first", field="dns")
        name = self.record_name(d)
        found = self.lookup(name)
        if not any(hmac.compare_digest(v.strip().encode(), d.challenge.encode())
                   for v in found):
            seen = f" (found: {', '.join(repr(v[:80]) for v in found[:3])})" if found else ""
            raise InvalidInput(f"no TXT record {name} with the expected value yet{seen}. "
                               "DNS changes can take a few minutes to show.", field="dns")
        return self.orgs.record_domain_proof(d, "dns-txt")

    # -- mailed code -----------------------------------------------------------

    def _code_hash(self, d: Domain, code: str) -> str:
        return self.keystore.pepper_mac(f"domain-code-v1\x00{d.id}\x00{code}".encode()).hex()

    def send_code(self, actor: Actor, org_id: str, domain_id: str, mailbox: str) -> str:
        """Mail a code to ``mailbox@domain``; returns the address it went to."""
        d = self._domain(actor, org_id, domain_id)
        if d.status == DomainStatus.VALIDATED:
            raise Conflict("this domain is already validated", field="mailbox")
        if mailbox not in MAILBOXES:
            raise InvalidInput("choose admin@ or postmaster@ the domain", field="mailbox")
        address = f"{mailbox}@{d.name}"
        now = self.clock()
        self.s.execute(update(DomainMailCode).where(DomainMailCode.domain_id == d.id,
                                                    DomainMailCode.used_at.is_(None))
                       .values(used_at=now))
        code = f"{secrets.randbelow(10**8):08d}"
        self.s.add(DomainMailCode(domain_id=d.id, mailbox=address,
                                  code_hash=self._code_hash(d, code), created_at=now,
                                  expires_at=now + self.code_ttl, attempts=0))
        org = self.orgs.get(actor, org_id)
        minutes = int(self.code_ttl.total_seconds() // 60)
        self.outbox.add(
            address, f"Domain validation code for {d.name}",
            f"{org.legal_name} asks to validate the email domain {d.name} on sealkeeper.\n\n"
            f"Validation code: {code}\n\nThe code works once, for {minutes} minutes. If you "
            "did not expect this message, ignore it: nothing happens without the code.\n")
        self.s.flush()
        return address

    def pending_code(self, actor: Actor, org_id: str, domain_id: str) -> DomainMailCode | None:
        d = self._domain(actor, org_id, domain_id)
        return self._live_code(d)

    def _live_code(self, d: Domain) -> DomainMailCode | None:
        return self.s.scalar(select(DomainMailCode).where(
            DomainMailCode.domain_id == d.id, DomainMailCode.used_at.is_(None),
            DomainMailCode.expires_at > self.clock(),
            DomainMailCode.attempts < MAX_CODE_ATTEMPTS)
            .order_by(DomainMailCode.created_at.desc()).limit(1))

    def confirm_code(self, actor: Actor, org_id: str, domain_id: str, code: str) -> Domain:
        d = self._domain(actor, org_id, domain_id)
        if d.status == DomainStatus.VALIDATED:
            return d
        code = (code or "").strip().replace(" ", "")
        if not (len(code) == 8 and code.isdigit()):
            raise InvalidInput("the code is 8 digits", field="code")
        row = self._live_code(d)
        if row is None:
            raise Conflict("no valid code is waiting: send a new one", field="code")
        row_id = row.id

        def claim(s: Session) -> int | None:
            got = s.execute(update(DomainMailCode)
                            .where(DomainMailCode.id == row_id,
                                   DomainMailCode.attempts < MAX_CODE_ATTEMPTS)
                            .values(attempts=DomainMailCode.attempts + 1)
                            .returning(DomainMailCode.attempts)).first()
            return None if got is None else int(got[0])

        used = self.durable(claim)
        if used is None:
            raise Conflict("too many wrong codes: send a new one", field="code")
        self.s.refresh(row)
        if not hmac.compare_digest(row.code_hash, self._code_hash(d, code)):
            left = MAX_CODE_ATTEMPTS - used
            raise InvalidInput("the code is not right" + (
                f" ({left} attempt{'s' if left != 1 else ''} left)" if left
                else "; send a new one"), field="code")
        row.used_at = self.clock()
        return self.orgs.record_domain_proof(d, f"mail-{row.mailbox.split('@')[0]}")
