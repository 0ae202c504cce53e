"""X.509 certificates of sealkeeper's own CA hierarchy, CSRs and imported chains.

Scope: pure functions over a :class:`KeyHandle` (no database, no HTTP) that
issue the root, issuing CA, OCSP responder, TSA, seal and encryption
certificates, build a CSR for an outside CA and check a certificate chain
imported from one.

Keys may live in an HSM, so we never hold the issuer's private key: every
certificate and CSR is built with a throwaway key and re-signed through the
key store by :mod:`sealkeeper.crypto.signing`, which also checks each
signature against the issuer key. :class:`SigningParams` and
:func:`signing_params` are re-exported from there.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

from sealkeeper.crypto.digests import DigestAlgorithm
from sealkeeper.crypto.keystore.base import KeyHandle, SignatureScheme
from sealkeeper.crypto.signing import (
    SigningParams,
    as_utc,
    authority_key_identifier,
    resign,
    sign_with_throwaway,
    signing_params,
    spki_der,
)
from sealkeeper.errors import InvalidInput

__all__ = [
    "ID_KP_DOCUMENT_SIGNING",
    "CaConfig",
    "OrganizationSeal",
    "PersonalSignature",
    "PkiUrls",
    "SealSubject",
    "SigningParams",
    "build_csr",
    "check_chain_matches_key",
    "issue_encryption_certificate",
    "issue_intermediate",
    "issue_ocsp_responder",
    "issue_root",
    "issue_seal_certificate",
    "issue_tsa",
    "new_serial",
    "signing_params",
]

#: id-kp-documentSigning (RFC 9336). Not added by default: Adobe Reader refuses
#: EKUs outside its own list, and pyHanko needs none.
ID_KP_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class CaConfig:
    """Names and lifetimes of the CA hierarchy (lifetimes in years)."""

    organization: str = "sealkeeper"
    country: str | None = None
    root_common_name: str = "sealkeeper Root CA"
    issuing_common_name: str = "sealkeeper Issuing CA"
    ocsp_common_name: str = "sealkeeper OCSP Responder"
    tsa_common_name: str = "sealkeeper Time Stamping Authority"
    root_years: int = 20
    issuing_years: int = 10
    ocsp_years: int = 1
    tsa_years: int = 5
    seal_years: int = 3

    def name(self, common_name: str) -> x509.Name:
        return _name(common_name=common_name, organization=self.organization,
                     country=self.country)


@dataclass(frozen=True, slots=True)
class PkiUrls:
    """Where relying parties fetch revocation data and issuer certificates."""

    crl_url: str                       # CRL of the issuing CA (in end-entity certs)
    ocsp_url: str                      # OCSP responder for the issuing CA's certs
    ca_issuers_url: str                # the issuing CA certificate (DER)
    root_crl_url: str                  # CRL of the root (in the issuing CA cert)
    root_ca_issuers_url: str | None = None


@dataclass(frozen=True, slots=True)
class OrganizationSeal:
    """Subject of an organization's e-seal certificate."""

    organization: str                  # legal name -> O
    organization_identifier: str       # e.g. "NTRXX-12345678" -> 2.5.4.97
    seal_name: str                     # e.g. "Example Ltd Contract Seal" -> CN
    country: str | None = None

    def to_name(self) -> x509.Name:
        return _name(common_name=self.seal_name, organization=self.organization,
                     country=self.country, org_id=self.organization_identifier)

    def alt_names(self) -> list[x509.GeneralName]:
        return []


@dataclass(frozen=True, slots=True)
class PersonalSignature:
    """Subject of an employee's personal e-signature certificate."""

    name: str                          # -> CN
    email: str                         # -> SAN rfc822Name
    organization: str                  # -> O
    country: str | None = None

    def to_name(self) -> x509.Name:
        return _name(common_name=self.name, organization=self.organization,
                     country=self.country)

    def alt_names(self) -> list[x509.GeneralName]:
        return [x509.RFC822Name(self.email)]


SealSubject = OrganizationSeal | PersonalSignature


# --------------------------------------------------------------------------- issuing


def new_serial() -> int:
    """A random positive serial number of at most 159 bits (fits 20 DER octets)."""
    while True:
        serial = secrets.randbits(159)
        if serial:
            return serial


def issue_root(handle: KeyHandle, config: CaConfig, now: datetime, *,
               serial: int | None = None, scheme: SignatureScheme | None = None,
               digest: DigestAlgorithm | None = None) -> x509.Certificate:
    """Self-signed root: CA with pathLen 1, keyCertSign + cRLSign."""
    now = _start(now)
    public_key = handle.public_key()
    name = config.name(config.root_common_name)
    builder = (
        _base_builder(name, name, public_key, serial, now, _add_years(now, config.root_years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
    )
    params = signing_params(handle, scheme, digest)
    return _finish(builder, handle, params, public_key)


def issue_intermediate(root_handle: KeyHandle, root_cert: x509.Certificate,
                       subject_public_key: PublicKeyTypes, config: CaConfig,
                       now: datetime, *, urls: PkiUrls, serial: int | None = None,
                       scheme: SignatureScheme | None = None,
                       digest: DigestAlgorithm | None = None) -> x509.Certificate:
    """Issuing CA under the root: pathLen 0, CRL DP = the root's CRL."""
    now = _start(now)
    builder = (
        _issued_builder(root_cert, config.name(config.issuing_common_name), subject_public_key,
                        serial, now, _add_years(now, config.issuing_years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_crl_dp(urls.root_crl_url), critical=False)
    )
    if urls.root_ca_issuers_url:
        builder = builder.add_extension(_aia(None, urls.root_ca_issuers_url), critical=False)
    params = signing_params(root_handle, scheme, digest)
    return _finish(builder, root_handle, params, root_cert.public_key())


def issue_ocsp_responder(issuer_handle: KeyHandle, issuer_cert: x509.Certificate,
                         subject_public_key: PublicKeyTypes, config: CaConfig,
                         now: datetime, *, serial: int | None = None,
                         scheme: SignatureScheme | None = None,
                         digest: DigestAlgorithm | None = None) -> x509.Certificate:
    """Delegated OCSP responder of the issuing CA (EKU OCSPSigning, ocsp-nocheck)."""
    now = _start(now)
    builder = (
        _issued_builder(issuer_cert, config.name(config.ocsp_common_name), subject_public_key,
                        serial, now, _add_years(now, config.ocsp_years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ee_key_usage(non_repudiation=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                       critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    params = signing_params(issuer_handle, scheme, digest)
    return _finish(builder, issuer_handle, params, issuer_cert.public_key())


def issue_tsa(issuer_handle: KeyHandle, issuer_cert: x509.Certificate,
              subject_public_key: PublicKeyTypes, config: CaConfig, now: datetime, *,
              urls: PkiUrls | None = None, serial: int | None = None,
              scheme: SignatureScheme | None = None,
              digest: DigestAlgorithm | None = None) -> x509.Certificate:
    """Time-stamping unit certificate (critical EKU timeStamping, RFC 3161 2.3)."""
    now = _start(now)
    builder = (
        _issued_builder(issuer_cert, config.name(config.tsa_common_name), subject_public_key,
                        serial, now, _add_years(now, config.tsa_years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ee_key_usage(non_repudiation=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                       critical=True)
    )
    if urls is not None:
        builder = _add_revocation_info(builder, urls)
    params = signing_params(issuer_handle, scheme, digest)
    return _finish(builder, issuer_handle, params, issuer_cert.public_key())


def issue_seal_certificate(issuer_handle: KeyHandle, issuer_cert: x509.Certificate,
                           subject_public_key: PublicKeyTypes, *, subject: SealSubject,
                           serial: int, not_before: datetime, not_after: datetime,
                           urls: PkiUrls, policies: Sequence[str] = (),
                           extended_key_usages: Sequence[ObjectIdentifier] = (),
                           scheme: SignatureScheme | None = None,
                           digest: DigestAlgorithm | None = None) -> x509.Certificate:
    """An organization seal or personal e-signature certificate.

    keyUsage digitalSignature + nonRepudiation (critical); no EKU unless given;
    ``not_after`` is clamped to the issuer's own notAfter.
    """
    not_before = _start(not_before)
    not_after = min(as_utc(not_after, "not_after").replace(microsecond=0),
                    issuer_cert.not_valid_after_utc)
    if not_after <= not_before:
        raise InvalidInput("the certificate validity period is empty", field="not_after")
    try:
        subject_name, alt_names = subject.to_name(), subject.alt_names()
    except ValueError as e:
        raise InvalidInput(f"invalid certificate subject: {e}", field="subject") from e
    builder = (
        _issued_builder(issuer_cert, subject_name, subject_public_key, serial,
                        not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ee_key_usage(non_repudiation=True), critical=True)
    )
    builder = _add_revocation_info(builder, urls)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    if extended_key_usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usages)),
                                        critical=False)
    if policies:
        builder = builder.add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(ObjectIdentifier(p), None) for p in policies]),
            critical=False)
    params = signing_params(issuer_handle, scheme, digest)
    return _finish(builder, issuer_handle, params, issuer_cert.public_key())


def issue_encryption_certificate(issuer_handle: KeyHandle, issuer_cert: x509.Certificate,
                                 subject_public_key: PublicKeyTypes, *, subject: SealSubject,
                                 serial: int, not_before: datetime, not_after: datetime,
                                 urls: PkiUrls, scheme: SignatureScheme | None = None,
                                 digest: DigestAlgorithm | None = None) -> x509.Certificate:
    """An encryption certificate for a user or an organization (CMS / S/MIME
    recipients, PDF public-key security).

    keyUsage (critical) keyEncipherment for an RSA key, keyAgreement for an EC
    key, and nothing else: the key neither signs nor certifies. EKU
    emailProtection (non-critical), as mail clients expect; ``not_after`` is
    clamped to the issuer's own notAfter.
    """
    not_before = _start(not_before)
    not_after = min(as_utc(not_after, "not_after").replace(microsecond=0),
                    issuer_cert.not_valid_after_utc)
    if not_after <= not_before:
        raise InvalidInput("the certificate validity period is empty", field="not_after")
    is_rsa = isinstance(subject_public_key, rsa.RSAPublicKey)
    if not is_rsa and not isinstance(subject_public_key, ec.EllipticCurvePublicKey):
        raise InvalidInput("only EC and RSA subject keys are supported", field="public_key")
    try:
        subject_name, alt_names = subject.to_name(), subject.alt_names()
    except ValueError as e:
        raise InvalidInput(f"invalid certificate subject: {e}", field="subject") from e
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=is_rsa, data_encipherment=False,
                          key_agreement=not is_rsa, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    builder = (
        _issued_builder(issuer_cert, subject_name, subject_public_key, serial,
                        not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                       critical=False)
    )
    builder = _add_revocation_info(builder, urls)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    params = signing_params(issuer_handle, scheme, digest)
    return _finish(builder, issuer_handle, params, issuer_cert.public_key())


# --------------------------------------------------------------------------- outside CA


def build_csr(handle: KeyHandle, subject: SealSubject | x509.Name, *,
              scheme: SignatureScheme | None = None,
              digest: DigestAlgorithm | None = None) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for the handle's key, signed through the key store."""
    try:
        name = subject if isinstance(subject, x509.Name) else subject.to_name()
        alt_names = [] if isinstance(subject, x509.Name) else subject.alt_names()
    except ValueError as e:
        raise InvalidInput(f"invalid certificate subject: {e}", field="subject") from e
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    params = signing_params(handle, scheme, digest)
    throwaway = asn1_csr.CertificationRequest.load(sign_with_throwaway(builder, params))
    public_key = handle.public_key()
    info = throwaway["certification_request_info"].copy()
    info["subject_pk_info"] = asn1_keys.PublicKeyInfo.load(public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    der = resign(throwaway.dump(), handle, params, public_key, tbs=info.dump(force=True))
    return x509.load_der_x509_csr(der)


def check_chain_matches_key(chain_pem_or_der: bytes | str, public_key: PublicKeyTypes, *,
                            now: datetime | None = None) -> list[x509.Certificate]:
    """Parse an imported chain and check it belongs to ``public_key``.

    Accepts a PEM bundle, one DER certificate or a PKCS#7 certs-only bundle,
    in any order. Returns the chain leaf first; raises :class:`InvalidInput`
    naming the problem otherwise.
    """
    certs = _load_certificates(chain_pem_or_der)
    spki = spki_der(public_key)
    leaves = [c for c in certs if spki_der(c.public_key()) == spki]
    if not leaves:
        raise InvalidInput("no certificate in the chain is for this key", field="chain")
    leaf = leaves[0]
    _check_leaf_usage(leaf)
    if now is not None and not (leaf.not_valid_before_utc <= as_utc(now, "now")
                                <= leaf.not_valid_after_utc):
        raise InvalidInput(f"certificate {_describe(leaf)} is not valid now", field="chain")
    chain = [leaf]
    rest = [c for c in certs if c is not leaf and c != leaf]
    while rest:
        current = chain[-1]
        if current.issuer == current.subject:
            break
        issuer = next((c for c in rest if _issued_by(current, c)), None)
        if issuer is None:
            break
        _check_ca(issuer)
        chain.append(issuer)
        rest = [c for c in rest if c != issuer]
    if rest:
        raise InvalidInput(f"certificate {_describe(rest[0])} is not an issuer in the chain "
                           f"of {_describe(leaf)}", field="chain")
    return chain


# --------------------------------------------------------------------------- helpers


def _name(*, common_name: str, organization: str, country: str | None,
          org_id: str | None = None) -> x509.Name:
    attrs: list[x509.NameAttribute[str]] = []
    if country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    for label, value in (("organization", organization), ("common name", common_name)):
        if not value or not value.strip():
            raise InvalidInput(f"the {label} must not be empty", field="subject")
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if org_id is not None:
        if not org_id.strip():
            raise InvalidInput("the organization identifier must not be empty",
                               field="subject")
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, org_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    try:
        return x509.Name(attrs)
    except ValueError as e:
        raise InvalidInput(f"invalid certificate subject: {e}", field="subject") from e


def _start(now: datetime) -> datetime:
    return as_utc(now, "now").replace(microsecond=0)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def _base_builder(subject: x509.Name, issuer: x509.Name, public_key: PublicKeyTypes,
                  serial: int | None, not_before: datetime,
                  not_after: datetime) -> x509.CertificateBuilder:
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InvalidInput("only EC and RSA subject keys are supported", field="public_key")
    if serial is not None and not 0 < serial < 1 << 159:
        raise InvalidInput("a serial number is a positive integer of at most 159 bits",
                           field="serial")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(new_serial() if serial is None else serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _issued_builder(issuer_cert: x509.Certificate, subject: x509.Name,
                    public_key: PublicKeyTypes, serial: int | None, not_before: datetime,
                    not_after: datetime) -> x509.CertificateBuilder:
    not_after = min(not_after, issuer_cert.not_valid_after_utc)
    return (
        _base_builder(subject, issuer_cert.subject, public_key, serial, not_before, not_after)
        .add_extension(authority_key_identifier(issuer_cert), critical=False)
    )




def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=False, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False)


def _ee_key_usage(*, non_repudiation: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=non_repudiation,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                         decipher_only=False)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
        crl_issuer=None)])


def _aia(ocsp_url: str | None, ca_issuers_url: str | None) -> x509.AuthorityInformationAccess:
    descriptions = []
    if ocsp_url:
        descriptions.append(x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)))
    if ca_issuers_url:
        descriptions.append(x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(ca_issuers_url)))
    return x509.AuthorityInformationAccess(descriptions)


def _add_revocation_info(builder: x509.CertificateBuilder,
                         urls: PkiUrls) -> x509.CertificateBuilder:
    return (builder.add_extension(_crl_dp(urls.crl_url), critical=False)
            .add_extension(_aia(urls.ocsp_url, urls.ca_issuers_url), critical=False))


def _finish(builder: x509.CertificateBuilder, handle: KeyHandle, params: SigningParams,
            issuer_public_key: PublicKeyTypes) -> x509.Certificate:
    der = resign(sign_with_throwaway(builder, params), handle, params, issuer_public_key)
    return x509.load_der_x509_certificate(der)




def _load_certificates(data: bytes | str) -> list[x509.Certificate]:
    raw = data.encode() if isinstance(data, str) else data
    try:
        if b"-----BEGIN PKCS7-----" in raw:
            certs = pkcs7.load_pem_pkcs7_certificates(raw)
        elif b"-----BEGIN" in raw:
            certs = x509.load_pem_x509_certificates(raw)
        else:
            try:
                certs = [x509.load_der_x509_certificate(raw)]
            except ValueError:
                certs = pkcs7.load_der_pkcs7_certificates(raw)
    except ValueError as e:
        raise InvalidInput("the certificate chain is neither PEM, DER nor PKCS#7",
                           field="chain") from e
    if not certs:
        raise InvalidInput("the certificate chain is empty", field="chain")
    return list(certs)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_leaf_usage(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as e:
        raise InvalidInput(f"certificate {_describe(leaf)} has no key usage extension",
                           field="chain") from e
    if not (usage.digital_signature or usage.content_commitment):
        raise InvalidInput(f"certificate {_describe(leaf)} is not for signing (key usage "
                           "lacks digitalSignature and nonRepudiation)", field="chain")


def _check_ca(cert: x509.Certificate) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise InvalidInput(f"certificate {_describe(cert)} is not a CA certificate",
                           field="chain")


def _describe(cert: x509.Certificate) -> str:
    return repr(cert.subject.rfc4514_string())

