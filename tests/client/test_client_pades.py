"""Client-side PAdES signing around a server-built CMS, checked by independent validators.

A test PKI (root, issuing CA, OCSP responder, TSA, an EC P-256 seal and an
RSA-2048 personal certificate) is issued with URLs pointing at a local HTTP
server that answers CRL, OCSP, CA-certificate and RFC 3161 requests with our
own ``crl``, ``ocsp`` and ``tsa`` modules. The remote signer is the real
``CmsTemplate(pades=True)`` with a software key store key. Signed PDFs are
validated by pyHanko (B-LT / B-LTA from the DSS alone: no fetching,
revocation required), by poppler's ``pdfsig`` against an NSS database that
trusts our root, and by ``openssl cms -verify`` / ``openssl ts -verify`` on
the byte ranges extracted from the file without pyHanko.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pdfs import fuzzed_pdfs, make_encrypted_pdf, make_pdf, malformed_pdfs
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import (
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from sealkeeper.client import pades
from sealkeeper.client.pades import Level, RemoteSigner, prepare_pdf, sign_pdfs
from sealkeeper.crypto import x509ca
from sealkeeper.crypto.cms import CmsTemplate, timestamp_attribute
from sealkeeper.crypto.crl import RevokedEntry, build_crl
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, SignatureScheme
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from sealkeeper.crypto.ocsp import CertStatusInfo, build_response, decode_get_path, parse_request
from sealkeeper.crypto.tsa import TimeStampAuthority
from sealkeeper.errors import (
    ApprovalRefused,
    Conflict,
    CryptoError,
    InvalidInput,
    SealkeeperError,
)
from sealkeeper.seals.images import render_png

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
TSA_POLICY = "1.3.6.1.4.1.99999.2.1"

needs_poppler = pytest.mark.skipif(shutil.which("pdfsig") is None
                                   or shutil.which("certutil") is None
                                   or shutil.which("pdftoppm") is None,
                                   reason="poppler-utils / libnss3-tools not installed")


# --------------------------------------------------------------------------- test PKI + HTTP


@dataclass
class LocalPki:
    base: str
    store: SoftwareKeyStore
    root: x509.Certificate
    issuing_handle: KeyHandle
    issuing: x509.Certificate
    ocsp_handle: KeyHandle
    ocsp: x509.Certificate
    tsa: TimeStampAuthority
    tsa_cert: x509.Certificate
    seals: dict[str, tuple[KeyHandle, x509.Certificate, SignatureScheme]] = field(
        default_factory=dict)
    revoked: dict[int, datetime] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    serial: int = 1000

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    @property
    def tsa_url(self) -> str:
        return f"{self.base}/tsa"

    def chain(self, kind: str) -> list[x509.Certificate]:
        return [self.seals[kind][1], self.issuing, self.root]

    def crl(self) -> bytes:
        entries = [RevokedEntry(s, t) for s, t in sorted(self.revoked.items())]
        now = datetime.now(UTC)
        return build_crl(self.issuing_handle, self.issuing, entries, self.next_serial(),
                         now - timedelta(minutes=1), now + timedelta(days=1))

    def root_crl(self) -> bytes:
        now = datetime.now(UTC)
        return build_crl(self._root_handle, self.root, [], self.next_serial(),
                         now - timedelta(minutes=1), now + timedelta(days=1))

    def ocsp_response(self, der: bytes) -> bytes:
        request = parse_request(der)

        def lookup(serial: int) -> CertStatusInfo:
            if serial in self.revoked:
                return CertStatusInfo.revoked(self.revoked[serial])
            return CertStatusInfo.good()

        return build_response(self.ocsp_handle, self.ocsp, self.issuing, request, lookup,
                              datetime.now(UTC) - timedelta(seconds=30), 86400)

    _root_handle: Any = None


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
        pki.requests.append(f"GET {self.path}")
        der = serialization.Encoding.DER
        if self.path == "/crl/issuing.crl":
            self._send(pki.crl(), "application/pkix-crl")
        elif self.path == "/crl/root.crl":
            self._send(pki.root_crl(), "application/pkix-crl")
        elif self.path == "/ca/issuing.crt":
            self._send(pki.issuing.public_bytes(der), "application/pkix-cert")
        elif self.path == "/ca/root.crt":
            self._send(pki.root.public_bytes(der), "application/pkix-cert")
        elif self.path.startswith("/ocsp/"):
            self._send(pki.ocsp_response(decode_get_path(self.path[len("/ocsp/"):])),
                       "application/ocsp-response")
        else:
            self._send(b"not found", "text/plain", 404)

    def do_POST(self) -> None:
        pki = self.server.pki
        pki.requests.append(f"POST {self.path}")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/ocsp":
            self._send(pki.ocsp_response(body), "application/ocsp-response")
        elif self.path == "/tsa":
            self._send(pki.tsa.respond(body, datetime.now(UTC), pki.next_serial()),
                       "application/timestamp-reply")
        else:
            self._send(b"not found", "text/plain", 404)


class _PkiServer(ThreadingHTTPServer):
    pki: LocalPki


def _handle(store: SoftwareKeyStore, algorithm: KeyAlgorithm) -> KeyHandle:
    return KeyHandle(store, store.generate(algorithm, label="test").key_ref, algorithm)


def _build_pki(base: str) -> LocalPki:
    store = SoftwareKeyStore(bytes(range(32)))
    ec = KeyAlgorithm.EC_P256
    config = x509ca.CaConfig(country="FI")
    urls = x509ca.PkiUrls(
        crl_url=f"{base}/crl/issuing.crl", ocsp_url=f"{base}/ocsp",
        ca_issuers_url=f"{base}/ca/issuing.crt", root_crl_url=f"{base}/crl/root.crl",
        root_ca_issuers_url=f"{base}/ca/root.crt")
    root_h, iss_h, ocsp_h, tsa_h = (_handle(store, ec) for _ in range(4))
    root = x509ca.issue_root(root_h, config, NOW)
    issuing = x509ca.issue_intermediate(root_h, root, iss_h.public_key(), config, NOW,
                                        urls=urls)
    ocsp = x509ca.issue_ocsp_responder(iss_h, issuing, ocsp_h.public_key(), config, NOW)
    tsa_cert = x509ca.issue_tsa(iss_h, issuing, tsa_h.public_key(), config, NOW, urls=urls)
    tsa = TimeStampAuthority(tsa_h, tsa_cert, [issuing], TSA_POLICY)
    pki = LocalPki(base, store, root, iss_h, issuing, ocsp_h, ocsp, tsa, tsa_cert)
    pki._root_handle = root_h
    end = NOW + timedelta(days=365)
    seal_h = _handle(store, ec)
    seal = x509ca.issue_seal_certificate(
        iss_h, issuing, seal_h.public_key(),
        subject=x509ca.OrganizationSeal(organization="Example Ltd",
                                        organization_identifier="NTRFI-1234567-8",
                                        seal_name="Example Ltd Contract Seal", country="FI"),
        serial=x509ca.new_serial(), not_before=NOW, not_after=end, urls=urls)
    rsa_h = _handle(store, KeyAlgorithm.RSA_2048)
    personal = x509ca.issue_seal_certificate(
        iss_h, issuing, rsa_h.public_key(),
        subject=x509ca.PersonalSignature(name="Alice Example", email="alice@example.com",
                                         organization="Example Ltd"),
        serial=x509ca.new_serial(), not_before=NOW, not_after=end, urls=urls)
    pki.seals["ec"] = (seal_h, seal, SignatureScheme.ECDSA)
    pki.seals["rsa"] = (rsa_h, personal, SignatureScheme.RSA_PKCS1V15)
    return pki


@pytest.fixture(scope="module")
def pki() -> Iterator[LocalPki]:
    server = _PkiServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    server.pki = _build_pki(base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.pki
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Remote:
    """The server side, in-process: CmsTemplate + key store, counting calls."""

    pki: LocalPki
    kind: str = "ec"
    timestamp: bool = False
    calls: list[list[tuple[str, Hashed]]] = field(default_factory=list)
    tamper: bool = False

    def __call__(self, items: list[tuple[str, Hashed]]) -> list[bytes]:
        self.calls.append(list(items))
        handle, cert, scheme = self.pki.seals[self.kind]
        tpl = CmsTemplate([cert, self.pki.issuing], DigestAlgorithm.SHA256, scheme,
                          pades=True)
        out = []
        for _name, digest in items:
            if self.tamper:
                digest = Hashed.of(b"something else")
            attrs = tpl.signed_attributes(digest, datetime.now(UTC))
            signature = handle.sign(tpl.to_be_signed_digest(attrs), scheme)
            unsigned = None
            if self.timestamp:
                token = self.pki.tsa.stamp(Hashed.of(signature), datetime.now(UTC),
                                           self.pki.next_serial())
                unsigned = [timestamp_attribute(token)]
            out.append(tpl.assemble(attrs, signature, unsigned))
        return out


def remote_for(pki: LocalPki, level: Level, kind: str = "ec") -> Remote:
    return Remote(pki, kind, timestamp=level.signature_timestamp)


@pytest.fixture(scope="module")
def seal_png() -> bytes:
    return render_png("official", "Example Ltd", size=300)


# --------------------------------------------------------------------------- validators


@dataclass
class SigReport:
    field: str
    intact: bool
    valid: bool
    trusted: bool
    bottom_line: bool
    timestamp_ok: bool | None
    revoked: bool
    modification: str


def _contexts(reader: PdfFileReader, root: x509.Certificate, long_term: bool
              ) -> ValidationContext:
    root_der = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
    if long_term:
        dss = DocumentSecurityStore.read_dss(reader)
        return dss.as_validation_context({
            "trust_roots": [root_der], "allow_fetching": False, "revocation_mode": "require"})
    return ValidationContext(trust_roots=[root_der], allow_fetching=False)


def pyhanko_report(path: Path, root: x509.Certificate, *, long_term: bool = False
                   ) -> list[SigReport]:
    async def run() -> list[SigReport]:
        with path.open("rb") as f:
            reader = PdfFileReader(f)
            out = []
            for sig in reader.embedded_regular_signatures:
                vc = _contexts(reader, root, long_term)
                status = await async_validate_pdf_signature(sig, vc)
                ts = status.timestamp_validity
                out.append(SigReport(
                    sig.field_name, status.intact, status.valid, status.trusted,
                    status.bottom_line,
                    None if ts is None else bool(ts.intact and ts.valid and ts.trusted),
                    status.revoked, str(status.modification_level)))
            return out

    return asyncio.run(run())


def pyhanko_doc_timestamps_ok(path: Path, root: x509.Certificate) -> list[bool]:
    async def run() -> list[bool]:
        with path.open("rb") as f:
            reader = PdfFileReader(f)
            out = []
            for ts in reader.embedded_timestamp_signatures:
                vc = _contexts(reader, root, True)
                status = await async_validate_pdf_timestamp(ts, vc)
                out.append(bool(status.intact and status.valid and status.trusted))
            return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def nss_db(pki: LocalPki, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    if shutil.which("certutil") is None:
        return None
    d = tmp_path_factory.mktemp("nss")
    root_pem = d / "root.pem"
    root_pem.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{d}", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{d}", "-n", "root", "-t", "CT,C,C",
                    "-i", str(root_pem)], check=True, capture_output=True)
    return d


def pdfsig(path: Path, nss: Path) -> str:
    result = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


@dataclass
class Extracted:
    contents: bytes
    signed: bytes


def extract_signatures(path: Path) -> list[Extracted]:
    """Byte ranges and /Contents of every signature, found with a regex, not pyHanko."""
    data = path.read_bytes()
    out = []
    for m in re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data):
        a, b, c, d = (int(x) for x in m.groups())
        hole = data[a + b:c]
        assert hole[:1] == b"<" and hole[-1:] == b">"
        raw = bytes.fromhex(hole[1:-1].decode("ascii"))
        out.append(Extracted(raw[:_der_length(raw)], data[a:a + b] + data[c:c + d]))
    return out


def _der_length(raw: bytes) -> int:
    assert raw[0] == 0x30
    first = raw[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    return 2 + n + int.from_bytes(raw[2:2 + n], "big")


def openssl_verify(pki: LocalPki, tmp: Path, ex: Extracted, *, timestamp: bool = False
                   ) -> subprocess.CompletedProcess[str]:
    (tmp / "root.pem").write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    (tmp / "issuing.pem").write_bytes(pki.issuing.public_bytes(serialization.Encoding.PEM))
    (tmp / "sig.der").write_bytes(ex.contents)
    (tmp / "signed.bin").write_bytes(ex.signed)
    if timestamp:
        cmd = ["openssl", "ts", "-verify", "-data", str(tmp / "signed.bin"), "-in",
               str(tmp / "sig.der"), "-token_in", "-CAfile", str(tmp / "root.pem"),
               "-untrusted", str(tmp / "issuing.pem")]
    else:
        cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
               str(tmp / "sig.der"), "-content", str(tmp / "signed.bin"), "-CAfile",
               str(tmp / "root.pem"), "-purpose", "any", "-out", "/dev/null"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def red_pixels(path: Path, tmp: Path, box: tuple[float, float, float, float],
               page: int = 0) -> tuple[int, int]:
    """(red pixels inside the box, red pixels outside it) of a page rendered at 50 dpi."""
    prefix = tmp / "render"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", str(page + 1), "-l", str(page + 1),
                    "-singlefile", str(path), str(prefix)], check=True, capture_output=True)
    img = Image.open(f"{prefix}.png").convert("RGB")
    scale = 50 / 72
    x1, y1, x2, y2 = box
    height = img.height
    left, right = x1 * scale, x2 * scale
    top, bottom = height - y2 * scale, height - y1 * scale
    inside = outside = 0
    px = img.load()
    assert px is not None
    for y in range(img.height):
        for x in range(img.width):
            r, g, b = px[x, y]
            if r > 150 and g < 110 and b < 110:
                if left - 1 <= x <= right + 1 and top - 1 <= y <= bottom + 1:
                    inside += 1
                else:
                    outside += 1
    return inside, outside


def _write_pdf(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- tests: levels


BOX = (320.0, 80.0, 480.0, 240.0)


@needs_poppler
@pytest.mark.parametrize("level", list(Level))
def test_levels_validate_everywhere(pki: LocalPki, nss_db: Path, seal_png: bytes,
                                   tmp_path: Path, level: Level) -> None:
    src = _write_pdf(tmp_path / "contract.pdf", make_pdf(3))
    remote = remote_for(pki, level)
    [result] = sign_pdfs([src], remote, pki.chain("ec"), level=level, page=0, box=BOX,
                         stamp_png=seal_png, reason="Approved", location="Helsinki",
                         tsa_url=pki.tsa_url)
    out = Path(str(result.output))
    assert out == tmp_path / "contract-signed.pdf"
    assert len(remote.calls) == 1
    assert not list(tmp_path.glob("*.part"))

    # pyHanko; B-LT and B-LTA from the DSS alone, revocation required, no fetching
    [report] = pyhanko_report(out, pki.root, long_term=level.long_term)
    assert (report.intact, report.valid, report.trusted) == (True, True, True), report
    assert report.bottom_line and not report.revoked
    if level.signature_timestamp:
        assert report.timestamp_ok is True
    else:
        assert report.timestamp_ok is None
    doc_ts = pyhanko_doc_timestamps_ok(out, pki.root)
    assert doc_ts == ([True] if level is Level.B_LTA else [])

    with out.open("rb") as f:
        reader = PdfFileReader(f)
        has_dss = "/DSS" in reader.root
        sig = reader.embedded_regular_signatures[0]
        assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        assert sig.sig_object["/Reason"] == "Approved"
        assert sig.sig_object["/Location"] == "Helsinki"
        if level.long_term:
            dss = DocumentSecurityStore.read_dss(reader)
            assert dss.ocsps and dss.crls and len(list(dss.load_certs())) >= 3
    assert has_dss == level.long_term

    # poppler
    # (poppler does not validate RFC 3161 document time-stamps: "Unimplemented
    # Feature"; openssl ts and pyHanko check the B-LTA one)
    text = pdfsig(out, nss_db)
    first = text.split("Signature #2:")[0]
    assert first.count("Signature is Valid.") == 1, text
    assert first.count("Certificate is Trusted.") == 1, text
    assert "Signature Field Name: Seal1" in first
    assert text.count("Signature #") == 1 + (level is Level.B_LTA), text

    # openssl on the extracted CMS and byte ranges
    extracted = extract_signatures(out)
    assert len(extracted) == 1 + (level is Level.B_LTA)
    result_cms = openssl_verify(pki, tmp_path, extracted[0])
    assert result_cms.returncode == 0, result_cms.stdout + result_cms.stderr
    assert "Verification successful" in result_cms.stderr
    if level is Level.B_LTA:
        result_ts = openssl_verify(pki, tmp_path, extracted[1], timestamp=True)
        assert result_ts.returncode == 0, result_ts.stdout + result_ts.stderr
        assert "Verification: OK" in result_ts.stdout

    # the visible stamp: red seal pixels in the box and nowhere else
    inside, outside = red_pixels(out, tmp_path, BOX)
    assert inside > 300 and outside == 0, (inside, outside)


def test_rsa_seal_b_lt(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "rsa.pdf", make_pdf(1))
    [res] = sign_pdfs([src], remote_for(pki, Level.B_LT, "rsa"), pki.chain("rsa"),
                      level=Level.B_LT)
    [report] = pyhanko_report(Path(str(res.output)), pki.root, long_term=True)
    assert report.bottom_line and report.timestamp_ok, report
    result = openssl_verify(pki, tmp_path, extract_signatures(Path(str(res.output)))[0])
    assert result.returncode == 0, result.stderr


def test_client_adds_signature_timestamp_when_server_did_not(pki: LocalPki,
                                                             tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "t.pdf", make_pdf(1))
    remote = Remote(pki, timestamp=False)
    [res] = sign_pdfs([src], remote, pki.chain("ec"), level="B-T", tsa_url=pki.tsa_url)
    out = Path(str(res.output))
    [report] = pyhanko_report(out, pki.root)
    assert report.bottom_line and report.timestamp_ok is True, report
    result = openssl_verify(pki, tmp_path, extract_signatures(out)[0])
    assert result.returncode == 0, result.stderr


def test_b_t_without_timestamp_or_tsa_is_refused(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "t.pdf", make_pdf(1))
    with pytest.raises(CryptoError, match="time-stamp"):
        sign_pdfs([src], Remote(pki, timestamp=False), pki.chain("ec"), level=Level.B_T)
    assert not (tmp_path / "t-signed.pdf").exists()
    assert not list(tmp_path.glob("*.part"))


def test_b_lta_needs_a_tsa_url(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "t.pdf", make_pdf(1))
    remote = remote_for(pki, Level.B_LTA)
    with pytest.raises(InvalidInput, match="time-stamping authority"):
        sign_pdfs([src], remote, pki.chain("ec"), level=Level.B_LTA)
    assert remote.calls == []


# --------------------------------------------------------------------------- batches


def test_batch_is_one_remote_call_and_streams_to_files(pki: LocalPki, tmp_path: Path) -> None:
    files = [_write_pdf(tmp_path / f"doc{i}.pdf", make_pdf(i + 1, filler_kib=64 * i))
             for i in range(4)]
    outs = [tmp_path / "out" / f"signed{i}.pdf" for i in range(4)]
    outs[0].parent.mkdir()
    remote = remote_for(pki, Level.B_LT)
    stages: list[tuple[str, str]] = []
    results = sign_pdfs(files, remote, pki.chain("ec"), level=Level.B_LT, outputs=outs,
                        progress=lambda stage, name: stages.append((stage, name)))
    assert len(remote.calls) == 1
    assert [n for n, _ in remote.calls[0]] == [f.name for f in files]
    assert [r.output for r in results] == outs
    assert [s for s, _ in stages] == ["prepared"] * 4 + ["signed"] * 4
    for out, src in zip(outs, files, strict=True):
        assert out.read_bytes().startswith(src.read_bytes())  # incremental update
        [report] = pyhanko_report(out, pki.root, long_term=True)
        assert report.bottom_line, report
        assert out.stat().st_mode & 0o777 == src.stat().st_mode & 0o777  # umask, not 0600
    assert not list(tmp_path.rglob("*.part"))


def test_refused_approval_leaves_nothing_behind(pki: LocalPki, tmp_path: Path) -> None:
    files = [_write_pdf(tmp_path / f"d{i}.pdf", make_pdf(1)) for i in range(3)]

    def refuse(items: list[tuple[str, Hashed]]) -> list[bytes]:
        raise ApprovalRefused("wrong approval password")

    with pytest.raises(ApprovalRefused):
        sign_pdfs(files, refuse, pki.chain("ec"), level=Level.B_LT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d0.pdf", "d1.pdf", "d2.pdf"]


def test_bad_file_in_batch_stops_before_signing(pki: LocalPki, tmp_path: Path) -> None:
    good = _write_pdf(tmp_path / "good.pdf", make_pdf(1))
    bad = _write_pdf(tmp_path / "bad.pdf", b"%PDF-1.7\nnot really\n")
    remote = remote_for(pki, Level.B_B)
    with pytest.raises(InvalidInput, match=r"bad\.pdf"):
        sign_pdfs([good, bad], remote, pki.chain("ec"))
    assert remote.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pdf", "good.pdf"]


def test_wrong_signature_from_server_is_not_embedded(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "a.pdf", make_pdf(1))
    remote = Remote(pki, tamper=True)
    with pytest.raises(CryptoError, match="another document digest"):
        sign_pdfs([src], remote, pki.chain("ec"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf"]


def test_signature_by_other_certificate_is_refused(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "a.pdf", make_pdf(1))
    with pytest.raises(CryptoError, match="another certificate"):
        sign_pdfs([src], Remote(pki, kind="rsa"), pki.chain("ec"))


def test_sign_in_place_and_to_streams(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "same.pdf", make_pdf(2))
    [res] = sign_pdfs([src], remote_for(pki, Level.B_B), pki.chain("ec"), outputs=[src])
    assert res.output == src
    assert pyhanko_report(src, pki.root)[0].bottom_line

    prepared = prepare_pdf(io.BytesIO(make_pdf(1)), pki.chain("ec"), name="mem.pdf")
    [der] = remote_for(pki, Level.B_B)([(prepared.name, prepared.digest)])
    out = pades.finish_pdf(prepared, der)
    assert isinstance(out, io.BytesIO)
    path = _write_pdf(tmp_path / "mem.pdf", out.getvalue())
    assert pyhanko_report(path, pki.root)[0].bottom_line


# --------------------------------------------------------------------------- document changes


def test_one_changed_byte_breaks_integrity(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "x.pdf", make_pdf(2))
    [res] = sign_pdfs([src], remote_for(pki, Level.B_B), pki.chain("ec"))
    out = Path(str(res.output))
    data = bytearray(out.read_bytes())
    at = data.index(b"Sealkeeper test document")
    data[at] = ord("Z")
    tampered = _write_pdf(tmp_path / "tampered.pdf", bytes(data))
    [report] = pyhanko_report(tampered, pki.root)
    assert not report.intact and not report.bottom_line
    result = openssl_verify(pki, tmp_path, extract_signatures(tampered)[0])
    assert result.returncode != 0


@needs_poppler
def test_second_signature_leaves_first_valid(pki: LocalPki, nss_db: Path, seal_png: bytes,
                                             tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "two.pdf", make_pdf(2))
    [first] = sign_pdfs([src], remote_for(pki, Level.B_LT), pki.chain("ec"),
                        level=Level.B_LT, box=BOX, stamp_png=seal_png)
    first_out = Path(str(first.output))
    [second] = sign_pdfs([first_out], remote_for(pki, Level.B_T, "rsa"), pki.chain("rsa"),
                         level=Level.B_T, page=1, box=(50, 50, 200, 200),
                         stamp_png=seal_png, outputs=[tmp_path / "two-twice.pdf"])
    assert (first.field_name, second.field_name) == ("Seal1", "Seal2")
    reports = pyhanko_report(Path(str(second.output)), pki.root)
    assert [r.field for r in reports] == ["Seal1", "Seal2"]
    assert all(r.bottom_line for r in reports), reports
    text = pdfsig(Path(str(second.output)), nss_db)
    assert text.count("Signature is Valid.") == 2, text
    assert text.count("Certificate is Trusted.") == 2, text


def test_b_lt_stays_valid_after_revocation(pki: LocalPki, tmp_path: Path) -> None:
    _h, cert, _s = pki.seals["rsa"]
    src = _write_pdf(tmp_path / "r.pdf", make_pdf(1))
    [res] = sign_pdfs([src], remote_for(pki, Level.B_LT, "rsa"), pki.chain("rsa"),
                      level=Level.B_LT)
    out = Path(str(res.output))
    pki.revoked[cert.serial_number] = datetime.now(UTC)
    try:
        [report] = pyhanko_report(out, pki.root, long_term=True)
        assert report.bottom_line and not report.revoked, report
        # signing again now fails: the client will not embed a revoked certificate's data
        src2 = _write_pdf(tmp_path / "r2.pdf", make_pdf(1))
        with pytest.raises(CryptoError, match="validation data"):
            sign_pdfs([src2], remote_for(pki, Level.B_LT, "rsa"), pki.chain("rsa"),
                      level=Level.B_LT)
        assert not (tmp_path / "r2-signed.pdf").exists()
    finally:
        del pki.revoked[cert.serial_number]


# --------------------------------------------------------------------------- fields and pages


@needs_poppler
def test_existing_empty_field_gets_the_stamp(pki: LocalPki, nss_db: Path, seal_png: bytes,
                                             tmp_path: Path) -> None:
    rect = (300, 400, 500, 600)
    src = _write_pdf(tmp_path / "form.pdf", make_pdf(2, sig_field="Approval",
                                                     field_rect=rect, field_page=1))
    [res] = sign_pdfs([src], remote_for(pki, Level.B_B), pki.chain("ec"),
                      field_name="Approval", stamp_png=seal_png)
    out = Path(str(res.output))
    assert res.field_name == "Approval"
    [report] = pyhanko_report(out, pki.root)
    assert report.field == "Approval" and report.bottom_line
    inside, outside = red_pixels(out, tmp_path, tuple(map(float, rect)), page=1)  # type: ignore[arg-type]
    assert inside > 300 and outside == 0
    assert "Signature is Valid." in pdfsig(out, nss_db)

    # the same field again: already signed
    with pytest.raises(Conflict, match="already signed"):
        sign_pdfs([out], remote_for(pki, Level.B_B), pki.chain("ec"),
                  field_name="Approval", outputs=[tmp_path / "again.pdf"])
    assert not (tmp_path / "again.pdf").exists()


@pytest.mark.parametrize("page", [3, -4, 100])
def test_page_out_of_range(pki: LocalPki, tmp_path: Path, page: int) -> None:
    src = _write_pdf(tmp_path / "p.pdf", make_pdf(3))
    with pytest.raises(InvalidInput, match="out of range") as e:
        prepare_pdf(src, pki.chain("ec"), page=page, box=BOX)
    assert e.value.field == "page"


def test_last_page_by_negative_index(pki: LocalPki, seal_png: bytes, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "p.pdf", make_pdf(3))
    [res] = sign_pdfs([src], remote_for(pki, Level.B_B), pki.chain("ec"), page=-1, box=BOX,
                      stamp_png=seal_png)
    with Path(str(res.output)).open("rb") as f:
        reader = PdfFileReader(f)
        sig = reader.embedded_regular_signatures[0]
        kids = reader.root["/Pages"]["/Kids"]
        names = [[str(a.get_object().get("/T")) for a in kid.get_object().get("/Annots", [])]
                 for kid in kids]
        assert names == [[], [], [sig.field_name]]


@pytest.mark.parametrize("box", [(10, 10, 10, 50), (100, 100, 50, 50)])
def test_bad_box(pki: LocalPki, tmp_path: Path, box: tuple[float, float, float, float]
                 ) -> None:
    src = _write_pdf(tmp_path / "p.pdf", make_pdf(1))
    with pytest.raises(InvalidInput, match="box"):
        prepare_pdf(src, pki.chain("ec"), box=box)


def test_bad_stamp_image(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "p.pdf", make_pdf(1))
    with pytest.raises(InvalidInput, match="image"):
        prepare_pdf(src, pki.chain("ec"), box=BOX, stamp_png=b"\x89PNG not really")


def test_encrypted_pdf_is_refused(pki: LocalPki, tmp_path: Path) -> None:
    src = _write_pdf(tmp_path / "enc.pdf", make_encrypted_pdf())
    with pytest.raises(InvalidInput, match="encrypted"):
        sign_pdfs([src], remote_for(pki, Level.B_B), pki.chain("ec"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.pdf"]


@pytest.mark.parametrize(("what", "data"), list(malformed_pdfs()),
                         ids=[w for w, _ in malformed_pdfs()])
def test_malformed_pdf_gets_a_clear_error(pki: LocalPki, tmp_path: Path, what: str,
                                         data: bytes) -> None:
    src = _write_pdf(tmp_path / "broken.pdf", data)
    remote = remote_for(pki, Level.B_B)
    with pytest.raises(InvalidInput) as e:
        sign_pdfs([src], remote, pki.chain("ec"))
    assert "broken.pdf" in e.value.message
    assert remote.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pdf"]


def test_fuzzed_pdfs_sign_or_fail_cleanly(pki: LocalPki, tmp_path: Path) -> None:
    """60 corrupted PDFs: each one signs (and validates) or gets one of our errors."""
    outcomes = {"signed": 0, "refused": 0}
    for i, (what, data) in enumerate(fuzzed_pdfs(60)):
        src = _write_pdf(tmp_path / f"f{i}.pdf", data)
        try:
            [res] = sign_pdfs([src], remote_for(pki, Level.B_B), pki.chain("ec"),
                              box=BOX)
        except SealkeeperError as e:
            assert f"f{i}.pdf" in e.message or e.field in ("page", "field_name"), what
            outcomes["refused"] += 1
            assert not (tmp_path / f"f{i}-signed.pdf").exists(), what
        else:
            outcomes["signed"] += 1
            assert pyhanko_report(Path(str(res.output)), pki.root)[0].intact, what
    assert not list(tmp_path.glob("*.part"))
    assert outcomes["refused"] >= 20, outcomes


def test_level_parsing() -> None:
    assert Level.parse("b-lta") is Level.B_LTA
    assert Level.parse("PAdES-B-T") is Level.B_T
    assert Level.parse("LT") is Level.B_LT
    with pytest.raises(InvalidInput):
        Level.parse("B-X")


def test_remote_signer_type_is_a_plain_callable(pki: LocalPki) -> None:
    remote: RemoteSigner = Remote(pki)
    assert callable(remote)
