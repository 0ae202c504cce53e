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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509

from sealkeeper.client.files import write_atomically
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


if TYPE_CHECKING:  # PDF / CMS machinery is imported on first use, not at start-up
    from sealkeeper.client import pades, report


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
        from sealkeeper.client import pades

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
        from sealkeeper.client import cades

        return cades.sign_files(paths, remote, algorithm=DigestAlgorithm.SHA256,
                                outputs=outputs,
                                signer_certificate=chain[0].public_bytes(Encoding.DER),
                                progress=progress)

    # -- verification --------------------------------------------------------

    def verify(self, path: str | os.PathLike[str], *,
               signature: str | os.PathLike[str] | None = None,
               log_check: bool = True, allow_fetching: bool = True) -> report.VerificationReport:
        """Verify a signed PDF (or a file with its detached ``.p7s``) against this
        server's root, and look each signature up in the usage log."""
        from sealkeeper.client import report

        log = report.HttpLogChecker(self._http) if log_check else None
        options = report.VerifyOptions(trust_roots=[report.fetch_server_root(self._http)],
                                       allow_fetching=allow_fetching, log=log)
        return report.verify_file(path, options, signature=signature)

    # -- encryption ----------------------------------------------------------

    def directory(self, *, email: str | None = None,
                  organization: str | None = None) -> dict[str, Any]:
        """The directory entry (encryption certificate) of an employee or an
        organization: ``GET /api/v1/directory``."""
        params = {"email": email} if email is not None else {"organization": organization}
        return dict(self._call("GET", "/api/v1/directory", params=params))

    def encryption_certificate(self, *, email: str | None = None,
                               organization: str | None = None) -> x509.Certificate:
        """The recipient's encryption certificate, checked for encryption use."""
        from sealkeeper.client import crypt

        entry = self.directory(email=email, organization=organization)
        cert = x509.load_der_x509_certificate(base64.b64decode(entry["certificate"]))
        crypt.check_recipient_certificate(cert, email=email)
        return cert

    def my_encryption_keys(self) -> list[dict[str, Any]]:
        """The keys you may decrypt with (yours, and your organization's with a grant)."""
        return list(self._call("GET", "/api/v1/me/encryption-keys"))

    def my_encryption_certificates(self) -> list[x509.Certificate]:
        return [x509.load_der_x509_certificate(base64.b64decode(k["certificate"]))
                for k in self.my_encryption_keys()]

    def create_organization_encryption_key(self, org_id: str,
                                           algorithm: str = "ec-p256") -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/organizations/{org_id}/encryption-key",
                               json={"algorithm": algorithm}))

    def encryption_grants(self, org_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/v1/organizations/{org_id}/encryption-grants"))

    def grant_decryption(self, org_id: str, user_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/organizations/{org_id}/encryption-grants",
                               json={"user_id": user_id}))

    def withdraw_decryption(self, org_id: str, user_id: str) -> dict[str, Any]:
        return dict(self._call(
            "DELETE", f"/api/v1/organizations/{org_id}/encryption-grants/{user_id}"))

    def unwrap_content_key(self, recipient_info: bytes, *, file_name: str,
                           file_digest: Hashed, approval_password: str) -> bytes:
        """The content key of one recipient info (``POST /api/v1/decrypt``); the
        service logs the decryption with ``file_name`` and ``file_digest``."""
        body = {"recipient_info": base64.b64encode(recipient_info).decode(),
                "file_name": file_name, "file_digest": base64.b64encode(file_digest.digest)
                .decode(), "digest_algorithm": file_digest.algorithm.value,
                "approval_password": approval_password}
        return base64.b64decode(self._call("POST", "/api/v1/decrypt", json=body)["content_key"])

    def encrypt_files(self, paths: Sequence[str | os.PathLike[str]], *,
                      to: Sequence[str] = (), to_orgs: Sequence[str] = (),
                      outputs: Sequence[str | os.PathLike[str]] | None = None,
                      progress: Callable[[str, str], None] | None = None) -> list[Path]:
        """Encrypt files here for employees (by email) and organizations (by id):
        PDFs with PDF public-key security, other files as CMS ``.p7m``."""
        from sealkeeper.client import crypt

        if not to and not to_orgs:
            raise InvalidInput("give at least one recipient (--to or --to-org)", field="to")
        certs = [self.encryption_certificate(email=e) for e in to]
        certs += [self.encryption_certificate(organization=o) for o in to_orgs]
        return _each_file(paths, outputs, crypt.encrypted_name, private=False,
                          transform=lambda _p, data: crypt.encrypt_data(data, certs),
                          stage="encrypted", progress=progress)

    def decrypt_files(self, paths: Sequence[str | os.PathLike[str]], *,
                      approval_password: str,
                      outputs: Sequence[str | os.PathLike[str]] | None = None,
                      progress: Callable[[str, str], None] | None = None) -> list[Path]:
        """Decrypt files encrypted for one of your keys: each file's content key
        is unwrapped by the service (one usage-log entry per file); the file
        itself stays here. Outputs are written with mode 0600."""
        from sealkeeper.client import crypt

        certs = self.my_encryption_certificates()

        def transform(path: Path, data: bytes) -> bytes:
            digest = Hashed.of(data)

            def unwrap(info: bytes) -> bytes:
                return self.unwrap_content_key(info, file_name=path.name, file_digest=digest,
                                               approval_password=approval_password)

            return crypt.decrypt_data(data, certs, unwrap)

        return _each_file(paths, outputs, crypt.decrypted_name, private=True,
                          transform=transform, stage="decrypted", progress=progress)

    # -- the usage log ---------------------------------------------------------

    @staticmethod
    def _log_query(filters: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Query parameters without the unset ones (httpx would send them empty)."""
        return {k: v for k, v in {**filters, **extra}.items() if v is not None}

    @staticmethod
    def _log_path(org_id: str | None, suffix: str = "") -> str:
        return (f"/api/v1/organizations/{org_id}/log{suffix}" if org_id
                else f"/api/v1/me/log{suffix}")

    def log_entries(self, org_id: str | None = None, *, page: int = 1, page_size: int = 50,
                    order: str = "desc", **filters: str | None) -> dict[str, Any]:
        """A page of usage-log entries (``items``, ``total``, ``page``,
        ``page_size``): the organization's with ``org_id`` (its administrators
        see every entry, other members their own), else the caller's own.
        ``filters``: seal_id, user_id, since, until, file_name, file_digest,
        kind, api."""
        return dict(self._call("GET", self._log_path(org_id), params=self._log_query(
            filters, page=page, page_size=page_size, order=order)))

    def export_log_csv(self, write: Callable[[bytes], object], org_id: str | None = None,
                       **filters: str | None) -> int:
        """Stream the CSV export of the entries (same filters as
        :meth:`log_entries`) into ``write``; returns the number of bytes."""
        return self._stream_csv(self._log_path(org_id, ".csv"), self._log_query(filters),
                                write)

    def export_security_csv(self, write: Callable[[bytes], object], org_id: str,
                            **filters: str | None) -> int:
        """Stream the CSV export of the organization's refused attempts (same
        filters as :meth:`security_events`) into ``write``; returns the number
        of bytes."""
        return self._stream_csv(f"/api/v1/organizations/{org_id}/security-events.csv",
                                self._log_query(filters), write)

    def _stream_csv(self, path: str, params: Any, write: Callable[[bytes], object]) -> int:
        written = 0
        try:
            with self._http.stream("GET", path, params=params) as r:
                if r.status_code >= 400:
                    r.read()
                    _raise_for(r)
                for chunk in r.iter_bytes():
                    write(chunk)
                    written += len(chunk)
        except httpx.HTTPError as e:
            raise ServerError(f"cannot reach {self.base_url}: {e}") from e
        return written

    def security_events(self, org_id: str, *, page: int = 1, page_size: int = 50,
                        **filters: str | None) -> dict[str, Any]:
        """A page of the organization's refused attempts (administrators).
        ``filters``: user_id, seal_id, action, reason, since, until."""
        return dict(self._call("GET", f"/api/v1/organizations/{org_id}/security-events",
                               params=self._log_query(filters, page=page,
                                                      page_size=page_size)))

    def _log_text(self, path: str) -> str:
        try:
            return bytes(self._call("GET", path)).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"the server's answer to {path} is not UTF-8") from None

    def log_checkpoint(self, org_id: str) -> str:
        """The log's current signed checkpoint (a C2SP signed note)."""
        return self._log_text(f"/api/v1/organizations/{org_id}/log/checkpoint")

    def log_verifier_key(self, org_id: str) -> str:
        """The checkpoints' verifier key ``name+keyid+key``, as the server states it."""
        return self._log_text(f"/api/v1/organizations/{org_id}/log/verifier-key").strip()

    def log_inclusion_proof(self, org_id: str, *, seq: int | None = None,
                            leaf_hash: str | None = None,
                            tree_size: int | None = None) -> dict[str, Any]:
        """Inclusion proof of an entry (``seq`` or hex ``leaf_hash``): seq,
        tree_size, leaf_hash, root, path (hex) and the entry (base64)."""
        return dict(self._call("GET", f"/api/v1/organizations/{org_id}/log/proof/inclusion",
                               params=self._log_query({}, seq=seq, leaf_hash=leaf_hash,
                                                      tree_size=tree_size)))

    def log_consistency_proof(self, org_id: str, old: int,
                              new: int | None = None) -> dict[str, Any]:
        """Consistency proof from tree size ``old`` to ``new`` (default: now)."""
        return dict(self._call("GET", f"/api/v1/organizations/{org_id}/log/proof/consistency",
                               params=self._log_query({}, old=old, new=new)))

    def log_raw_entries(self, org_id: str, start: int, end: int) -> dict[str, Any]:
        """The canonical entries ``start <= seq < end`` (at most 1000, base64),
        for verifiers (administrators)."""
        return dict(self._call("GET", f"/api/v1/organizations/{org_id}/log/entries",
                               params={"start": start, "end": end}))

def _each_file(paths: Sequence[str | os.PathLike[str]],
               outputs: Sequence[str | os.PathLike[str]] | None,
               default_name: Callable[[Path, bytes], Path], *, private: bool,
               transform: Callable[[Path, bytes], bytes], stage: str,
               progress: Callable[[str, str], None] | None) -> list[Path]:
    """Read each file, transform it, write the result atomically beside it."""
    if outputs is not None and len(outputs) != len(paths):
        raise InvalidInput("give one output per file", field="output")
    done: list[Path] = []
    for i, raw in enumerate(paths):
        path = Path(raw)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InvalidInput(f"{path.name} cannot be read: {e.strerror}", field="file") from e
        target = Path(outputs[i]) if outputs is not None else default_name(path, data)
        if target.resolve() == path.resolve():
            raise InvalidInput(f"the output for {path.name} would overwrite it", field="output")
        write_atomically(target, transform(path, data), private=private)
        done.append(target)
        if progress is not None:
            progress(stage, path.name)
    return done
