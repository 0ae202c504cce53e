"""A test PKI served over local HTTP, and signed documents, for the verify tests.

The same approach as ``tests/client/test_client_pades.py``: root, issuing CA,
OCSP responder and TSA issued with the real ``x509ca`` module, their URLs
pointing at a local HTTP server that answers CRL, OCSP, CA-certificate and
RFC 3161 requests with our own ``crl``, ``ocsp`` and ``tsa`` modules. The
remote signer is the real ``CmsTemplate`` with a software key store key.
``revoke`` marks a certificate revoked from now on (CRL and OCSP both say so).
The PDF generators of ``tests/client/pdfs.py`` are re-exported from here.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sealkeeper.client.cades import sign_files
from sealkeeper.client.pades import Level, sign_pdfs
from sealkeeper.crypto import x509ca
from sealkeeper.crypto.cms import CmsTemplate, timestamp_attribute
from sealkeeper.crypto.crl import RevokedEntry, build_crl
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, SignatureScheme
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from sealkeeper.crypto.ocsp import CertStatusInfo, build_response, decode_get_path, parse_request
from sealkeeper.crypto.tsa import TimeStampAuthority

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from pdfs import fuzzed_pdfs, make_pdf, malformed_pdfs

__all__ = ["LocalPki", "Remote", "Seal", "build_pki", "fuzzed_pdfs", "make_pdf", "malformed_pdfs",
           "serve_pki", "sign_p7s", "sign_pdf"]

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
DER = serialization.Encoding.DER


@dataclass
class Seal:
    handle: KeyHandle
    cert: x509.Certificate
    scheme: SignatureScheme


@dataclass
class LocalPki:
    base: str
    root_handle: KeyHandle
    root: x509.Certificate
    issuing_handle: KeyHandle
    issuing: x509.Certificate
    ocsp_handle: KeyHandle
    ocsp: x509.Certificate
    tsa: TimeStampAuthority
    urls: x509ca.PkiUrls
    store: SoftwareKeyStore
    revoked: dict[int, datetime] = field(default_factory=dict)
    serial: int = 1000
    down: bool = False

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    @property
    def tsa_url(self) -> str:
        return f"{self.base}/tsa"

    @property
    def root_der(self) -> bytes:
        return self.root.public_bytes(DER)

    def new_seal(self, *, personal: bool = False) -> Seal:
        """A fresh seal certificate (so that revoking it affects no other test)."""
        algorithm = KeyAlgorithm.RSA_2048 if personal else KeyAlgorithm.EC_P256
        handle = KeyHandle(self.store, self.store.generate(algorithm, label="t").key_ref,
                           algorithm)
        subject: x509ca.SealSubject = (
            x509ca.PersonalSignature(name="Alice Example", email="alice@example.com",
                                     organization="Example Ltd") if personal else
            x509ca.OrganizationSeal(organization="Example Ltd",
                                    organization_identifier="NTRFI-1234567-8",
                                    seal_name="Example Ltd Contract Seal", country="FI"))
        cert = x509ca.issue_seal_certificate(
            self.issuing_handle, self.issuing, handle.public_key(), subject=subject,
            serial=x509ca.new_serial(), not_before=NOW, not_after=NOW + timedelta(days=365),
            urls=self.urls)
        scheme = SignatureScheme.RSA_PKCS1V15 if personal else SignatureScheme.ECDSA
        return Seal(handle, cert, scheme)

    def chain(self, seal: Seal) -> list[x509.Certificate]:
        return [seal.cert, self.issuing, self.root]

    def revoke(self, cert: x509.Certificate) -> None:
        """Revoked from now on (CRLs and OCSP carry whole seconds: keep a second
        between a signature's time-stamp and its revocation)."""
        self.revoked[cert.serial_number] = datetime.now(UTC)

    def crl(self) -> bytes:
        entries = [RevokedEntry(s, t) for s, t in sorted(self.revoked.items())]
        now = datetime.now(UTC)
        return build_crl(self.issuing_handle, self.issuing, entries, self.next_serial(),
                         now - timedelta(minutes=1), now + timedelta(days=1))

    def root_crl(self) -> bytes:
        now = datetime.now(UTC)
        return build_crl(self.root_handle, self.root, [], self.next_serial(),
                         now - timedelta(minutes=1), now + timedelta(days=1))

    def ocsp_response(self, der: bytes) -> bytes:
        def lookup(serial: int) -> CertStatusInfo:
            if serial in self.revoked:
                return CertStatusInfo.revoked(self.revoked[serial])
            return CertStatusInfo.good()

        return build_response(self.ocsp_handle, self.ocsp, self.issuing, parse_request(der),
                              lookup, datetime.now(UTC) - timedelta(seconds=30), 86400)


class _Handler(BaseHTTPRequestHandler):
    server: _PkiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        pki = self.server.pki
        if pki.down:
            self._send(b"down", "text/plain", 503)
        elif self.path == "/crl/issuing.crl":
            self._send(pki.crl(), "application/pkix-crl")
        elif self.path == "/crl/root.crl":
            self._send(pki.root_crl(), "application/pkix-crl")
        elif self.path == "/ca/issuing.crt":
            self._send(pki.issuing.public_bytes(DER), "application/pkix-cert")
        elif self.path == "/ca/root.crt":
            self._send(pki.root.public_bytes(DER), "application/pkix-cert")
        elif self.path.startswith("/ocsp/"):
            self._send(pki.ocsp_response(decode_get_path(self.path[len("/ocsp/"):])),
                       "application/ocsp-response")
        else:
            self._send(b"not found", "text/plain", 404)

    def do_POST(self) -> None:
        pki = self.server.pki
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if pki.down:
            self._send(b"down", "text/plain", 503)
        elif self.path == "/ocsp":
            self._send(pki.ocsp_response(body), "application/ocsp-response")
        elif self.path == "/tsa":
            self._send(pki.tsa.respond(body, datetime.now(UTC), pki.next_serial()),
                       "application/timestamp-reply")
        else:
            self._send(b"not found", "text/plain", 404)


class _PkiServer(ThreadingHTTPServer):
    pki: LocalPki


def build_pki(base: str) -> LocalPki:
    store = SoftwareKeyStore(bytes(range(32)))
    ec = KeyAlgorithm.EC_P256

    def handle() -> KeyHandle:
        return KeyHandle(store, store.generate(ec, label="t").key_ref, ec)

    config = x509ca.CaConfig(country="FI")
    urls = x509ca.PkiUrls(
        crl_url=f"{base}/crl/issuing.crl", ocsp_url=f"{base}/ocsp",
        ca_issuers_url=f"{base}/ca/issuing.crt", root_crl_url=f"{base}/crl/root.crl",
        root_ca_issuers_url=f"{base}/ca/root.crt")
    root_h, iss_h, ocsp_h, tsa_h = handle(), handle(), handle(), handle()
    root = x509ca.issue_root(root_h, config, NOW)
    issuing = x509ca.issue_intermediate(root_h, root, iss_h.public_key(), config, NOW,
                                        urls=urls)
    ocsp = x509ca.issue_ocsp_responder(iss_h, issuing, ocsp_h.public_key(), config, NOW)
    tsa_cert = x509ca.issue_tsa(iss_h, issuing, tsa_h.public_key(), config, NOW, urls=urls)
    tsa = TimeStampAuthority(tsa_h, tsa_cert, [issuing], "1.3.6.1.4.1.99999.2.1")
    return LocalPki(base, root_h, root, iss_h, issuing, ocsp_h, ocsp, tsa, urls, store)


@contextmanager
def serve_pki() -> Iterator[LocalPki]:
    server = _PkiServer(("127.0.0.1", 0), _Handler)
    server.pki = build_pki(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.pki
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Remote:
    """The server side, in-process: CmsTemplate + key store."""

    pki: LocalPki
    seal: Seal
    timestamp: bool = False
    pades: bool = True

    def __call__(self, items: list[tuple[str, Hashed]]) -> list[bytes]:
        tpl = CmsTemplate([self.seal.cert, self.pki.issuing], DigestAlgorithm.SHA256,
                          self.seal.scheme, pades=self.pades)
        out = []
        for _name, digest in items:
            attrs = tpl.signed_attributes(digest, datetime.now(UTC))
            signature = self.seal.handle.sign(tpl.to_be_signed_digest(attrs), self.seal.scheme)
            unsigned = None
            if self.timestamp:
                token = self.pki.tsa.stamp(Hashed.of(signature), datetime.now(UTC),
                                           self.pki.next_serial())
                unsigned = [timestamp_attribute(token)]
            out.append(tpl.assemble(attrs, signature, unsigned))
        return out


def sign_pdf(pki: LocalPki, seal: Seal, src: Path, level: Level, *,
             out: Path | None = None) -> Path:
    [res] = sign_pdfs([src], Remote(pki, seal, timestamp=level.signature_timestamp),
                      pki.chain(seal), level=level, tsa_url=pki.tsa_url,
                      outputs=[out] if out is not None else None)
    return Path(str(res.output))


def sign_p7s(pki: LocalPki, seal: Seal, src: Path, *, timestamp: bool = False) -> Path:
    sign_files([src], Remote(pki, seal, timestamp=timestamp, pades=False))
    return src.with_name(src.name + ".p7s")
