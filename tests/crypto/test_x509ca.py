"""CA hierarchy, seal certificates, CSR and imported chains (x509ca)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    SignatureAlgorithmOID,
)
from pki_fixtures import (
    CONFIG,
    NOW,
    ORG_SEAL,
    PERSON,
    PROFILES,
    URLS,
    Pki,
    build_test_pki,
    new_handle,
    openssl,
    pem,
    write,
)
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathValidationError

from sealkeeper.crypto import crl, signing, x509ca
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, KeyStore, SignatureScheme
from sealkeeper.errors import CryptoError, InvalidInput


@pytest.fixture(scope="module", params=PROFILES)
def pki(request: pytest.FixtureRequest) -> Pki:
    return build_test_pki(request.param)


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(cls)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# ------------------------------------------------------------------------ hierarchy


def test_openssl_verifies_every_certificate(pki: Pki, tmp_path: Path) -> None:
    root = write(tmp_path / "root.pem", pem(pki.root))
    issuing = write(tmp_path / "issuing.pem", pem(pki.issuing))
    assert "OK" in openssl("verify", "-CAfile", root, root).stdout
    for name in ("issuing", "ocsp", "tsa", "org_seal", "personal"):
        leaf = write(tmp_path / f"{name}.pem", pem(getattr(pki, name)))
        out = openssl("verify", "-x509_strict", "-CAfile", root, "-untrusted", issuing, leaf)
        assert out.stdout.strip().endswith(": OK"), out.stdout


def test_cryptography_verifies_the_chain(pki: Pki) -> None:
    pki.root.verify_directly_issued_by(pki.root)
    pki.issuing.verify_directly_issued_by(pki.root)
    for cert in (pki.ocsp, pki.tsa, pki.org_seal, pki.personal):
        cert.verify_directly_issued_by(pki.issuing)


def test_signature_algorithm_follows_the_issuer_scheme(pki: Pki) -> None:
    for cert in (pki.root, pki.issuing, pki.org_seal):
        if pki.scheme is SignatureScheme.RSA_PSS:
            assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
            params = cert.signature_algorithm_parameters
            assert isinstance(params, padding.PSS)
        elif pki.scheme is SignatureScheme.RSA_PKCS1V15:
            assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
        else:
            assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256


def test_asn1_algorithm_identifier_matches_cryptography(pki: Pki) -> None:
    """OCSP and TSA (built with asn1crypto) use the same encoding as the certificates."""
    params = signing.signing_params(pki.issuing_handle, pki.scheme)
    from_cert = asn1_x509.Certificate.load(_der(pki.org_seal))["signature_algorithm"].dump()
    assert signing.signature_algorithm_identifier(params).dump() == from_cert


def test_root_extensions(pki: Pki) -> None:
    root = pki.root
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "sealkeeper Root CA"
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "sealkeeper"
    bc = _ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    ku = _ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    _ext(root, x509.SubjectKeyIdentifier)
    assert root.not_valid_after_utc - root.not_valid_before_utc >= timedelta(days=20 * 365)


def test_intermediate_extensions(pki: Pki) -> None:
    cert = pki.issuing
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == \
        _ext(pki.root, x509.SubjectKeyIdentifier).value.digest
    dp = _ext(cert, x509.CRLDistributionPoints).value[0]
    assert dp.full_name == [x509.UniformResourceIdentifier(URLS.root_crl_url)]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "sealkeeper Issuing CA"
    years = cert.not_valid_after_utc.year - cert.not_valid_before_utc.year
    assert years == 10


def test_ocsp_responder_extensions(pki: Pki) -> None:
    cert = pki.ocsp
    assert cert.issuer == pki.issuing.subject
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    _ext(cert, x509.OCSPNoCheck)
    ku = _ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and not ku.content_commitment and not ku.key_cert_sign
    assert not _ext(cert, x509.BasicConstraints).value.ca


def test_tsa_extensions(pki: Pki) -> None:
    eku = _ext(pki.tsa, x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ku = _ext(pki.tsa, x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment


def test_organization_seal_certificate(pki: Pki) -> None:
    cert = pki.org_seal
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Ltd"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == \
        "NTRFI-1234567-8"
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "Example Ltd Contract Seal"
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "FI"
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.ExtendedKeyUsage)
    dp = _ext(cert, x509.CRLDistributionPoints).value[0]
    assert dp.full_name == [x509.UniformResourceIdentifier(URLS.crl_url)]
    aia = {d.access_method: d.access_location.value
           for d in _ext(cert, x509.AuthorityInformationAccess).value}
    assert aia == {AuthorityInformationAccessOID.OCSP: URLS.ocsp_url,
                   AuthorityInformationAccessOID.CA_ISSUERS: URLS.ca_issuers_url}
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == \
        _ext(pki.issuing, x509.SubjectKeyIdentifier).value.digest
    _ext(cert, x509.SubjectKeyIdentifier)
    assert 0 < cert.serial_number < 2**159


def test_personal_signature_certificate(pki: Pki) -> None:
    cert = pki.personal
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Alice Example"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "Example Ltd"
    assert not cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [x509ca.ID_KP_DOCUMENT_SIGNING]
    policies = _ext(cert, x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.3.6.1.4.1.99999.1.1"]


def test_new_serial_is_positive_and_at_most_159_bits() -> None:
    serials = {x509ca.new_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(0 < s < 2**159 for s in serials)


def test_seal_validity_is_clamped_to_the_issuer() -> None:
    pki = build_test_pki("ec")
    key = new_handle(KeyAlgorithm.EC_P256).public_key()
    cert = x509ca.issue_seal_certificate(
        pki.issuing_handle, pki.issuing, key, subject=ORG_SEAL, serial=7, not_before=NOW,
        not_after=NOW + timedelta(days=365 * 40), urls=URLS)
    assert cert.not_valid_after_utc == pki.issuing.not_valid_after_utc


@pytest.mark.parametrize("kwargs, message", [
    ({"not_after": NOW}, "validity period"),
    ({"serial": 0}, "serial number"),
    ({"serial": 1 << 159}, "serial number"),
    ({"not_before": NOW.replace(tzinfo=None)}, "timezone-aware"),
    ({"subject": x509ca.OrganizationSeal("Example", "NTRFI-1", "Seal", country="FIN")},
     "subject"),
    ({"subject": x509ca.OrganizationSeal("", "NTRFI-1", "Seal")}, "organization"),
    ({"subject": x509ca.OrganizationSeal("Example", " ", "Seal")}, "identifier"),
    ({"subject": x509ca.PersonalSignature("A" * 65, "a@example.com", "Example")}, "subject"),
])
def test_seal_certificate_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    pki = build_test_pki("ec")
    args: dict[str, object] = {"subject": ORG_SEAL, "serial": 9, "not_before": NOW,
                               "not_after": NOW + timedelta(days=30), "urls": URLS}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=message):
        x509ca.issue_seal_certificate(pki.issuing_handle, pki.issuing,
                                      pki.org_seal.public_key(), **args)  # type: ignore[arg-type]


def test_a_handle_that_does_not_match_the_issuer_is_refused() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(CryptoError, match="does not verify"):
        x509ca.issue_ocsp_responder(pki.root_handle, pki.issuing, pki.ocsp.public_key(),
                                    CONFIG, NOW)


def test_scheme_must_fit_the_key() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(CryptoError):
        x509ca.signing_params(pki.root_handle, SignatureScheme.RSA_PSS)


def test_p384_issuer_signs_with_sha384() -> None:
    handle = new_handle(KeyAlgorithm.EC_P384)
    root = x509ca.issue_root(handle, x509ca.CaConfig(), NOW)
    assert root.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    root.verify_directly_issued_by(root)


# ------------------------------------------------------------------------ pyHanko


def _validation_context(pki: Pki, revoked: list[crl.RevokedEntry]) -> ValidationContext:
    later = NOW + timedelta(days=7)
    root_crl = crl.build_crl(pki.root_handle, pki.root, [], 1, NOW, later, scheme=pki.scheme)
    issuing_crl = crl.build_crl(pki.issuing_handle, pki.issuing, revoked, 1, NOW, later,
                                scheme=pki.scheme)
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(_der(pki.root))],
        other_certs=[asn1_x509.Certificate.load(_der(pki.issuing))],
        crls=[root_crl, issuing_crl], allow_fetching=False, revocation_mode="hard-fail",
        moment=NOW + timedelta(hours=1))


def _validate(pki: Pki, cert: x509.Certificate, context: ValidationContext) -> None:
    validator = CertificateValidator(asn1_x509.Certificate.load(_der(cert)),
                                     validation_context=context)
    asyncio.run(validator.async_validate_usage({"non_repudiation"}))  # type: ignore[no-untyped-call]


def test_pyhanko_validates_seal_certificates_for_non_repudiation(pki: Pki) -> None:
    context = _validation_context(pki, [])
    _validate(pki, pki.org_seal, context)
    _validate(pki, pki.personal, context)


def test_pyhanko_refuses_a_revoked_seal_certificate() -> None:
    pki = build_test_pki("ec")
    context = _validation_context(pki, [crl.RevokedEntry(
        pki.org_seal.serial_number, NOW, x509.ReasonFlags.key_compromise)])
    with pytest.raises(PathValidationError, match="revoked"):
        _validate(pki, pki.org_seal, context)
    _validate(pki, pki.personal, context)


# ------------------------------------------------------------------------ CSR


@pytest.mark.parametrize("profile", PROFILES)
def test_csr_is_signed_through_the_key_store(profile: str, tmp_path: Path) -> None:
    pki = build_test_pki(profile)
    handle = pki.personal_handle if profile != "ec" else pki.org_seal_handle
    scheme = pki.scheme if profile != "ec" else None
    csr = x509ca.build_csr(handle, PERSON, scheme=scheme)
    assert csr.is_signature_valid
    assert csr.public_key() == handle.public_key()
    assert csr.subject == PERSON.to_name()
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [PERSON.email]
    path = write(tmp_path / "req.pem", csr.public_bytes(serialization.Encoding.PEM))
    out = openssl("req", "-in", path, "-verify", "-noout")
    assert "verify OK" in out.stdout


def test_csr_for_an_organization_seal_with_a_plain_name() -> None:
    pki = build_test_pki("rsa")
    csr = x509ca.build_csr(pki.org_seal_handle, ORG_SEAL.to_name())
    assert csr.is_signature_valid and csr.subject == ORG_SEAL.to_name()


# ------------------------------------------------------------------------ imported chains


def test_chain_in_any_order_is_returned_leaf_first(pki: Pki) -> None:
    certs = [pki.root, pki.org_seal, pki.issuing]
    random.shuffle(certs)
    chain = x509ca.check_chain_matches_key(pem(*certs), pki.org_seal.public_key(), now=NOW)
    assert chain == [pki.org_seal, pki.issuing, pki.root]
    as_text = pem(pki.org_seal, pki.issuing).decode()
    assert x509ca.check_chain_matches_key(as_text, pki.org_seal.public_key()) == \
        [pki.org_seal, pki.issuing]


def test_chain_as_der_and_pkcs7() -> None:
    pki = build_test_pki("ec")
    key = pki.org_seal.public_key()
    assert x509ca.check_chain_matches_key(_der(pki.org_seal), key) == [pki.org_seal]
    bundle = pkcs7.serialize_certificates([pki.issuing, pki.org_seal], serialization.Encoding.DER)
    assert x509ca.check_chain_matches_key(bundle, key) == [pki.org_seal, pki.issuing]


def test_chain_for_another_key_is_refused() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(InvalidInput, match="no certificate in the chain is for this key"):
        x509ca.check_chain_matches_key(pem(pki.org_seal, pki.issuing, pki.root),
                                       pki.personal.public_key())


def test_chain_with_a_foreign_certificate_is_refused() -> None:
    ec_pki, rsa_pki = build_test_pki("ec"), build_test_pki("rsa")
    with pytest.raises(InvalidInput, match="is not an issuer in the chain"):
        x509ca.check_chain_matches_key(pem(ec_pki.org_seal, rsa_pki.issuing),
                                       ec_pki.org_seal.public_key())


def test_chain_whose_leaf_cannot_sign_is_refused() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(InvalidInput, match="not for signing"):
        x509ca.check_chain_matches_key(pem(pki.issuing, pki.root), pki.issuing.public_key())


def test_expired_leaf_is_refused() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(InvalidInput, match="not valid now"):
        x509ca.check_chain_matches_key(pem(pki.org_seal), pki.org_seal.public_key(),
                                       now=NOW + timedelta(days=3650))


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                  b"-----END CERTIFICATE-----\n", "not a chain"])
def test_garbage_chain_is_refused(data: bytes | str) -> None:
    pki = build_test_pki("ec")
    with pytest.raises(InvalidInput):
        x509ca.check_chain_matches_key(data, pki.org_seal.public_key())


# ------------------------------------------------------------------------ PKCS#11


@pytest.mark.hsm
@pytest.mark.parametrize("algorithm, scheme", [
    (KeyAlgorithm.EC_P256, SignatureScheme.ECDSA),
    (KeyAlgorithm.RSA_2048, SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA_2048, SignatureScheme.RSA_PSS),
])
def test_hsm_keys_run_the_whole_pki(pkcs11_store: KeyStore, algorithm: KeyAlgorithm,
                                    scheme: SignatureScheme, tmp_path: Path) -> None:
    """The re-sign path with keys we never hold: certificates, CRL, OCSP, TSA."""
    from sealkeeper.crypto import ocsp, tsa

    def handle(label: str) -> KeyHandle:
        generated = pkcs11_store.generate(algorithm, label=f"pki-{label}")
        return KeyHandle(pkcs11_store, generated.key_ref, algorithm)

    root_h, iss_h, ocsp_h, tsa_h = handle("root"), handle("issuing"), handle("ocsp"), \
        handle("tsa")
    root = x509ca.issue_root(root_h, CONFIG, NOW, scheme=scheme)
    issuing = x509ca.issue_intermediate(root_h, root, iss_h.public_key(), CONFIG, NOW,
                                        urls=URLS, scheme=scheme)
    responder = x509ca.issue_ocsp_responder(iss_h, issuing, ocsp_h.public_key(), CONFIG, NOW,
                                            scheme=scheme)
    tsa_cert = x509ca.issue_tsa(iss_h, issuing, tsa_h.public_key(), CONFIG, NOW, scheme=scheme)
    seal = x509ca.issue_seal_certificate(
        iss_h, issuing, ocsp_h.public_key(), subject=ORG_SEAL, serial=x509ca.new_serial(),
        not_before=NOW, not_after=NOW + timedelta(days=30), urls=URLS, scheme=scheme)
    root_pem = write(tmp_path / "root.pem", pem(root))
    issuing_pem = write(tmp_path / "issuing.pem", pem(issuing))
    for cert in (responder, tsa_cert, seal):
        openssl("verify", "-CAfile", root_pem, "-untrusted", issuing_pem,
                write(tmp_path / "leaf.pem", pem(cert)))
    crl_der = crl.build_crl(iss_h, issuing, [crl.RevokedEntry(seal.serial_number, NOW)], 1,
                            NOW, NOW + timedelta(days=1), scheme=scheme)
    assert x509.load_der_x509_crl(crl_der).is_signature_valid(
        issuing.public_key())  # type: ignore[arg-type]
    openssl("ocsp", "-issuer", issuing_pem, "-serial", hex(seal.serial_number), "-reqout",
            tmp_path / "req.der")
    request = ocsp.parse_request((tmp_path / "req.der").read_bytes())
    write(tmp_path / "resp.der", ocsp.build_response(
        ocsp_h, responder, issuing, request, lambda _s: ocsp.CertStatusInfo.revoked(NOW), NOW,
        60, scheme=scheme))
    out = openssl("ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der",
                  "-CAfile", root_pem, "-verify_other", issuing_pem).stdout
    assert "Response verify OK" in out
    authority = tsa.TimeStampAuthority(tsa_h, tsa_cert, [issuing], "1.3.6.1.4.1.99999.2.1",
                                       scheme=scheme)
    token = write(tmp_path / "token.der", authority.stamp(Hashed.of(b"doc"), NOW, 1))
    out = openssl("cms", "-verify", "-inform", "DER", "-in", token, "-CAfile", root_pem,
                  "-purpose", "timestampsign", "-out", tmp_path / "tst.der").stdout
    assert "Verification successful" in out
