"""Acceptance (issue 4): pyHanko's own CSC client, ``CSCSigner`` unchanged, signs
PDFs against a running ``sealkeeper serve`` through /csc/v1 and /csc/v2, with
an ECDSA seal and RSA seals (PKCS#1 v1.5 and PSS), and pyHanko's validation,
trusting only the server's /pki/root.crt, reports each signature intact, valid
and trusted.

Two servers run for the module: one with the default EC P-256 seal keys and
one with ``SEALKEEPER_SEAL_KEY_ALGORITHM=rsa-2048``, both ``--demo`` (whose
demo.json gives Alice's API token, approval password and SealIDs). The only
pyHanko class subclassed is ``CSCAuthorizationManager``, as pyHanko intends:
it calls credentials/authorize with the PIN and the hashes about to be signed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import aiohttp
import httpx
import pytest
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationInfo,
    CSCAuthorizationManager,
    CSCCredentialInfo,
    CSCServiceSessionInfo,
    CSCSigner,
    fetch_certs_in_csc_credential,
)
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from server import Server


@dataclass
class Live:
    server: Server
    token: str
    pin: str
    seal_id: str          # the contract seal, granted to Alice
    admin_token: str
    org_id: str
    root: asn1_x509.Certificate


def _start(base: Path, name: str, env: dict[str, str]) -> Live:
    data = base / name / "data"
    srv = Server(data, args=("--demo",), env=env).start()
    demo = json.loads((data / "demo.json").read_text())
    alice = next(u for u in demo["users"] if u["email"] == "alice@example.com")
    admin = next(u for u in demo["users"] if u["role"] == "eseal_admin")
    contract = next(s["seal_id"] for s in demo["seals"] if s["type"] == "contract")
    root = httpx.get(srv.url + "/pki/root.crt", timeout=10)
    root.raise_for_status()
    return Live(srv, alice["token"], alice["approval_password"], contract, admin["token"],
                demo["organization"]["id"], asn1_x509.Certificate.load(root.content))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Live]]:
    base = tmp_path_factory.mktemp("csc-live")
    configs = {"ec": {}, "rsa": {"SEALKEEPER_SEAL_KEY_ALGORITHM": "rsa-2048"}}
    started: dict[str, Live] = {}
    with ThreadPoolExecutor(2) as pool:
        futures = {k: pool.submit(_start, base, k, env) for k, env in configs.items()}
        errors = []
        for k, f in futures.items():
            try:
                started[k] = f.result()
            except Exception as e:  # stop whatever did start, then fail
                errors.append(e)
    try:
        if errors:
            raise errors[0]
        yield started
    finally:
        for one in started.values():
            one.server.stop()


class PinAuthorization(CSCAuthorizationManager):
    """Asks credentials/authorize for a SAD bound to exactly the hashes to sign,
    with the user's PIN (their signing approval password)."""

    def __init__(self, session_info: CSCServiceSessionInfo, credential_info: CSCCredentialInfo,
                 session: aiohttp.ClientSession, pin: str) -> None:
        super().__init__(session_info, credential_info)
        self.session = session
        self.pin = pin

    async def authorize_signature(self, hash_b64s: list[str]) -> CSCAuthorizationInfo:
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        body = self.format_csc_auth_request(pin=self.pin, hash_b64s=hash_b64s)
        async with self.session.post(url, headers=self.auth_headers, json=body,
                                     raise_for_status=True) as response:
            return self.parse_csc_auth_response(await response.json())


def minimal_pdf() -> bytes:
    w = PdfFileWriter()
    page = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject(
            [generic.NumberObject(n) for n in (0, 0, 595, 842)]),
        generic.pdf_name("/Resources"): generic.DictionaryObject(),
    })
    w.insert_page(page)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


async def sign_pdf(live: Live, version: str, pss: bool) -> tuple[bytes, CSCCredentialInfo]:
    async with aiohttp.ClientSession() as session:
        info = CSCServiceSessionInfo(live.server.url, live.seal_id, oauth_token=live.token,
                                     api_ver=version)
        credential = await fetch_certs_in_csc_credential(session, info)
        signer = CSCSigner(session, PinAuthorization(info, credential, session, live.pin),
                           prefer_pss=pss)
        meta = signers.PdfSignatureMetadata(field_name="Seal", md_algorithm="sha256",
                                            reason=f"CSC {version}")
        out = BytesIO()
        await signers.PdfSigner(meta, signer).async_sign_pdf(
            IncrementalPdfFileWriter(BytesIO(minimal_pdf())), output=out)
        return out.getvalue(), credential


async def validate(pdf: bytes, root: asn1_x509.Certificate) -> tuple[object, str, object]:
    """pyHanko's validation status, the signature mechanism and its parameters."""
    reader = PdfFileReader(BytesIO(pdf))
    (sig,) = reader.embedded_signatures
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    status = await async_validate_pdf_signature(sig, context)
    algorithm = sig.signer_info["signature_algorithm"]
    return status, algorithm["algorithm"].native, algorithm["parameters"].native


def _balance(live: Live) -> int:
    r = httpx.get(f"{live.server.url}/api/v1/organizations/{live.org_id}/quota",
                  headers={"Authorization": f"Bearer {live.admin_token}"}, timeout=10)
    r.raise_for_status()
    return int(r.json()["balance"])


@pytest.mark.parametrize("key,version,pss,mechanism", [
    ("ec", "v1", False, "sha256_ecdsa"),
    ("ec", "v2", False, "sha256_ecdsa"),
    ("rsa", "v1", False, "sha256_rsa"),
    ("rsa", "v2", False, "sha256_rsa"),
    ("rsa", "v1", True, "rsassa_pss"),
    ("rsa", "v2", True, "rsassa_pss"),
], ids=["ecdsa-v1", "ecdsa-v2", "rsa-pkcs1-v1", "rsa-pkcs1-v2", "rsa-pss-v1", "rsa-pss-v2"])
def test_pyhanko_csc_signer_signs_and_validates(live, key, version, pss, mechanism):
    one = live[key]
    before = _balance(one)
    pdf, credential = asyncio.run(sign_pdf(one, version, pss))
    # what credentials/info gave pyHanko: the signer first, then the chain to our root
    assert credential.signing_cert.issuer == credential.chain[0].subject
    assert credential.chain[-1].dump() == one.root.dump()
    assert credential.hash_pinning_required and credential.max_batch_size >= 1
    status, used, params = asyncio.run(validate(pdf, one.root))
    assert used == mechanism
    if pss:   # pyHanko asks for the largest salt; the server signed with exactly that
        assert params["salt_length"] == 2048 // 8 - 32 - 2  # type: ignore[index]
    assert status.intact, status.pretty_print_details()   # type: ignore[attr-defined]
    assert status.valid, status.pretty_print_details()    # type: ignore[attr-defined]
    assert status.trusted, status.pretty_print_details()  # type: ignore[attr-defined]
    assert _balance(one) == before - 1    # one signature, one quota unit


def test_pyhanko_reports_a_refusal_and_the_server_logs_why(live):
    """A wrong PIN: pyHanko only says "No signing results available"; the server
    log says why."""
    one = live["ec"]
    wrong = f"{(int(one.pin) + 1) % 10000:04d}"
    bad = Live(**{**one.__dict__, "pin": wrong})

    async def run() -> None:
        await sign_pdf(bad, "v2", False)

    with pytest.raises(SigningError, match="No signing results available"):
        asyncio.run(run())
    log = one.server.log.read_text()
    assert "invalid_authentication_data: The PIN is invalid" in log
    # a later correct PIN still works (one wrong try is far from the lock)
    pdf, _ = asyncio.run(sign_pdf(one, "v2", False))
    status, _, _ = asyncio.run(validate(pdf, one.root))
    assert status.valid  # type: ignore[attr-defined]
