"""Verification of signed documents on the user's machine: the engine behind
``sealkeeper verify`` and ``POST /api/v1/verify``.

Scope: for a PDF, every signature field (document time-stamps included); for
any other file, its detached CMS (``.p7s``). Each signature gets a
:class:`SignatureReport`: who signed (certificate subject), when (signed or
claimed time, signature time-stamp), integrity, the chain to a trust root,
revocation status at signing time, the PAdES / CAdES level, what changed in
the document afterwards, and whether the signature is in the organization's
usage log with a verified inclusion proof. :class:`VerificationReport`
gathers them with one verdict and an exit code (0 valid, 1 invalid,
2 indeterminate or error).

How revocation is judged "at signing time":

- the signature has a signature time-stamp and the PDF's document security
  store (DSS) holds revocation data for the signer: validation at the
  time-stamp's time with that embedded data only (PAdES B-LT / B-LTA: a
  certificate revoked later does not matter);
- otherwise the status is checked now, online (or from the data given in
  :class:`VerifyOptions` when fetching is off). A revocation dated after a
  trusted signature time-stamp leaves the signature valid as of that time,
  with a warning; without a time-stamp there is no proof that the signature
  predates the revocation, so it is reported revoked.

Integrity, time-stamp and modification analysis come from pyHanko's
validators; the chain and revocation come from a separate
pyhanko-certvalidator run whose errors say precisely what failed.

Like the rest of :mod:`sealkeeper.client` this imports no server code: the
usage-log proofs (RFC 9162 inclusion, C2SP signed-note checkpoints) are
checked by :mod:`sealkeeper.client.logproof`. Every failure
to read the input is a :class:`~sealkeeper.errors.InvalidInput` with a
one-line message; nothing else escapes :func:`verify_pdf` and
:func:`verify_detached`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from dataclasses import field as _field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import httpx
from asn1crypto import cms, core, pem
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import (
    async_validate_detached_cms,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from sealkeeper.client import logproof
from sealkeeper.errors import InvalidInput, SealkeeperError

__all__ = [
    "Changes",
    "HttpLogChecker",
    "LogCheck",
    "LogChecker",
    "LogQuery",
    "Party",
    "Revocation",
    "Seal",
    "SignatureReport",
    "Timestamp",
    "Trust",
    "VerificationReport",
    "VerifyOptions",
    "check_log_evidence",
    "fetch_server_root",
    "load_certificates",
    "verify_detached",
    "verify_file",
    "verify_pdf",
]

Verdict = Literal["valid", "invalid", "indeterminate"]
Source = str | os.PathLike[str] | IO[bytes]

MAX_SIGNATURE_FILE = 16 << 20
_SIG_TS = "signature_time_stamp_token"
_PDF_SUBFILTERS = {"/adbe.pkcs7.detached": "PKCS#7", "/ETSI.CAdES.detached": "PAdES"}
_DOC_TS_SUBFILTER = "/ETSI.RFC3161"
_EXIT = {"valid": 0, "invalid": 1, "indeterminate": 2}


# =========================================================================== the report


@dataclass
class Party:
    """The identity in a certificate (signer or time-stamping authority)."""

    common_name: str | None
    organization: str | None
    organization_identifier: str | None
    email: str | None
    country: str | None
    subject: str
    issuer: str
    serial_number: str
    valid_from: datetime
    valid_until: datetime
    certificate_sha256: str


@dataclass
class Seal:
    """Which seal signed: the name from the certificate, type and SealID from the log."""

    kind: Literal["organization_seal", "personal_signature"]
    name: str | None = None
    type: str | None = None
    seal_id: str | None = None


@dataclass
class Timestamp:
    """A signature time-stamp (or, for a document time-stamp, the token itself).

    ``status``: ``valid``; ``invalid`` (does not match, bad signature, TSA not
    trusted or revoked); ``undecided`` (the TSA certificate's revocation status
    is unknown).
    """

    time: datetime
    tsa: str | None
    status: Literal["valid", "invalid", "undecided"]
    problem: str | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"


@dataclass
class Trust:
    trusted: bool
    root: str | None = None
    chain: list[str] = _field(default_factory=list)
    problem: str | None = None


@dataclass
class Revocation:
    status: Literal["good", "revoked", "unknown", "not_checked"]
    as_of: datetime | None = None
    source: str | None = None
    revoked_at: datetime | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass
class Changes:
    coverage: str | None
    modification_level: str | None
    changed_after_signing: bool
    permitted: bool
    summary: str


@dataclass
class LogCheck:
    """Whether the signature is in the organization's usage log (issue M8).

    ``status``: ``verified`` (entry found, inclusion proof checked against a
    signed checkpoint), ``not_found``, ``failed`` (a proof or checkpoint that
    does not verify), ``skipped`` (no server or token, or asked not to),
    ``unavailable`` (the server has no log API) or ``error`` (network).
    """

    status: Literal["verified", "not_found", "failed", "skipped", "unavailable", "error"]
    detail: str | None = None
    organization_id: str | None = None
    seq: int | None = None
    tree_size: int | None = None
    checkpoint_origin: str | None = None
    leaf_hash: str | None = None
    logged_at: str | None = None
    seal_id: str | None = None
    seal_name: str | None = None
    seal_type: str | None = None
    user_email: str | None = None
    file_name: str | None = None


@dataclass(frozen=True)
class LogQuery:
    """What identifies a signature in the usage log."""

    signature_sha256: str
    """Hex SHA-256 of the signature value (the SignerInfo's ``signature``)."""
    digests: tuple[str, ...]
    """Hex digests the server may have logged as ``file_digest`` (messageDigest,
    then the digest of the signed attributes for raw hash signing)."""


LogChecker = Callable[[LogQuery], LogCheck]


@dataclass
class SignatureReport:
    index: int
    kind: Literal["signature", "document_timestamp"]
    field: str | None
    verdict: Verdict = "invalid"
    problems: list[str] = _field(default_factory=list)
    warnings: list[str] = _field(default_factory=list)
    signer: Party | None = None
    organization: str | None = None
    seal: Seal | None = None
    signing_time: datetime | None = None
    signing_time_source: str | None = None
    timestamp: Timestamp | None = None
    intact: bool = False
    signature_valid: bool = False
    digest_algorithm: str | None = None
    signature_algorithm: str | None = None
    trust: Trust | None = None
    revocation: Revocation | None = None
    format: str | None = None
    level: str | None = None
    changes: Changes | None = None
    log: LogCheck | None = None

    def __post_init__(self) -> None:
        self._query: LogQuery | None = None
        self._checked = False  # integrity was evaluated

    def _integrity(self, intact: bool, valid: bool) -> None:
        self.intact, self.signature_valid, self._checked = bool(intact), bool(valid), True

    def decide(self) -> Verdict:
        """Set and return the verdict from the findings (problems first)."""
        p = self.problems
        if not self._checked:
            if not p:
                p.append("the signature could not be checked")
        elif not self.intact:
            _add(p, "integrity: the signed data was changed (digest mismatch)")
        elif not self.signature_valid:
            _add(p, "the signature value does not verify with the signer's certificate")
        if self.trust is not None and not self.trust.trusted:
            _add(p, f"not trusted: {self.trust.problem or 'no chain to a trust root'}")
        if self.revocation is not None and self.revocation.status == "revoked":
            _add(p, f"revoked: {self.revocation.detail or 'the certificate was revoked'}")
        # (a document time-stamp's own problems are those listed above)
        if (self.timestamp is not None and self.timestamp.status == "invalid"
                and self.kind == "signature"):
            _add(p, f"the time-stamp is not valid: {self.timestamp.problem or 'untrusted'}")
        if self.changes is not None and not self.changes.permitted:
            _add(p, f"the document was modified after signing: {self.changes.summary}")
        if self.log is not None and self.log.status == "failed":
            _add(p, f"usage log: {self.log.detail}")
        undecided = ((self.revocation is not None and self.revocation.status == "unknown")
                     or (self.timestamp is not None and self.timestamp.status == "undecided")
                     or (self.log is not None and self.log.status == "error"))
        self.verdict = "invalid" if p else "indeterminate" if undecided else "valid"
        return self.verdict


@dataclass
class VerificationReport:
    file: str
    file_sha256: str
    type: Literal["pdf", "detached"]
    signature_file: str | None
    checked_at: datetime
    trust_roots: list[str]
    signatures: list[SignatureReport]
    problems: list[str] = _field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        if self.problems or not self.signatures:
            return "invalid"
        verdicts = {s.verdict for s in self.signatures}
        return ("invalid" if "invalid" in verdicts
                else "indeterminate" if "indeterminate" in verdicts else "valid")

    @property
    def exit_code(self) -> int:
        return _EXIT[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "exit_code": self.exit_code}
        out.update(_jsonable(self))
        return out


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _add(items: list[str], text: str) -> None:
    if text not in items:
        items.append(text)


# =========================================================================== options


@dataclass
class VerifyOptions:
    """How to verify.

    ``trust_roots``: DER certificates; at least one. ``allow_fetching``:
    fetch revocation data (OCSP, CRLs) and missing certificates online for
    signatures without embedded validation data. ``crls`` / ``ocsps`` /
    ``certificates``: DER revocation data and intermediate certificates known
    in advance (the server passes its own CRLs). ``log``: checks each
    signature against the usage log (for example :class:`HttpLogChecker`).
    """

    trust_roots: Sequence[bytes] = ()
    allow_fetching: bool = True
    timeout: float = 10.0
    crls: Sequence[bytes] = ()
    ocsps: Sequence[bytes] = ()
    certificates: Sequence[bytes] = ()
    log: LogChecker | None = None


def load_certificates(data: bytes, what: str) -> list[bytes]:
    """DER certificates from PEM (one or more) or DER bytes; :class:`InvalidInput` if none."""
    ders: list[bytes] = []
    try:
        if pem.detect(data):
            for kind, _headers, der in pem.unarmor(data, multiple=True):
                if kind == "CERTIFICATE":
                    ders.append(der)
        else:
            ders.append(data)
        for der in ders:
            asn1_x509.Certificate.load(der, strict=True).native  # noqa: B018 (full parse)
    except Exception as e:  # asn1crypto raises assorted errors on garbage
        raise InvalidInput(f"{what} is not a certificate (PEM or DER)", field="trust") from e
    if not ders:
        raise InvalidInput(f"{what} holds no certificate", field="trust")
    return ders


def fetch_server_root(client: httpx.Client) -> bytes:
    """The sealkeeper server's root CA certificate (``/pki/root.crt``), DER."""
    try:
        r = client.get("/pki/root.crt")
    except httpx.HTTPError as e:
        raise SealkeeperError(f"cannot reach the server for its root certificate: "
                              f"{_reason(e)}", field="server") from e
    if r.status_code != 200:
        raise SealkeeperError(f"the server answered {r.status_code} for /pki/root.crt",
                              field="server")
    return load_certificates(r.content, "the server's /pki/root.crt")[0]


# =========================================================================== entry points


def verify_file(path: str | os.PathLike[str], options: VerifyOptions, *,
                signature: str | os.PathLike[str] | None = None) -> VerificationReport:
    """A PDF (``signature`` None) or any file with its detached ``.p7s``."""
    if signature is not None:
        return verify_detached(path, signature, options)
    return verify_pdf(path, options)


def verify_pdf(source: Source, options: VerifyOptions, *,
               name: str | None = None) -> VerificationReport:
    """Verify every signature and document time-stamp of a PDF."""
    display = name or _display_name(source)
    roots = _roots(options)
    with _opened(source, display) as stream:
        digest = _sha256(stream)
        head = stream.read(1024)
        stream.seek(0)
        if b"%PDF-" not in head:
            raise InvalidInput(f"{display} is not a PDF (no %PDF header); for another file "
                               "give its detached signature with --signature", field="file")
        reader = _read_pdf(stream, display)
        found = _pdf_signature_fields(reader, display)
        signatures = asyncio.run(_PdfRun(reader, _Engine(options, roots)).run(found))
        _log_checks(signatures, options.log)
    return VerificationReport(display, digest, "pdf", None, datetime.now(UTC),
                              [_short_name(r) for r in roots], signatures)


def verify_detached(content: Source, signature: Source | bytes, options: VerifyOptions, *,
                    name: str | None = None,
                    signature_name: str | None = None) -> VerificationReport:
    """Verify a detached CMS signature (``.p7s``, DER or PEM) over ``content``."""
    display = name or _display_name(content)
    sig_display = signature_name or (
        "signature" if isinstance(signature, bytes) else _display_name(signature))
    roots = _roots(options)
    signed_data = _load_detached(signature, sig_display)
    with _opened(content, display) as stream:
        digest = _sha256(stream)
        stream.seek(0)
        report = asyncio.run(_detached_run(stream, signed_data, _Engine(options, roots)))
    _log_checks([report], options.log)
    return VerificationReport(display, digest, "detached", sig_display, datetime.now(UTC),
                              [_short_name(r) for r in roots], [report])


def _roots(options: VerifyOptions) -> list[asn1_x509.Certificate]:
    if not options.trust_roots:
        raise InvalidInput("no trust root: pass --trust ROOT.pem or --server URL",
                           field="trust")
    try:
        return [asn1_x509.Certificate.load(bytes(r)) for r in options.trust_roots]
    except Exception as e:
        raise InvalidInput("a trust root is not a DER certificate", field="trust") from e


# =========================================================================== reading input


def _display_name(source: Source | bytes) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    return Path(str(getattr(source, "name", "document"))).name


@contextmanager
def _opened(source: Source, display: str) -> Iterator[IO[bytes]]:
    if not isinstance(source, str | os.PathLike):
        yield source
        return
    path = Path(source)
    if path.is_dir():
        raise InvalidInput(f"{display} is a directory, not a file", field="file")
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise InvalidInput(f"{display} cannot be read: {e.strerror}", field="file") from e
    with stream:
        yield stream


def _sha256(stream: IO[bytes]) -> str:
    h = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    stream.seek(0)
    return h.hexdigest()


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if not text:
        return type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _read_pdf(stream: IO[bytes], display: str) -> PdfFileReader:
    try:
        reader = PdfFileReader(stream, strict=True)
        encrypted = reader.encrypted
        root = reader.root
        if not isinstance(root, generic.DictionaryObject):
            raise ValueError("the document catalog is not a dictionary")
    except Exception as e:  # pyHanko raises many error types on damaged files
        raise InvalidInput(f"{display} is not a readable PDF: {_reason(e)}",
                           field="file") from e
    if encrypted:
        raise InvalidInput(f"{display} is encrypted; verify a decrypted copy", field="file")
    return reader


_Field = tuple[str, Any]


def _pdf_signature_fields(reader: PdfFileReader, display: str) -> list[_Field]:
    try:
        return [(name, sig_field) for name, _value, sig_field
                in enumerate_sig_fields(reader, filled_status=True)]
    except Exception as e:
        raise InvalidInput(f"the signature fields of {display} cannot be read: {_reason(e)}",
                           field="file") from e


def _load_detached(signature: Source | bytes, display: str) -> cms.SignedData:
    if isinstance(signature, bytes):
        data = signature
    else:
        with _opened(signature, display) as f:
            data = f.read(MAX_SIGNATURE_FILE + 1)
    if len(data) > MAX_SIGNATURE_FILE:
        raise InvalidInput(f"{display} is larger than {MAX_SIGNATURE_FILE >> 20} MB; not a "
                           "detached signature", field="signature")
    try:
        if pem.detect(data):
            _kind, _headers, data = pem.unarmor(data)
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError("not a CMS SignedData")
        signed: cms.SignedData = info["content"]
        count = len(signed["signer_infos"])
        attached = not isinstance(signed["encap_content_info"]["content"], core.Void)
        signed["signer_infos"][0]["signature"].native  # noqa: B018 (full parse)
    except Exception as e:
        raise InvalidInput(f"{display} is not a CMS signature: {_reason(e)}",
                           field="signature") from e
    if count != 1:
        raise InvalidInput(f"{display} has {count} signers; one is supported",
                           field="signature")
    if attached:
        raise InvalidInput(f"{display} carries its content (attached); a detached "
                           "signature is expected", field="signature")
    return signed


# =========================================================================== certificates


def _name_value(name: asn1_x509.Name, key: str) -> str | None:
    value = name.native.get(key)
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return None if value is None else str(value)


def _short_name(cert: asn1_x509.Certificate) -> str:
    cn = _name_value(cert.subject, "common_name")
    org = _name_value(cert.subject, "organization_name")
    if cn and org and org not in cn:
        return f"{cn} ({org})"
    return cn or org or cert.subject.human_friendly


def _party(cert: asn1_x509.Certificate) -> Party:
    subject = cert.subject
    email = _name_value(subject, "email_address")
    if email is None and cert.subject_alt_name_value is not None:
        emails = [g.native for g in cert.subject_alt_name_value if g.name == "rfc822_name"]
        email = emails[0] if emails else None
    validity = cert["tbs_certificate"]["validity"]
    return Party(
        common_name=_name_value(subject, "common_name"),
        organization=_name_value(subject, "organization_name"),
        organization_identifier=_name_value(subject, "organization_identifier"),
        email=email,
        country=_name_value(subject, "country_name"),
        subject=subject.human_friendly,
        issuer=cert.issuer.human_friendly,
        serial_number=format(cert.serial_number, "x"),
        valid_from=validity["not_before"].native,
        valid_until=validity["not_after"].native,
        certificate_sha256=hashlib.sha256(cert.dump()).hexdigest(),
    )


def _seal_of(party: Party) -> Seal:
    if party.organization_identifier:
        return Seal("organization_seal", name=party.common_name)
    return Seal("personal_signature", name=party.common_name, type="personal")


class _Dss:
    """Validation data of a PDF's document security store."""

    def __init__(self, reader: PdfFileReader) -> None:
        self.certs: list[asn1_x509.Certificate] = []
        self.ocsps: list[asn1_ocsp.OCSPResponse] = []
        self.crls: list[asn1_crl.CertificateList] = []
        if "/DSS" not in reader.root:
            return
        try:
            dss = DocumentSecurityStore.read_dss(reader)
            self.certs = list(dss.load_certs())
            self.ocsps = [asn1_ocsp.OCSPResponse.load(ref.get_object().data)
                          for ref in dss.ocsps]
            self.crls = [asn1_crl.CertificateList.load(ref.get_object().data)
                         for ref in dss.crls]
        except Exception:  # a damaged DSS is ignored: revocation is then checked online
            self.certs, self.ocsps, self.crls = [], [], []

    def covers(self, cert: asn1_x509.Certificate) -> bool:
        """Whether the DSS holds revocation data (OCSP or CRL) for ``cert``."""
        try:
            for resp in self.ocsps:
                basic = resp["response_bytes"]["response"].parsed
                for single in basic["tbs_response_data"]["responses"]:
                    if single["cert_id"]["serial_number"].native == cert.serial_number:
                        return True
            return any(c["tbs_cert_list"]["issuer"] == cert.issuer for c in self.crls)
        except Exception:
            return False


# =========================================================================== engine


def _tst_time(signed_data: cms.SignedData) -> datetime | None:
    try:
        tst = signed_data["encap_content_info"]["content"].parsed
        when: datetime = tst["gen_time"].native
        return when
    except Exception:
        return None


def _signature_ts_time(signer_info: cms.SignerInfo) -> datetime | None:
    unsigned = signer_info["unsigned_attrs"]
    if isinstance(unsigned, core.Void):
        return None
    for attr in unsigned:
        if attr["type"].native == _SIG_TS:
            return _tst_time(attr["values"][0]["content"])
    return None


def _signed_attr(signer_info: cms.SignerInfo, name: str) -> Any:
    attrs = signer_info["signed_attrs"]
    if isinstance(attrs, core.Void):
        return None
    for attr in attrs:
        if attr["type"].native == name:
            return attr["values"][0].native
    return None


def _log_query(signer_info: cms.SignerInfo) -> LogQuery | None:
    try:
        sig_sha = hashlib.sha256(signer_info["signature"].native).hexdigest()
        md = signer_info["digest_algorithm"]["algorithm"].native
        digests: list[str] = []
        message_digest = _signed_attr(signer_info, "message_digest")
        if isinstance(message_digest, bytes):
            digests.append(message_digest.hex())
        attrs = signer_info["signed_attrs"]
        if not isinstance(attrs, core.Void):
            der = attrs.dump()
            digests.append(hashlib.new(md, b"\x31" + der[1:]).hexdigest())
        return LogQuery(sig_sha, tuple(digests))
    except Exception:
        return None


class _Engine:
    """Validation contexts and certificate checks for one verification run."""

    def __init__(self, options: VerifyOptions, roots: list[asn1_x509.Certificate]) -> None:
        self.options = options
        self.roots = roots
        self.certs = [asn1_x509.Certificate.load(bytes(c)) for c in options.certificates]
        self.crls = [bytes(c) for c in options.crls]
        self.ocsps = [bytes(o) for o in options.ocsps]
        self.backend: AIOHttpFetcherBackend | None = None
        self.dss: _Dss | None = None
        self._contexts: dict[datetime | None, ValidationContext] = {}

    def context(self, moment: datetime | None,
                others: Sequence[asn1_x509.Certificate]) -> ValidationContext:
        """The validation context at ``moment`` (embedded and given data only), or
        now (fetching when allowed); one per moment and run, so that revocation
        data fetched for one check serves the next."""
        vc = self._contexts.get(moment)
        if vc is not None:
            vc.certificate_registry.register_multiple(list(others))
            return vc
        dss = self.dss
        kwargs: dict[str, Any] = {
            "trust_roots": list(self.roots),
            "other_certs": [*self.certs, *(dss.certs if dss else []), *others],
            "crls": [*self.crls, *(dss.crls if dss else [])],
            "ocsps": [*self.ocsps, *(dss.ocsps if dss else [])],
            "revocation_mode": "require",
        }
        if moment is not None:
            kwargs.update(moment=moment, best_signature_time=moment, retroactive_revinfo=True)
        elif self.options.allow_fetching:
            if self.backend is None:
                self.backend = AIOHttpFetcherBackend(per_request_timeout=self.options.timeout)
            kwargs.update(allow_fetching=True, fetcher_backend=self.backend)
        vc = self._contexts[moment] = ValidationContext(**kwargs)
        return vc

    async def aclose(self) -> None:
        if self.backend is not None:
            await self.backend.close()  # type: ignore[no-untyped-call]

    async def check_certificate(self, cert: asn1_x509.Certificate,
                                others: Sequence[asn1_x509.Certificate],
                                poe: datetime | None, ltv: bool, *,
                                key_usage: set[str], eku: set[str] | None = None
                                ) -> tuple[Trust, Revocation]:
        """Chain and revocation of ``cert``: at ``poe`` from embedded data when
        ``ltv``, else now (online when allowed)."""
        trust, revocation = await self._check(cert, others, poe if ltv else None, poe,
                                              key_usage, eku)
        if ltv and revocation.status == "unknown" and self.options.allow_fetching:
            online = await self._check(cert, others, None, poe, key_usage, eku)
            if online[1].status != "unknown":
                return online
        return trust, revocation

    def _source(self, moment: datetime | None) -> str:
        if moment is not None:
            return "validation data embedded in the document (DSS)"
        if self.options.allow_fetching:
            return "checked online"
        return "validation data at hand (no fetching)"

    async def _check(self, cert: asn1_x509.Certificate,
                     others: Sequence[asn1_x509.Certificate], moment: datetime | None,
                     poe: datetime | None, key_usage: set[str], eku: set[str] | None
                     ) -> tuple[Trust, Revocation]:
        vc = self.context(moment, others)
        as_of = moment or datetime.now(UTC)
        source = self._source(moment)
        validator = CertificateValidator(cert, list(others), vc)
        try:
            path = await validator.async_validate_usage(  # type: ignore[no-untyped-call]
                key_usage, eku)
        except RevokedError as e:
            trust = _trust(e.original_path)
            revoked_at = e.revocation_dt
            reason = e.reason.native if e.reason is not None else None
            whose = "the signer's certificate" if e.is_ee_cert else "a CA certificate"
            if poe is not None and moment is None and revoked_at > poe:
                return trust, Revocation(
                    "good", as_of=poe, source=source + "; signature time-stamped before the "
                    "revocation", revoked_at=revoked_at, reason=reason,
                    detail=f"{whose} was revoked on {_fmt(revoked_at)}, after the "
                    "signature's time-stamp")
            if moment is not None or poe is not None:
                context = "before the signature's time-stamp"
            else:
                context = "and no time-stamp proves that the signature came first"
            return trust, Revocation("revoked", as_of=as_of, source=source,
                                     revoked_at=revoked_at, reason=reason,
                                     detail=f"{whose} was revoked on {_fmt(revoked_at)}"
                                     f"{f' ({reason})' if reason else ''} {context}")
        except InsufficientRevinfoError as e:
            return _trust(e.original_path), Revocation(
                "unknown", as_of=as_of, source=source,
                detail=f"no usable revocation data: {_reason(e)}")
        except PathBuildingError:
            return (Trust(False, problem="no chain to a trusted root certificate"),
                    Revocation("not_checked"))
        except (ExpiredError, NotYetValidError) as e:
            return (Trust(False, problem=_reason(e), chain=_trust(e.original_path).chain),
                    Revocation("not_checked"))
        except ValidationError as e:
            return Trust(False, problem=_reason(e)), Revocation("not_checked")
        except Exception as e:  # fetcher and parsing errors inside certvalidator
            return Trust(False, problem=f"certificate validation failed: {_reason(e)}"), \
                Revocation("unknown", as_of=as_of, source=source, detail=_reason(e))
        return _trust(path), Revocation("good", as_of=as_of, source=source)


def _trust(path: Any) -> Trust:
    try:
        chain = [_short_name(c) for c in reversed(list(path.iter_certs(include_root=True)))]
        authority = path.trust_anchor.authority
        cert = getattr(authority, "certificate", None)
        root = _short_name(cert) if cert is not None else authority.name.human_friendly
    except Exception:
        return Trust(True)
    return Trust(True, root=root, chain=chain)


def _fmt(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _sig_ts_token(signer_info: cms.SignerInfo) -> cms.SignedData | None:
    unsigned = signer_info["unsigned_attrs"]
    if isinstance(unsigned, core.Void):
        return None
    for attr in unsigned:
        if attr["type"].native == _SIG_TS:
            token: cms.SignedData = attr["values"][0]["content"]
            return token
    return None


def _token_certs(token: cms.SignedData | None) -> list[asn1_x509.Certificate]:
    if token is None:
        return []
    return [c.chosen for c in token["certificates"] or [] if c.name == "certificate"]


async def _timestamp(engine: _Engine, status: Any, signer_info: cms.SignerInfo,
                     others: Sequence[asn1_x509.Certificate]) -> Timestamp | None:
    """The signature time-stamp: pyHanko's integrity result, our trust and
    revocation check of the TSA (at the time-stamp's time from the DSS when it
    holds the TSA's revocation data, else now)."""
    ts = getattr(status, "timestamp_validity", None)
    if ts is None:
        return None
    tsa = ts.signing_cert
    name = _short_name(tsa)
    if not ts.intact:
        return Timestamp(ts.timestamp, name, "invalid",
                         "the time-stamp does not match the signature")
    if not ts.valid:
        return Timestamp(ts.timestamp, name, "invalid",
                         "the time-stamp's signature does not verify")
    certs = [*_token_certs(_sig_ts_token(signer_info)), *others]
    ltv = engine.dss is not None and engine.dss.covers(tsa)
    trust, revocation = await engine.check_certificate(
        tsa, certs, ts.timestamp, ltv, key_usage=set(), eku={"time_stamping"})
    if not trust.trusted:
        return Timestamp(ts.timestamp, name, "invalid",
                         f"the time-stamping authority is not trusted: {trust.problem}")
    if revocation.status == "revoked":
        return Timestamp(ts.timestamp, name, "invalid",
                         f"the time-stamping authority's certificate: {revocation.detail}")
    if revocation.status != "good":
        return Timestamp(ts.timestamp, name, "undecided",
                         f"revocation status of the time-stamping authority unknown: "
                         f"{revocation.detail}")
    return Timestamp(ts.timestamp, name, "valid")


def _poe(when: datetime | None, ts: Timestamp | None) -> datetime | None:
    """The signature's proof of existence: its time-stamp, unless that is invalid."""
    return when if ts is not None and ts.status != "invalid" else None


def _changes(status: Any) -> Changes:
    coverage = status.coverage
    level = status.modification_level
    cov = coverage.name.lower() if coverage is not None else None
    lvl = level.name.lower() if level is not None else None
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return Changes(cov, lvl, False, True, "no changes after signing")
    if coverage != SignatureCoverageLevel.ENTIRE_REVISION:
        return Changes(cov, lvl, True, False,
                       "the signature does not cover its whole revision of the document")
    if level in (None, ModificationLevel.NONE, ModificationLevel.LTA_UPDATES):
        return Changes(cov, lvl, False, True, "no changes to the content; only validation "
                       "data and time-stamps were added")
    if level == ModificationLevel.FORM_FILLING and status.docmdp_ok is not False:
        return Changes(cov, lvl, True, True, "permitted changes: further signatures or "
                       "form filling")
    if level == ModificationLevel.ANNOTATIONS and status.docmdp_ok is not False:
        return Changes(cov, lvl, True, True, "permitted changes: annotations")
    return Changes(cov, lvl, True, False, "the content was changed after signing")


class _PdfRun:
    def __init__(self, reader: PdfFileReader, engine: _Engine) -> None:
        self.reader = reader
        self.engine = engine

    async def run(self, found: list[_Field]) -> list[SignatureReport]:
        self.engine.dss = _Dss(self.reader)
        embedded: list[EmbeddedPdfSignature] = []
        broken: list[SignatureReport] = []
        for name, sig_field in found:
            try:
                emb = EmbeddedPdfSignature(self.reader, sig_field, name)
                emb.signer_cert  # noqa: B018 (parse the certificates now)
                embedded.append(emb)
            except Exception as e:
                r = SignatureReport(0, "signature", name)
                r.problems.append(f"the signature data cannot be read: {_reason(e)}")
                broken.append(r)
        embedded.sort(key=lambda s: s.signed_revision)
        doc_ts = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
        reports: list[SignatureReport] = []
        try:
            for i, emb in enumerate(embedded, 1):
                try:
                    if emb.sig_object_type == "/DocTimeStamp":
                        reports.append(await self.doc_timestamp(i, emb))
                    else:
                        reports.append(await self.signature(i, emb, doc_ts))
                except Exception as e:  # a damaged signature must not stop the others
                    r = SignatureReport(i, "signature", emb.field_name)
                    r.problems.append(f"the signature could not be validated: {_reason(e)}")
                    reports.append(r)
        finally:
            await self.engine.aclose()
        for j, r in enumerate(broken, len(reports) + 1):
            r.index = j
            reports.append(r)
        for r in reports:
            r.decide()
        return reports

    async def signature(self, index: int, emb: EmbeddedPdfSignature,
                        doc_ts: list[EmbeddedPdfSignature]) -> SignatureReport:
        r = SignatureReport(index, "signature", emb.field_name)
        subfilter = str(emb.sig_object.get("/SubFilter", ""))
        r.format = _PDF_SUBFILTERS.get(subfilter)
        cert = emb.signer_cert
        r.signer = _party(cert)
        r.organization = r.signer.organization
        r.seal = _seal_of(r.signer)
        r._query = _log_query(emb.signer_info)
        if r.format is None:
            r.problems.append(f"unsupported signature format {subfilter or '(none)'}")
            return r
        r.digest_algorithm = emb.md_algorithm
        r.signature_algorithm = emb.signer_info["signature_algorithm"].signature_algo
        poe = _signature_ts_time(emb.signer_info)
        dss = self.engine.dss
        ltv = poe is not None and dss is not None and dss.covers(cert)
        others = emb.other_embedded_certs
        vc = self.engine.context(poe if ltv else None, others)
        status = await async_validate_pdf_signature(emb, vc)
        r._integrity(status.intact, status.valid)
        claimed = _signed_attr(emb.signer_info, "signing_time")
        r.signing_time = status.signer_reported_dt
        if r.signing_time is not None:
            r.signing_time_source = ("signed attribute" if claimed is not None
                                     else "claimed: the PDF's /M entry")
        r.timestamp = await _timestamp(self.engine, status, emb.signer_info, others)
        r.changes = _changes(status)
        if status.seed_value_constraint_error is not None:
            r.problems.append(f"seed value constraint: {status.seed_value_constraint_error}")
        if r.intact and r.signature_valid:
            r.trust, r.revocation = await self.engine.check_certificate(
                cert, others, _poe(poe, r.timestamp), ltv, key_usage={"non_repudiation"})
        r.level = self._level(emb, r, doc_ts)
        if r.revocation is not None and r.revocation.revoked_at and r.revocation.status == \
                "good":
            r.warnings.append(r.revocation.detail or "revoked after signing")
        return r

    def _level(self, emb: EmbeddedPdfSignature, r: SignatureReport,
               doc_ts: list[EmbeddedPdfSignature]) -> str | None:
        if r.format != "PAdES":
            return None
        later = [t for t in doc_ts if t.signed_revision > emb.signed_revision]
        if r.timestamp is None and not later:
            return "B-B"
        dss = self.engine.dss
        if dss is None or not dss.covers(emb.signer_cert):
            return "B-T"
        for t in later:
            try:
                has_dss = "/DSS" in self.reader.get_historical_root(t.signed_revision)
            except Exception:  # an unreadable old revision does not count
                has_dss = False
            if has_dss:
                return "B-LTA"
        return "B-LT"

    async def doc_timestamp(self, index: int, emb: EmbeddedPdfSignature) -> SignatureReport:
        r = SignatureReport(index, "document_timestamp", emb.field_name)
        subfilter = str(emb.sig_object.get("/SubFilter", ""))
        r.format = "RFC 3161 document time-stamp"
        cert = emb.signer_cert
        r.signer = _party(cert)
        r.organization = r.signer.organization
        if subfilter != _DOC_TS_SUBFILTER:
            r.problems.append(f"unsupported document time-stamp format {subfilter or '(none)'}")
            return r
        when = _tst_time(emb.signed_data)
        dss = self.engine.dss
        ltv = when is not None and dss is not None and dss.covers(cert)
        others = emb.other_embedded_certs
        status = await async_validate_pdf_timestamp(
            emb, self.engine.context(when if ltv else None, others))
        r._integrity(status.intact, status.valid)
        r.digest_algorithm = emb.md_algorithm
        r.signature_algorithm = emb.signer_info["signature_algorithm"].signature_algo
        r.signing_time = status.timestamp
        r.signing_time_source = "time-stamp"
        r.changes = _changes(status)
        if r.intact and r.signature_valid:
            r.trust, r.revocation = await self.engine.check_certificate(
                cert, others, when, ltv, key_usage=set(), eku={"time_stamping"})
        rev = r.revocation.status if r.revocation is not None else None
        ok = r.intact and r.signature_valid and r.trust is not None and r.trust.trusted
        r.timestamp = Timestamp(status.timestamp, _short_name(cert),
                                "valid" if ok and rev == "good" else
                                "undecided" if ok and rev == "unknown" else "invalid")
        return r


async def _detached_run(stream: IO[bytes], signed_data: cms.SignedData,
                        engine: _Engine) -> SignatureReport:
    r = SignatureReport(1, "signature", None, format="CAdES")
    try:
        signer_info: cms.SignerInfo = signed_data["signer_infos"][0]
        certs = [c.chosen for c in signed_data["certificates"] or []
                 if c.name == "certificate"]
        cert = _find_signer(signer_info, certs)
        if cert is None:
            r.problems.append("the signature does not carry the signer's certificate")
            r.decide()
            return r
        others = [c for c in certs if c is not cert]
        r.signer = _party(cert)
        r.organization = r.signer.organization
        r.seal = _seal_of(r.signer)
        r._query = _log_query(signer_info)
        r.digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
        r.signature_algorithm = signer_info["signature_algorithm"].signature_algo
        poe = _signature_ts_time(signer_info)
        vc = engine.context(None, others)
        status = await async_validate_detached_cms(stream, signed_data,
                                                   signer_validation_context=vc)
        r._integrity(status.intact, status.valid)
        r.signing_time = status.signer_reported_dt
        if r.signing_time is not None:
            r.signing_time_source = "signed attribute"
        r.timestamp = await _timestamp(engine, status, signer_info, others)
        r.level = "B-T" if r.timestamp is not None else "B-B"
        r.changes = (Changes("entire_file", "none", False, True, "the file is unchanged")
                     if r.intact else
                     Changes(None, None, True, False, "the file differs from what was signed"))
        if r.intact and r.signature_valid:
            r.trust, r.revocation = await engine.check_certificate(
                cert, others, _poe(poe, r.timestamp), False, key_usage={"non_repudiation"})
            if r.revocation.status == "good" and r.revocation.revoked_at:
                r.warnings.append(r.revocation.detail or "revoked after signing")
    except Exception as e:
        r.problems.append(f"the signature could not be validated: {_reason(e)}")
    finally:
        await engine.aclose()
    r.decide()
    return r


def _find_signer(signer_info: cms.SignerInfo,
                 certs: Sequence[asn1_x509.Certificate]) -> asn1_x509.Certificate | None:
    sid = signer_info["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if (cert.issuer == sid.chosen["issuer"]
                    and cert.serial_number == sid.chosen["serial_number"].native):
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


# =========================================================================== the usage log


def _log_checks(reports: Sequence[SignatureReport], checker: LogChecker | None) -> None:
    for r in reports:
        if r.kind != "signature" or r.signer is None:
            continue
        if checker is None:
            r.log = LogCheck("skipped", "no usage-log check (no server and token, or "
                             "--no-log-check)")
        elif r._query is None:
            r.log = LogCheck("skipped", "the signature value cannot be read")
        else:
            try:
                r.log = checker(r._query)
            except SealkeeperError as e:
                r.log = LogCheck("error", e.message)
            except Exception as e:
                r.log = LogCheck("error", f"the usage-log check failed: {_reason(e)}")
        if r.log.status == "verified" and r.seal is not None:
            r.seal.seal_id = r.log.seal_id
            r.seal.type = r.log.seal_type or r.seal.type
            r.seal.name = r.log.seal_name or r.seal.name
        r.decide()


def check_log_evidence(query: LogQuery, *, organization_id: str, seq: int, entry: bytes,
                       path: Sequence[bytes], tree_size: int, checkpoint: str,
                       verifier_key: str) -> LogCheck:
    """Check that ``entry`` (canonical bytes) is leaf ``seq`` of the organization's
    log as committed to by the signed ``checkpoint``, and that it records this
    signature. Returns ``verified`` or ``failed`` with the reason."""
    base = LogCheck("failed", organization_id=organization_id, seq=seq, tree_size=tree_size)
    try:
        cp = logproof.open_checkpoint(checkpoint, verifier_key)
    except SealkeeperError as e:  # a malformed key or note, or a bad signature
        base.detail = f"the log checkpoint does not verify: {e.message}"
        return base
    origin, size, root = cp.origin, cp.size, cp.root_hash
    base.checkpoint_origin = origin
    if not origin.endswith(f"/log/{organization_id}"):
        base.detail = f"the checkpoint is for another log ({origin})"
        return base
    if size != tree_size:
        base.detail = f"the proof is for a tree of {tree_size} entries, the checkpoint {size}"
        return base
    leaf = logproof.leaf_hash(entry)
    base.leaf_hash = leaf.hex()
    try:
        body = json.loads(entry.decode("utf-8"))
        assert isinstance(body, dict)
    except Exception:
        base.detail = "the log entry is not a JSON object"
        return base
    if (body.get("seq") != seq or body.get("org") != organization_id
            or body.get("kind") != "signature"
            or body.get("signature_sha256") != query.signature_sha256):
        base.detail = f"log entry {seq} does not record this signature"
        return base
    try:
        logproof.verify_inclusion(leaf, seq, size, path, root)
    except SealkeeperError:
        base.detail = f"the inclusion proof of entry {seq} does not lead to the checkpoint root"
        return base

    def text(key: str) -> str | None:
        value = body.get(key)
        return value if isinstance(value, str) else None

    return LogCheck("verified", f"entry {seq} of {size}; inclusion proof verified against "
                    "the signed checkpoint", organization_id=organization_id, seq=seq,
                    tree_size=size, checkpoint_origin=origin, leaf_hash=leaf.hex(),
                    logged_at=text("time"), seal_id=text("seal_id"),
                    seal_name=text("seal_name"), seal_type=text("seal_type"),
                    user_email=text("user_email"), file_name=text("file_name"))


class HttpLogChecker:
    """Finds a signature in the caller's organization's usage log over the JSON
    API and checks its inclusion proof against a signed checkpoint.

    ``client``: an ``httpx.Client`` with the server's base URL and the bearer
    token. ``verifier_key``: the log's signed-note key (``name+id+key``) if
    known in advance; otherwise it is fetched from the same server (which
    then proves consistency with itself only: pin the key for independence).
    An administrator sees every entry of the organization, another member
    only their own.
    """

    def __init__(self, client: httpx.Client, *, verifier_key: str | None = None) -> None:
        self.client = client
        self.verifier_key = verifier_key
        self._org: str | None = None
        self._org_known = False

    def __call__(self, query: LogQuery) -> LogCheck:
        try:
            return self._check(query)
        except httpx.HTTPStatusError as e:
            return LogCheck("error", f"the server answered {e.response.status_code} for "
                            f"{e.request.url.path}")
        except httpx.HTTPError as e:
            return LogCheck("error", f"the server could not be reached: {_reason(e)}")
        except (ValueError, KeyError, TypeError) as e:
            return LogCheck("error", f"unexpected answer from the server: {_reason(e)}")

    def _get(self, url: str, **params: Any) -> httpx.Response | LogCheck:
        r = self.client.get(url, params=params or None)
        if r.status_code == 200:
            return r
        if r.status_code == 404:
            return LogCheck("unavailable", f"the server has no usage log at {url}")
        if r.status_code in (401, 403):
            return LogCheck("error", "the token may not read the usage log "
                            f"({r.status_code})")
        return LogCheck("error", f"the server answered {r.status_code} for {url}")

    def _organization(self) -> str | None:
        if not self._org_known:
            r = self.client.get("/api/v1/me")
            if r.status_code in (401, 403):
                raise SealkeeperError("the API token was refused by the server")
            r.raise_for_status()
            self._org = r.json()["user"].get("organization_id")
            self._org_known = True
        return self._org

    def _check(self, query: LogQuery) -> LogCheck:
        org = self._organization()
        if org is None:
            return LogCheck("skipped", "the account belongs to no organization")
        log_url = f"/api/v1/organizations/{org}/log"
        seq: int | None = None
        for digest in query.digests:
            for page in range(1, 11):
                r = self._get(log_url, kind="signature", file_digest=digest, page=page,
                              page_size=100)
                if isinstance(r, LogCheck):
                    return r
                data = r.json()
                for item in data["items"]:
                    if (item.get("details") or {}).get("signature_sha256") == \
                            query.signature_sha256:
                        seq = int(item["seq"])
                        break
                if seq is not None or page * 100 >= int(data["total"]):
                    break
            if seq is not None:
                break
        if seq is None:
            return LogCheck("not_found", "no entry of the organization's usage log that "
                            "this account may read records this signature",
                            organization_id=org)
        cp = self._get(f"{log_url}/checkpoint")
        if isinstance(cp, LogCheck):
            return cp
        note = cp.text
        key = self.verifier_key
        if key is None:
            vk = self._get(f"{log_url}/verifier-key")
            if isinstance(vk, LogCheck):
                return vk
            key = vk.text.strip()
        lines = note.split("\n")
        size = int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else 0
        if size <= seq:
            return LogCheck("failed", f"the checkpoint ({size} entries) does not cover "
                            f"entry {seq}", organization_id=org, seq=seq)
        proof = self._get(f"{log_url}/proof/inclusion", seq=seq, tree_size=size)
        if isinstance(proof, LogCheck):
            return proof
        p = proof.json()
        return check_log_evidence(
            query, organization_id=org, seq=seq, entry=base64.b64decode(p["entry"]),
            path=[bytes.fromhex(h) for h in p["path"]], tree_size=int(p["tree_size"]),
            checkpoint=note, verifier_key=key)
