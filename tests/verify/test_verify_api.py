"""``POST /api/v1/verify`` and the usage-log check, with the service's own PKI.

Documents are signed through the real API (``POST /api/v1/sign``, PAdES with
the server's signature time-stamp, or CAdES for a ``.p7s``), so the trust
root is the world's CA and every signature has a usage-log entry. The
endpoint's report shows the entry's SealID and seal type with the inclusion
proof verified against the signed checkpoint; the client-side
``HttpLogChecker`` reaches the same result over the JSON log API.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from verify_pki import make_pdf, malformed_pdfs

from factories import World, auth
from sealkeeper.client.pades import finish_pdf, prepare_pdf
from sealkeeper.client.report import (
    HttpLogChecker,
    VerifyOptions,
    fetch_server_root,
    verify_pdf,
)
from sealkeeper.crypto.digests import Hashed
from sealkeeper.runtime import Runtime
from sealkeeper.web.api import log as log_routes
from sealkeeper.web.api import verify as verify_routes
from sealkeeper.web.app import create_app

PASSWORD = "1234"


@pytest.fixture
def api(runtime: Runtime) -> Iterator[TestClient]:
    """The app, with the verify and log routers mounted if app.py does not yet."""
    app = create_app(runtime)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/v1/verify" not in paths:
        app.include_router(verify_routes.router, prefix="/api/v1")
    if "/api/v1/organizations/{org_id}/log/checkpoint" not in paths:
        app.include_router(log_routes.router, prefix="/api/v1")
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _sign_pdf(api: TestClient, token: str, seal_id: str, tmp: Path, name: str) -> Path:
    r = api.post("/api/v1/me/approval-password", headers=auth(token),
                 json={"approval_password": PASSWORD})
    assert r.status_code in (201, 409), r.text
    pem = api.get(f"/api/v1/seals/{seal_id}/chain.pem", headers=auth(token))
    assert pem.status_code == 200, pem.text
    chain = x509.load_pem_x509_certificates(pem.content)
    src = tmp / name
    src.write_bytes(make_pdf(2))
    out = tmp / f"signed-{name}"
    prepared = prepare_pdf(src, chain, output=out, level="B-T")
    r = api.post("/api/v1/sign", headers=auth(token), json={
        "seal_id": seal_id, "approval_password": PASSWORD, "format": "pades",
        "timestamp": True, "documents": [{
            "file_name": name, "digest": base64.b64encode(prepared.digest.digest).decode()}]})
    assert r.status_code == 200, r.text
    finish_pdf(prepared, base64.b64decode(r.json()["signatures"][0]["cms"]), chain=chain)
    return out


def _verify(api: TestClient, token: str, **files: Any) -> Any:
    return api.post("/api/v1/verify", headers=auth(token), files=files)


def test_verify_endpoint_reports_the_log_entry(api: TestClient, world: World,
                                               tmp_path: Path) -> None:
    a = world.a
    emp = a.tokens["employee"]
    seal_id = a.seals["contract"]
    signed = _sign_pdf(api, emp, seal_id, tmp_path, "contract.pdf")

    r = _verify(api, emp, file=("contract.pdf", signed.read_bytes(), "application/pdf"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["verdict"] == "valid" and report["exit_code"] == 0, report
    [s] = report["signatures"]
    assert (s["format"], s["level"]) == ("PAdES", "B-T")
    assert s["trust"]["trusted"] and s["revocation"]["status"] == "good"
    assert s["timestamp"]["status"] == "valid"
    assert s["signer"]["organization"] == s["organization"]
    log = s["log"]
    assert log["status"] == "verified", log
    assert log["seal_id"] == seal_id and log["seal_type"] == "contract"
    assert log["user_email"] == a.emails["employee"]
    assert log["organization_id"] == a.id and log["tree_size"] > log["seq"] >= 0
    assert s["seal"]["seal_id"] == seal_id and s["seal"]["type"] == "contract"

    # the administrator sees it too; another organization's member does not
    admin = _verify(api, a.tokens["eseal_admin"], file=("c.pdf", signed.read_bytes()))
    assert admin.json()["signatures"][0]["log"]["status"] == "verified"
    other = _verify(api, world.b.tokens["employee"], file=("c.pdf", signed.read_bytes()))
    assert other.status_code == 200
    assert other.json()["signatures"][0]["log"]["status"] == "not_found"
    assert other.json()["verdict"] == "valid"

    # one changed byte: invalid, still 200 with the report
    data = bytearray(signed.read_bytes())
    at = data.index(b"Sealkeeper test document")
    data[at] = ord("Z")
    bad = _verify(api, emp, file=("c.pdf", bytes(data)))
    assert bad.status_code == 200 and bad.json()["verdict"] == "invalid"
    assert bad.json()["exit_code"] == 1


def test_cli_engine_checks_the_log_over_http(api: TestClient, world: World,
                                             tmp_path: Path) -> None:
    a = world.a
    emp = a.tokens["employee"]
    signed = _sign_pdf(api, emp, a.seals["contract"], tmp_path, "deal.pdf")
    root = fetch_server_root(api)
    crls = [api.get(f"/pki/crl/{n}.crl").content for n in ("root", "issuing")]
    with TestClient(api.app, headers=auth(emp)) as member:  # type: ignore[arg-type]
        report = verify_pdf(signed, VerifyOptions(
            trust_roots=[root], crls=crls, allow_fetching=False,
            log=HttpLogChecker(member)))
    assert report.exit_code == 0, report.to_dict()
    s = report.signatures[0]
    assert s.log is not None and s.log.status == "verified", s.log
    assert s.seal is not None and s.seal.seal_id == a.seals["contract"]

    # a pinned verifier key that is not the log's: the proof is refused, invalid
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sealkeeper.crypto.checkpoint import verifier_key

    wrong = verifier_key(s.log.checkpoint_origin or "x",
                         Ed25519PrivateKey.generate().public_key())
    with TestClient(api.app, headers=auth(emp)) as member:  # type: ignore[arg-type]
        report = verify_pdf(signed, VerifyOptions(
            trust_roots=[root], crls=crls, allow_fetching=False,
            log=HttpLogChecker(member, verifier_key=wrong)))
    assert report.exit_code == 1
    assert report.signatures[0].log is not None
    assert report.signatures[0].log.status == "failed"


def test_verify_endpoint_p7s(api: TestClient, world: World) -> None:
    a = world.a
    emp = a.tokens["employee"]
    api.post("/api/v1/me/approval-password", headers=auth(emp),
             json={"approval_password": PASSWORD})
    data = b"<invoice><total>42.00</total></invoice>\n"
    r = api.post("/api/v1/sign", headers=auth(emp), json={
        "seal_id": a.seals["contract"], "approval_password": PASSWORD, "format": "cades",
        "documents": [{"file_name": "invoice.xml",
                       "digest": base64.b64encode(Hashed.of(data).digest).decode()}]})
    assert r.status_code == 200, r.text
    p7s = base64.b64decode(r.json()["signatures"][0]["cms"])
    ok = _verify(api, emp, file=("invoice.xml", data), signature=("invoice.xml.p7s", p7s))
    assert ok.status_code == 200, ok.text
    report = ok.json()
    assert report["verdict"] == "valid", report
    assert report["type"] == "detached" and report["signature_file"] == "invoice.xml.p7s"
    assert report["signatures"][0]["log"]["status"] == "verified"
    assert report["signatures"][0]["level"] == "B-B"
    changed = _verify(api, emp, file=("invoice.xml", data.replace(b"42", b"24")),
                      signature=("invoice.xml.p7s", p7s))
    assert changed.json()["verdict"] == "invalid"


def test_verify_endpoint_errors(api: TestClient, world: World) -> None:
    emp = world.a.tokens["employee"]
    pdf = make_pdf(1)
    assert api.post("/api/v1/verify", files={"file": ("a.pdf", pdf)}).status_code == 401
    for what, data in list(malformed_pdfs())[:5]:
        r = _verify(api, emp, file=("broken.pdf", data))
        assert r.status_code == 400, (what, r.text)
        body = r.json()
        assert body["error"] == "invalid_request" and "broken.pdf" in body["message"]
    r = _verify(api, emp, file=("a.bin", b"x"), signature=("a.p7s", b"garbage"))
    assert r.status_code == 400 and "CMS" in r.json()["message"]
    unsigned = _verify(api, emp, file=("a.pdf", pdf))
    assert unsigned.status_code == 200
    assert unsigned.json()["verdict"] == "invalid" and unsigned.json()["signatures"] == []
    limit = api.app.state.runtime.settings.max_upload_bytes  # type: ignore[attr-defined]
    big = _verify(api, emp, file=("big.pdf", io.BytesIO(b"%PDF-1.7\n" + bytes(limit + 1))))
    assert big.status_code == 413
