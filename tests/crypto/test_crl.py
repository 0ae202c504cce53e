"""CRL building (crl.build_crl), checked with openssl and cryptography."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from pki_fixtures import NOW, PROFILES, Pki, build_test_pki, openssl, pem, write

from sealkeeper.crypto.crl import RevokedEntry, build_crl
from sealkeeper.errors import CryptoError, InvalidInput


@pytest.fixture(scope="module", params=PROFILES)
def pki(request: pytest.FixtureRequest) -> Pki:
    return build_test_pki(request.param)


def _crl(pki: Pki, entries: list[RevokedEntry], number: int = 7) -> bytes:
    return build_crl(pki.issuing_handle, pki.issuing, entries, number, NOW,
                     NOW + timedelta(days=1), scheme=pki.scheme)


def test_openssl_verifies_the_crl_and_lists_reasons(pki: Pki, tmp_path: Path) -> None:
    der = _crl(pki, [
        RevokedEntry(pki.personal.serial_number, NOW - timedelta(hours=1),
                     x509.ReasonFlags.key_compromise),
        RevokedEntry(0x1234, NOW, x509.ReasonFlags.cessation_of_operation),
        RevokedEntry(0x5678, NOW),
    ])
    path = write(tmp_path / "crl.der", der)
    ca = write(tmp_path / "ca.pem", pem(pki.issuing, pki.root))
    out = openssl("crl", "-in", path, "-inform", "DER", "-CAfile", ca, "-noout", "-text").stdout
    assert "verify OK" in out
    serial_hex = f"{pki.personal.serial_number:X}"
    serial_hex = "0" * (len(serial_hex) % 2) + serial_hex  # openssl prints whole octets
    assert f"Serial Number: {serial_hex}" in out
    assert "Key Compromise" in out
    assert "Cessation Of Operation" in out
    assert "X509v3 CRL Number: \n                7" in out
    assert "Version 2" in out


def test_crl_contents(pki: Pki) -> None:
    serial = pki.org_seal.serial_number
    crl = x509.load_der_x509_crl(_crl(pki, [
        RevokedEntry(serial, NOW, x509.ReasonFlags.superseded), RevokedEntry(99, NOW)], 42))
    assert crl.is_signature_valid(pki.issuing.public_key())  # type: ignore[arg-type]
    assert crl.issuer == pki.issuing.subject
    assert crl.last_update_utc == NOW and crl.next_update_utc == NOW + timedelta(days=1)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = pki.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.revocation_date_utc == NOW
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is \
        x509.ReasonFlags.superseded
    unspecified = crl.get_revoked_certificate_by_serial_number(99)
    assert unspecified is not None and len(unspecified.extensions) == 0


def test_empty_crl_of_the_root(tmp_path: Path) -> None:
    pki = build_test_pki("pss")
    der = build_crl(pki.root_handle, pki.root, [], 1, NOW, NOW + timedelta(days=30),
                    scheme=pki.scheme)
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 0 and crl.is_signature_valid(pki.root.public_key())  # type: ignore[arg-type]
    out = openssl("crl", "-in", write(tmp_path / "r.crl", der), "-inform", "DER", "-CAfile",
                  write(tmp_path / "root.pem", pem(pki.root)), "-noout")
    assert "verify OK" in out.stdout


@pytest.mark.parametrize("kwargs, message", [
    ({"next_update": NOW}, "nextUpdate"),
    ({"crl_number": -1}, "CRL number"),
    ({"crl_number": 2**159}, "CRL number"),
    ({"revoked": [RevokedEntry(0, NOW)]}, "serial"),
    ({"revoked": [RevokedEntry(5, NOW, x509.ReasonFlags.remove_from_crl)]}, "delta"),
    ({"this_update": NOW.replace(tzinfo=None)}, "timezone-aware"),
])
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    pki = build_test_pki("ec")
    args: dict[str, object] = {"revoked": [], "crl_number": 1, "this_update": NOW,
                               "next_update": NOW + timedelta(days=1)}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=message):
        build_crl(pki.issuing_handle, pki.issuing, **args)  # type: ignore[arg-type]


def test_wrong_issuer_key_is_refused() -> None:
    pki = build_test_pki("ec")
    with pytest.raises(CryptoError):
        build_crl(pki.root_handle, pki.issuing, [], 1, NOW, NOW + timedelta(days=1))
