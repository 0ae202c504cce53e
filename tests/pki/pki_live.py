"""Helpers for the PKI acceptance tests (issue 3): a running demo server seen
through a recording HTTP client, openssl, and the private-key "needles" a
hygiene scan looks for.

The software key store's ``key_ref`` is opened here by an independent
implementation of its documented layout (``b"SKSW" | version | len(alg) | alg
| nonce | AES-256-GCM(ciphertext + tag)``, key = HKDF-SHA256(master key,
info "sealkeeper key wrap v1")), so the tests also prove the keys are sealed
that way and not only that the store can read its own output.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509 import ocsp

from server import Server

PEM_PRIVATE_MARKERS = (b"PRIVATE KEY-----", b"BEGIN ENCRYPTED PRIVATE", b"BEGIN EC PRIVATE",
                       b"BEGIN RSA PRIVATE")
ORG_LEGAL_NAME = "Example Ltd"          # sealkeeper.demo.ORG_NAME
ORG_REGISTRATION = "EX-0001"            # the demo organization's registration number


# --------------------------------------------------------------------------- openssl


def openssl(*args: str | Path, check: bool = True,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run openssl; stdout and stderr merged into ``.stdout``."""
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, input=stdin,
                       check=False, timeout=60)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    done = subprocess.CompletedProcess(r.args, r.returncode, out, "")
    if check and r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed ({r.returncode}):\n{out}")
    return done


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- key material


def open_software_ref(master_key: bytes, key_ref: bytes) -> bytes:
    """PKCS#8 DER sealed in a software key store ``key_ref`` (see module docstring)."""
    assert key_ref[:4] == b"SKSW", "not a software key reference"
    assert key_ref[4] == 1, "unknown key reference version"
    end = 6 + key_ref[5]
    header, nonce, sealed = key_ref[:end], key_ref[end:end + 12], key_ref[end + 12:]
    wrap_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"sealkeeper key wrap v1").derive(master_key)
    assert len(wrap_key) == 32  # AES-256
    return AESGCM(wrap_key).decrypt(nonce, sealed, header)


def needles_for_private_der(pkcs8: bytes) -> dict[str, bytes]:
    """Byte strings that betray a private key: its PKCS#8 DER (raw, base64, hex),
    the traditional DER, and the secret integers themselves (raw and hex)."""
    key = serialization.load_der_private_key(pkcs8, password=None)
    out = {"pkcs8-der": pkcs8, "pkcs8-b64": base64.b64encode(pkcs8),
           "pkcs8-hex": pkcs8.hex().encode()}
    out["traditional-der"] = key.private_bytes(serialization.Encoding.DER,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption())
    secrets: list[int] = []
    if isinstance(key, ec.EllipticCurvePrivateKey):
        secrets = [key.private_numbers().private_value]
    elif isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        secrets = [n.d, n.p, n.q]
    for i, value in enumerate(secrets):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        out[f"secret{i}-raw"] = raw
        out[f"secret{i}-hex"] = raw.hex().encode()
        out[f"secret{i}-b64"] = base64.b64encode(raw)
    return out


def find_leaks(haystack: bytes, needles: dict[str, bytes], *,
               markers: bool = True) -> list[str]:
    """Names of the needles (and PEM private-key markers) found in ``haystack``."""
    low = haystack.lower()
    found = [name for name, n in needles.items()
             if n in haystack or (name.endswith("-hex") and n.lower() in low)]
    if markers:
        found += [m.decode() for m in PEM_PRIVATE_MARKERS if m in haystack]
    return found


def as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "replace")


# --------------------------------------------------------------------------- the live server


@dataclass
class Live:
    """A running ``sealkeeper serve --demo`` and what the tests saw of it."""

    backend: str
    server: Server
    work: Path
    pkcs11: dict[str, str] | None = None
    responses: list[tuple[str, bytes]] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.demo: dict[str, Any] = json.loads(
            (self.server.data_dir / "demo.json").read_text())
        self.org_id: str = self.demo["organization"]["id"]
        self.by_email = {u["email"]: u for u in self.demo["users"]}
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 event_hooks={"response": [self._record]})

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append((f"{response.request.method} {response.request.url.path}",
                               response.content))

    def record(self, what: str, body: bytes) -> None:
        """Keep a body received outside httpx (e.g. an openssl -respout file)."""
        self.responses.append((what, body))

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, email: str) -> str:
        return str(self.by_email[email]["token"])

    def auth(self, email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(email)}"}

    @property
    def eseal(self) -> dict[str, str]:
        return self.auth("seals@example.com")

    @property
    def account_admin(self) -> dict[str, str]:
        return self.auth("admin@example.com")

    def path(self, name: str, data: bytes | None = None) -> Path:
        """A fresh file in the work directory (unique name), optionally written."""
        p = self.work / f"{next(self._names):04d}-{name}"
        if data is not None:
            p.write_bytes(data)
        return p

    # -- API

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.http.get(url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.http.post(url, **kw)

    def ok(self, method: str, url: str, **kw: Any) -> httpx.Response:
        r = self.http.request(method, url, **kw)
        assert r.status_code == 200, f"{method} {url}: {r.status_code} {r.text[:500]}"
        return r

    def seals(self) -> list[dict[str, Any]]:
        r = self.ok("GET", f"/api/v1/organizations/{self.org_id}/seals", headers=self.eseal)
        return list(r.json())

    def seal_of_type(self, seal_type: str) -> dict[str, Any]:
        return next(s for s in self.seals() if s["type"] == seal_type)

    def employees(self) -> list[dict[str, Any]]:
        r = self.ok("GET", f"/api/v1/organizations/{self.org_id}/employees",
                    headers=self.account_admin)
        return list(r.json())

    def chain(self, seal_id: str) -> list[x509.Certificate]:
        r = self.ok("GET", f"/api/v1/seals/{seal_id}/chain.pem", headers=self.eseal)
        return x509.load_pem_x509_certificates(r.content)

    def certificates(self, seal_id: str) -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/api/v1/seals/{seal_id}/certificates",
                            headers=self.eseal).json())

    def current(self, seal_id: str) -> x509.Certificate:
        return self.chain(seal_id)[0]

    # -- the CA

    def ca(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ok("GET", f"/pki/{name}.pem").content)

    @property
    def root_pem(self) -> Path:
        if not hasattr(self, "_root_pem"):
            self._root_pem = self.path("root.pem", self.ok("GET", "/pki/root.pem").content)
        return self._root_pem

    @property
    def issuing_pem(self) -> Path:
        if not hasattr(self, "_issuing_pem"):
            self._issuing_pem = self.path("issuing.pem",
                                          self.ok("GET", "/pki/issuing.pem").content)
        return self._issuing_pem

    @property
    def ca_chain_pem(self) -> Path:
        if not hasattr(self, "_ca_chain"):
            self._ca_chain = self.path("ca-chain.pem", self.issuing_pem.read_bytes()
                                       + self.root_pem.read_bytes())
        return self._ca_chain

    def crl(self, name: str = "issuing") -> tuple[bytes, x509.CertificateRevocationList]:
        r = self.ok("GET", f"/pki/crl/{name}.crl")
        assert r.headers["content-type"] == "application/pkix-crl"
        return r.content, x509.load_der_x509_crl(r.content)

    def verify_cert(self, cert: x509.Certificate, *extra: str) -> str:
        """``openssl verify`` against the downloaded root, issuing CA untrusted."""
        leaf = self.path("leaf.pem", pem(cert))
        out = openssl("verify", *extra, "-CAfile", self.root_pem, "-untrusted",
                      self.issuing_pem, leaf).stdout
        assert f"{leaf}: OK" in out, out
        return out

    def openssl_ocsp(self, cert: x509.Certificate) -> str:
        """``openssl ocsp`` against the server's responder (POST, with nonce)."""
        leaf = self.path("ocsp-leaf.pem", pem(cert))
        resp = self.path("ocsp-resp.der")
        out = openssl("ocsp", "-issuer", self.issuing_pem, "-cert", leaf, "-url",
                      f"{self.url}/pki/ocsp", "-CAfile", self.root_pem, "-resp_text",
                      "-respout", resp).stdout
        self.record("openssl ocsp", resp.read_bytes())
        assert "Response verify OK" in out, out
        assert "WARNING" not in out, out  # e.g. "WARNING: no nonce in response"
        assert "OCSP Nonce" in out, out
        return out

    def ocsp_status(self, cert: x509.Certificate) -> str:
        """What ``openssl ocsp`` says of ``cert``: "good", "unknown", "revoked" or
        "revoked <reason>"."""
        out = self.openssl_ocsp(cert)
        m = re.search(r"ocsp-leaf\.pem: (\w+)", out)
        assert m, out
        reason = re.search(r"\n\s*Reason: (\w+)", out[m.end():])
        return m.group(1) + (f" {reason.group(1)}" if reason else "")

    def scan_text(self) -> Iterable[tuple[str, bytes]]:
        yield "server log", self.server.log.read_bytes()
        yield from self.responses


def ocsp_request_der(cert: x509.Certificate, issuer: x509.Certificate,
                     algorithm: hashes.HashAlgorithm | None = None, nonce: bytes | None = None
                     ) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def cert_for_serial(serial_hex: str, listing: list[dict[str, Any]]) -> x509.Certificate:
    row = next(c for c in listing if c["serial"] == serial_hex)
    return x509.load_pem_x509_certificate(row["pem"].encode())


# --------------------------------------------------------------------------- databases


def dump_tables(engine: Any) -> list[tuple[str, bytes]]:
    """Every value of every table (alembic's included), as (table.column, bytes)."""
    from sqlalchemy import inspect, text

    out: list[tuple[str, bytes]] = []
    names = inspect(engine).get_table_names()
    assert names, "no tables to dump"
    with engine.connect() as c:
        for name in names:
            quoted = engine.dialect.identifier_preparer.quote(name)
            result = c.execute(text(f"SELECT * FROM {quoted}"))
            cols = list(result.keys())
            for row in result:
                for col, value in zip(cols, row, strict=True):
                    out.append((f"{name}.{col}", as_bytes(value)))
    return out


def software_key_needles(master_key: bytes, values: Iterable[tuple[str, bytes]]
                         ) -> tuple[dict[str, bytes], int]:
    """Open every software key_ref among ``values``; return the needles of every
    private key found, and how many keys that was."""
    needles: dict[str, bytes] = {}
    count = 0
    for where, value in values:
        if value.startswith(b"SKSW") and len(value) > 40:
            pkcs8 = open_software_ref(master_key, value)
            for name, n in needles_for_private_der(pkcs8).items():
                needles[f"{where}#{count}:{name}"] = n
            count += 1
    return needles, count


def master_key_needles(data_dir: Path) -> dict[str, bytes]:
    from sealkeeper.crypto.keystore.software import load_master_key

    key = load_master_key(data_dir, env_value=None, file=None, create=False)
    return {"master-key-raw": key, "master-key-b64": base64.b64encode(key),
            "master-key-urlsafe-b64": base64.urlsafe_b64encode(key).rstrip(b"="),
            "master-key-hex": key.hex().encode()}


def server_db_values(live: Live) -> list[tuple[str, bytes]]:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{live.server.data_dir / 'sealkeeper.db'}")
    try:
        return dump_tables(engine)
    finally:
        engine.dispose()


def live_needles(live: Live) -> dict[str, bytes]:
    """What must never be seen outside the key store: with the software store, the
    master key and every private key sealed in the server's database; with an HSM
    nothing leaves the token, so only the PEM markers are searched for."""
    if live.backend != "software":
        return {}
    needles, count = software_key_needles(master_key_raw(live.server.data_dir),
                                          server_db_values(live))
    assert count >= 5 + 6 + 3, f"only {count} sealed keys found in the server database"
    return {**needles, **master_key_needles(live.server.data_dir)}


def master_key_raw(data_dir: Path) -> bytes:
    return master_key_needles(data_dir)["master-key-raw"]


def ocsp_get_path(request_der: bytes) -> str:
    """/pki/ocsp/<url-encoded base64> (RFC 6960 A.1)."""
    import urllib.parse

    return "/pki/ocsp/" + urllib.parse.quote(base64.b64encode(request_der).decode(), safe="")


def gettable(make: Callable[[], bytes]) -> bytes:
    """A request from ``make`` (which must vary, e.g. by nonce) whose base64 does
    not end in "/": the server drops a trailing "/" of the GET path (a known bug,
    pinned by test_pki_bad_input::test_ocsp_get_base64_ending_in_a_slash)."""
    for _ in range(50):
        der = make()
        if not base64.b64encode(der).endswith(b"/"):
            return der
    raise AssertionError("every request's base64 ended in '/'")
