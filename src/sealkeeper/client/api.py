"""The Python SDK: a small httpx client for the sealkeeper API.

    from sealkeeper.client.api import SealkeeperClient
    with SealkeeperClient("https://seal.example.org", token) as sk:
        seals = sk.my_seals()
        sk.sign_pdfs(["contract.pdf"], seal_id, approval_password="1234", level="B-LTA")

Only the digest of each document is sent; PDFs are prepared and finished
locally. Imports no server code.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from cryptography import x509

from sealkeeper.client import cades, pades
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.errors import (
    ApprovalRefused,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExhausted,
    SealkeeperError,
    SigningLocked,
    Unauthenticated,
)

_BY_STATUS: dict[int, type[SealkeeperError]] = {
    400: InvalidInput, 401: Unauthenticated, 402: QuotaExhausted, 403: PermissionDenied,
    404: NotFound, 409: Conflict, 413: PayloadTooLarge, 423: SigningLocked,
}
_BY_CODE: dict[str, type[SealkeeperError]] = {"approval_refused": ApprovalRefused}


class ServerError(SealkeeperError):
    code = "server_error"


def _raise_for(r: httpx.Response) -> None:
    if r.status_code < 400:
        return
    try:
        body = r.json()
        code, message, field = body.get("error", ""), body.get("message", r.text), \
            body.get("field")
    except ValueError:
        code, message, field = "", r.text[:200] or r.reason_phrase, None
    cls = _BY_CODE.get(code) or _BY_STATUS.get(r.status_code, ServerError)
    raise cls(f"{message} (HTTP {r.status_code})", field=field)


class SealkeeperClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}",
                                           "User-Agent": "sealkeeper-sdk"})

    def __enter__(self) -> SealkeeperClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ServerError(f"cannot reach {self.base_url}: {e}") from e
        _raise_for(r)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") \
            else r.content

    # -- account -------------------------------------------------------------

    @staticmethod
    def login(base_url: str, email: str, password: str, token_name: str = "sealkeeper-cli",
              *, transport: httpx.BaseTransport | None = None) -> str:
        """Exchange an email and password for a new personal API token."""
        with httpx.Client(base_url=base_url.rstrip("/"), timeout=30,
                          transport=transport) as http:
            try:
                r = http.post("/api/v1/auth/token", json={"email": email, "password": password,
                                                          "token_name": token_name})
            except httpx.HTTPError as e:
                raise ServerError(f"cannot reach {base_url}: {e}") from e
            _raise_for(r)
            return str(r.json()["token"])

    def me(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/v1/me"))

    def my_seals(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/me/seals"))

    def seal_chain(self, seal_id: str) -> list[x509.Certificate]:
        pem = self._call("GET", f"/api/v1/seals/{seal_id}/chain.pem")
        return x509.load_pem_x509_certificates(pem)

    def seal_image(self, seal_id: str) -> bytes:
        return bytes(self._call("GET", f"/api/v1/seals/{seal_id}/image"))

    def root_certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self._call("GET", "/pki/root.crt"))

    def approval_password_status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/v1/me/approval-password"))

    def set_approval_password(self, password: str) -> None:
        self._call("POST", "/api/v1/me/approval-password", json={"approval_password": password})

    # -- signing -------------------------------------------------------------

    def authorize(self, seal_id: str, digests: Sequence[Hashed], approval_password: str) -> str:
        """A single-use approval for exactly these digests."""
        body = {"seal_id": seal_id, "digest_algorithm": digests[0].algorithm.value,
                "digests": [base64.b64encode(d.digest).decode() for d in digests],
                "approval_password": approval_password}
        return str(self._call("POST", "/api/v1/approvals", json=body)["approval"])

    def sign_digests(self, seal_id: str, documents: Sequence[tuple[str, Hashed]], *,
                     approval_password: str | None = None, approval: str | None = None,
                     pades_format: bool = False, timestamp: bool = False) -> list[bytes]:
        """One detached CMS per (file name, digest); one approval covers the batch."""
        body: dict[str, Any] = {
            "seal_id": seal_id, "format": "pades" if pades_format else "cades",
            "timestamp": timestamp,
            "documents": [{"file_name": name, "digest_algorithm": d.algorithm.value,
                           "digest": base64.b64encode(d.digest).decode()}
                          for name, d in documents]}
        if approval is not None:
            body["approval"] = approval
        else:
            body["approval_password"] = approval_password
        out = self._call("POST", "/api/v1/sign", json=body)
        return [base64.b64decode(s["cms"]) for s in out["signatures"]]

    def remote_signer(self, seal_id: str, *, approval_password: str, pades_format: bool,
                      timestamp: bool) -> Callable[[list[tuple[str, Hashed]]], list[bytes]]:
        def remote(items: list[tuple[str, Hashed]]) -> list[bytes]:
            return self.sign_digests(seal_id, items, approval_password=approval_password,
                                     pades_format=pades_format, timestamp=timestamp)

        return remote

    def sign_pdfs(self, paths: Sequence[str | os.PathLike[str]], seal_id: str, *,
                  approval_password: str, level: str = "B-B",
                  outputs: Sequence[str | os.PathLike[str]] | None = None,
                  field_name: str | None = None, page: int = 0,
                  box: tuple[float, float, float, float] | None = None, stamp: bool = True,
                  reason: str | None = None, location: str | None = None,
                  progress: Callable[[str, str], None] | None = None) -> list[pades.SignedPdf]:
        """Sign PDFs (PAdES, visible seal stamp) with one approval for the batch."""
        lvl = pades.Level.parse(level)
        chain = self.seal_chain(seal_id)
        stamp_png = self.seal_image(seal_id) if stamp and (box or field_name) else None
        remote = self.remote_signer(seal_id, approval_password=approval_password,
                                    pades_format=True, timestamp=lvl.signature_timestamp)
        return pades.sign_pdfs(paths, remote, chain, level=lvl, outputs=outputs,
                               field_name=field_name, page=page, box=box, stamp_png=stamp_png,
                               reason=reason, location=location,
                               tsa_url=self.base_url + "/pki/tsa",
                               trust_roots=[self.root_certificate()], progress=progress)

    def sign_files(self, paths: Sequence[str | os.PathLike[str]], seal_id: str, *,
                   approval_password: str, timestamp: bool = False,
                   outputs: Sequence[str | os.PathLike[str]] | None = None,
                   progress: Callable[[str, str], None] | None = None) -> list[bytes]:
        """Detached CAdES ``<file>.p7s`` for any files, one approval for the batch."""
        chain = self.seal_chain(seal_id)
        from cryptography.hazmat.primitives.serialization import Encoding

        remote = self.remote_signer(seal_id, approval_password=approval_password,
                                    pades_format=False, timestamp=timestamp)
        return cades.sign_files(paths, remote, algorithm=DigestAlgorithm.SHA256,
                                outputs=outputs,
                                signer_certificate=chain[0].public_bytes(Encoding.DER),
                                progress=progress)
