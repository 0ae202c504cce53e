"""Micro-benchmark of the detached CMS builder (sealkeeper.crypto.cms).

Prints microseconds per CMS for:

* ``assemble`` alone (signature already computed),
* the template path without the signature (signed attributes + digest + assemble),
* sign + assemble with ECDSA P-256 (and RSA-2048 PKCS#1 v1.5 for scale),
* a naive construction of the same CMS with asn1crypto objects per signature.

Run: ``.venv/bin/python bench/bench_cms.py [--seconds 1.0]``. Figures only;
nothing here is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from sealkeeper.crypto.cms import CmsTemplate
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import SignatureScheme

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _cert(subject: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any,
          ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _measure(fn: Callable[[], object], seconds: float, runs: int = 5) -> float:
    """Median over ``runs`` batches of the µs per call."""
    n = 1
    while True:  # calibrate a batch to ~seconds / runs
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / runs / 4 or n >= 1 << 20:
            break
        n *= 2
    n = max(1, int(n * (seconds / runs) / max(elapsed, 1e-9)))
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(results)


def _naive_cms(signer: asn1_x509.Certificate, chain: list[asn1_x509.Certificate],
               message_digest: bytes, sign: Callable[[bytes], bytes],
               signature_algorithm: dict[str, Any]) -> bytes:
    """The same detached CMS built from asn1crypto objects, as per-signature code would."""
    signed_attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time",
                          "values": [cms.Time({"utc_time": core.UTCTime(NOW)})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [message_digest]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({
            "certs": [tsp.ESSCertIDv2({"cert_hash": hashlib.sha256(signer.dump()).digest()})],
        })]}),
    ])
    signature = sign(signed_attrs.dump())
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": signer.issuer, "serial_number": signer.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm(signature_algorithm),
        "signature": signature,
    })
    signed_data = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": {"content_type": "data"},
        "certificates": [signer, *chain],
        "signer_infos": [signer_info],
    })
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time budget per figure")
    args = ap.parse_args()
    budget: float = args.seconds

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("Bench Root", root_key, None, root_key, ca=True)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_leaf = _cert("Bench P-256 seal", ec_key, root, root_key, ca=False)
    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_leaf = _cert("Bench RSA seal", rsa_key, root, root_key, ca=False)

    sha = DigestAlgorithm.SHA256
    ec_tpl = CmsTemplate([ec_leaf, root], sha, SignatureScheme.ECDSA)
    rsa_tpl = CmsTemplate([rsa_leaf, root], sha, SignatureScheme.RSA_PKCS1V15)
    document = Hashed.of(b"document bytes" * 100)

    def ec_sign(h: Hashed) -> bytes:
        return ec_key.sign(h.digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    def rsa_sign(h: Hashed) -> bytes:
        return rsa_key.sign(h.digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    attrs = ec_tpl.signed_attributes(document, NOW)
    signature = ec_sign(ec_tpl.to_be_signed_digest(attrs))

    def template_no_sign() -> bytes:
        a = ec_tpl.signed_attributes(document, NOW)
        ec_tpl.to_be_signed_digest(a)
        return ec_tpl.assemble(a, signature)

    asn1_ec_leaf = asn1_x509.Certificate.load(ec_leaf.public_bytes(serialization.Encoding.DER))
    asn1_root = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))

    def naive_ec() -> bytes:
        return _naive_cms(
            asn1_ec_leaf, [asn1_root], document.digest,
            lambda data: ec_key.sign(data, ec.ECDSA(hashes.SHA256())),
            {"algorithm": "sha256_ecdsa"})

    def sign_only() -> bytes:
        return ec_sign(Hashed(sha, document.digest))

    rows: list[tuple[str, Callable[[], object], float]] = [
        ("assemble only (P-256 signature given)", lambda: ec_tpl.assemble(attrs, signature),
         budget),
        ("signed attrs + digest + assemble, no signing", template_no_sign, budget),
        ("ECDSA P-256 sign alone (Prehashed)", sign_only, budget),
        ("P-256: template sign + assemble", lambda: ec_tpl.build(document, NOW, ec_sign), budget),
        ("RSA-2048 PKCS#1: template sign + assemble",
         lambda: rsa_tpl.build(document, NOW, rsa_sign), budget),
        ("P-256: naive asn1crypto CMS per signature", naive_ec, max(budget, 2.0)),
    ]
    print(f"CMS SignedData, detached, {len(ec_tpl.certificates_der)} certificates, "
          f"{len(template_no_sign())} bytes (P-256)")
    for label, fn, seconds in rows:
        print(f"  {label:<48} {_measure(fn, seconds):>10.1f} µs per CMS")


if __name__ == "__main__":
    main()
