"""Section ``limit``: the physical limits every other figure is compared with.

* raw prehashed signatures per second on one core with ``cryptography`` for
  ECDSA P-256 (SHA-256), P-384 (SHA-384), RSA-2048 and RSA-3072 (PKCS#1 v1.5,
  SHA-256), and P-256 on as many threads as the machine has cores
  (``cryptography`` releases the GIL while OpenSSL signs);
* SHA-256 over an in-memory buffer (GB/s);
* one argon2id password check with the server's default parameters (the cost
  of an approval password in a request);
* a detached CMS SignedData from the pre-encoded template
  (:class:`sealkeeper.crypto.cms.CmsTemplate`) with and without the
  signature, and the naive asn1crypto construction for scale.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bench._common import Figure, Results, rate_runs, time_runs

SECTION = "limit"


def _signers() -> dict[str, Any]:
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    r2048 = rsa.generate_private_key(65537, 2048)
    r3072 = rsa.generate_private_key(65537, 3072)
    d256 = hashlib.sha256(b"document").digest()
    d384 = hashlib.sha384(b"document").digest()
    return {
        "ECDSA P-256": lambda: p256.sign(d256, ec.ECDSA(Prehashed(hashes.SHA256()))),
        "ECDSA P-384": lambda: p384.sign(d384, ec.ECDSA(Prehashed(hashes.SHA384()))),
        "RSA-2048": lambda: r2048.sign(d256, padding.PKCS1v15(), Prehashed(hashes.SHA256())),
        "RSA-3072": lambda: r3072.sign(d256, padding.PKCS1v15(), Prehashed(hashes.SHA256())),
    }


def _threaded_rate(fn: Any, threads: int, seconds: float) -> float:
    counts = [0] * threads
    stop = threading.Event()

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            for _ in range(32):
                fn()
            n += 32
        counts[i] = n

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def raw_p256_rate(seconds: float = 0.3) -> float:
    """A quick one-core P-256 rate (for sections run without ``limit``)."""
    return rate_runs(_signers()["ECDSA P-256"], 1, seconds)[0]


def run(results: Results, quick: bool) -> None:
    runs, seconds = (3, 0.15) if quick else (5, 0.5)
    cores = os.cpu_count() or 1
    signers = _signers()
    for name, fn in signers.items():
        results.add(Figure(SECTION, f"{name} sign, 1 core", "sig/s",
                           rate_runs(fn, runs, seconds),
                           note="raw cryptography sign over a prehashed digest, one thread"))
    if cores > 1:
        fn = signers["ECDSA P-256"]
        per_core = results.find(SECTION, "ECDSA P-256 sign, 1 core")
        results.add(Figure(
            SECTION, f"ECDSA P-256 sign, {cores} threads", "sig/s",
            [_threaded_rate(fn, cores, seconds) for _ in range(runs)],
            limit=per_core.median * cores if per_core else None,
            limit_name=f"{cores} x the one-core rate",
            note="cryptography releases the GIL while signing"))

    buf = os.urandom(64 << 20)
    gbs = []
    for _ in range(runs):
        start = time.perf_counter()
        hashlib.sha256(buf).digest()
        gbs.append(len(buf) / (time.perf_counter() - start) / 1e9)
    del buf
    results.add(Figure(SECTION, "SHA-256 over a 64 MB buffer", "GB/s", gbs))

    from sealkeeper.crypto.secrets import PasswordHashing

    ph = PasswordHashing()  # the server's defaults: m=64 MiB, t=3, p=4
    stored = ph.hash("peppered-approval-password")
    ms = [t / 1000 for t in time_runs(lambda: ph.verify(stored, "peppered-approval-password"),
                                      2 if quick else 3, 0.3 if quick else 0.6)]
    results.add(Figure(SECTION, "argon2id check, default params (approval password)", "ms",
                       ms, note="m=64 MiB, t=3, p=4 (Settings defaults); uses every core"))

    _cms(results, runs, seconds, quick)


def _cms(results: Results, runs: int, seconds: float, quick: bool) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from bench.bench_cms import _cert, _naive_cms
    from sealkeeper.crypto.cms import CmsTemplate
    from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
    from sealkeeper.crypto.keystore.base import SignatureScheme

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("Bench Root", root_key, None, root_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("Bench P-256 seal", key, root, root_key, ca=False)
    tpl = CmsTemplate([leaf, root], DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    doc = Hashed.of(b"document bytes")

    def sign(h: Hashed) -> bytes:
        return key.sign(h.digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    attrs = tpl.signed_attributes(doc, now)
    signature = sign(tpl.to_be_signed_digest(attrs))

    def no_sign() -> bytes:
        a = tpl.signed_attributes(doc, now)
        tpl.to_be_signed_digest(a)
        return tpl.assemble(a, signature)

    results.add(Figure(SECTION, "CMS from template, without the signature", "µs",
                       time_runs(no_sign, runs, seconds),
                       note="signed attributes + their digest + assembly (P-256 chain of 2)"))
    results.add(Figure(SECTION, "CMS from template, P-256 signed", "µs",
                       time_runs(lambda: tpl.build(doc, now, sign), runs, seconds)))
    from asn1crypto import x509 as asn1_x509

    a_leaf = asn1_x509.Certificate.load(leaf.public_bytes(serialization.Encoding.DER))
    a_root = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))

    def naive() -> bytes:
        return _naive_cms(a_leaf, [a_root], doc.digest,
                          lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())),
                          {"algorithm": "sha256_ecdsa"})

    results.add(Figure(SECTION, "CMS built with asn1crypto per signature (naive)", "µs",
                       time_runs(naive, 2 if quick else 3, 0.3 if quick else 1.0),
                       note="what the template avoids; asn1crypto issue #249 makes some "
                            "signature lengths far slower"))
