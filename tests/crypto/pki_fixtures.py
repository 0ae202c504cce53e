"""A declared test PKI (root, issuing CA, OCSP responder, TSA, seal certificates).

Built once per issuer profile with the real software key store and cached:
``ec`` (P-256), ``rsa`` (RSA-2048, PKCS#1 v1.5) and ``pss`` (RSA-2048, PSS).
Also small helpers to write PEM/DER files and run openssl.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sealkeeper.crypto import x509ca
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, SignatureScheme
from sealkeeper.crypto.keystore.software import SoftwareKeyStore

# openssl checks validity and OCSP/TSA times against the real clock, so the test
# PKI is issued "now"; every function under test still takes the time explicitly.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
URLS = x509ca.PkiUrls(
    crl_url="http://pki.example.test/crl/issuing.crl",
    ocsp_url="http://pki.example.test/ocsp",
    ca_issuers_url="http://pki.example.test/ca/issuing.crt",
    root_crl_url="http://pki.example.test/crl/root.crl",
    root_ca_issuers_url="http://pki.example.test/ca/root.crt",
)
CONFIG = x509ca.CaConfig(country="FI")
PROFILES = ("ec", "rsa", "pss")

_ALGORITHMS = {"ec": KeyAlgorithm.EC_P256, "rsa": KeyAlgorithm.RSA_2048,
               "pss": KeyAlgorithm.RSA_2048}
_SCHEMES = {"ec": SignatureScheme.ECDSA, "rsa": SignatureScheme.RSA_PKCS1V15,
            "pss": SignatureScheme.RSA_PSS}


@cache
def store() -> SoftwareKeyStore:
    return SoftwareKeyStore(os.urandom(32))


def new_handle(algorithm: KeyAlgorithm) -> KeyHandle:
    generated = store().generate(algorithm, label="test")
    return KeyHandle(store(), generated.key_ref, algorithm)


@dataclass(frozen=True)
class Pki:
    profile: str
    scheme: SignatureScheme
    root_handle: KeyHandle
    root: x509.Certificate
    issuing_handle: KeyHandle
    issuing: x509.Certificate
    ocsp_handle: KeyHandle
    ocsp: x509.Certificate
    tsa_handle: KeyHandle
    tsa: x509.Certificate
    org_seal_handle: KeyHandle
    org_seal: x509.Certificate
    personal_handle: KeyHandle
    personal: x509.Certificate


ORG_SEAL = x509ca.OrganizationSeal(organization="Example Ltd",
                                   organization_identifier="NTRFI-1234567-8",
                                   seal_name="Example Ltd Contract Seal", country="FI")
PERSON = x509ca.PersonalSignature(name="Alice Example", email="alice@example.com",
                                  organization="Example Ltd")


@cache
def build_test_pki(profile: str) -> Pki:
    algorithm, scheme = _ALGORITHMS[profile], _SCHEMES[profile]
    root_h, iss_h = new_handle(algorithm), new_handle(algorithm)
    root = x509ca.issue_root(root_h, CONFIG, NOW, scheme=scheme)
    issuing = x509ca.issue_intermediate(root_h, root, iss_h.public_key(), CONFIG, NOW,
                                        urls=URLS, scheme=scheme)
    ocsp_h, tsa_h = new_handle(algorithm), new_handle(algorithm)
    ocsp = x509ca.issue_ocsp_responder(iss_h, issuing, ocsp_h.public_key(), CONFIG, NOW,
                                       scheme=scheme)
    tsa = x509ca.issue_tsa(iss_h, issuing, tsa_h.public_key(), CONFIG, NOW, urls=URLS,
                           scheme=scheme)
    org_h, person_h = new_handle(KeyAlgorithm.EC_P256), new_handle(KeyAlgorithm.RSA_2048)
    end = NOW + timedelta(days=3 * 365)
    org_seal = x509ca.issue_seal_certificate(
        iss_h, issuing, org_h.public_key(), subject=ORG_SEAL, serial=x509ca.new_serial(),
        not_before=NOW, not_after=end, urls=URLS, scheme=scheme)
    personal = x509ca.issue_seal_certificate(
        iss_h, issuing, person_h.public_key(), subject=PERSON, serial=x509ca.new_serial(),
        not_before=NOW, not_after=end, urls=URLS, policies=["1.3.6.1.4.1.99999.1.1"],
        extended_key_usages=[x509ca.ID_KP_DOCUMENT_SIGNING], scheme=scheme)
    return Pki(profile, scheme, root_h, root, iss_h, issuing, ocsp_h, ocsp, tsa_h, tsa,
                   org_h, org_seal, person_h, personal)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run openssl; stdout and stderr are merged into ``.stdout``."""
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                            check=False)
    merged = subprocess.CompletedProcess(result.args, result.returncode,
                                         result.stdout + result.stderr, "")
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed:\n{merged.stdout}")
    return merged
