"""Route: ``POST /verify``, the verification report for the console.

The same report as ``sealkeeper verify --json`` (built by
:mod:`sealkeeper.client.report`), for an uploaded PDF or an uploaded file
with its detached ``.p7s``. The upload size is bounded by the service's
upload limit (``max_upload_bytes``, enforced before the route runs).

Trust and revocation are the service's own: the trust root is our root CA,
revocation data is what the document embeds (DSS) plus our current CRLs. The
server never fetches URLs named in an uploaded document (no request forgery
through certificate extensions), so signatures under other PKIs come out
untrusted here; verify those with the CLI. The usage-log check runs against
the caller's organization's log, with what the caller may read.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from sealkeeper.audit import LogFilter
from sealkeeper.audit.encoding import entry_details
from sealkeeper.authz import Actor
from sealkeeper.client.report import (
    LogCheck,
    LogQuery,
    VerifyOptions,
    check_log_evidence,
    verify_detached,
    verify_pdf,
)
from sealkeeper.pki.models import CaRole
from sealkeeper.services import UnitOfWork
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["verification"])

_LOOKUP_PAGE = 500


class ServerLogChecker:
    """Looks a signature up in the caller's organization's usage log and checks
    the inclusion proof against the signed checkpoint, through the audit
    service (the same checks :class:`~sealkeeper.client.report.HttpLogChecker`
    makes over HTTP)."""

    def __init__(self, uow: UnitOfWork, actor: Actor) -> None:
        self.uow = uow
        self.actor = actor

    def __call__(self, query: LogQuery) -> LogCheck:
        org = self.actor.organization_id
        if org is None:
            return LogCheck("skipped", "the account belongs to no organization")
        audit = self.uow.audit
        seq: int | None = None
        for digest in query.digests:
            page = audit.entries(self.actor, org, LogFilter(kind="signature",
                                                            file_digest=digest),
                                 page=1, page_size=_LOOKUP_PAGE)
            for entry in page.items:
                if (entry_details(entry.entry) or {}).get("signature_sha256") == \
                        query.signature_sha256:
                    seq = entry.seq
                    break
            if seq is not None:
                break
        if seq is None:
            return LogCheck("not_found", "no entry of the organization's usage log that "
                            "this account may read records this signature",
                            organization_id=org)
        note = audit.checkpoint(self.actor, org)
        key = audit.verifier_key(self.actor, org)
        lines = note.split("\n")
        size = int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else seq + 1
        proof = audit.inclusion_proof(self.actor, org, seq=seq, tree_size=size)
        return check_log_evidence(query, organization_id=org, seq=seq, entry=proof.entry,
                                  path=proof.path, tree_size=proof.tree_size,
                                  checkpoint=note, verifier_key=key)


def _options(uow: UnitOfWork, actor: Actor) -> VerifyOptions:
    pki = uow.pki
    return VerifyOptions(
        trust_roots=[pki.key(CaRole.ROOT).der],
        certificates=[pki.key(CaRole.ISSUING).der],
        crls=[pki.crl(CaRole.ROOT), pki.crl(CaRole.ISSUING)],
        allow_fetching=False,
        log=ServerLogChecker(uow, actor),
    )


def _name(filename: str | None, default: str) -> str:
    """The base name of an uploaded file, for the report (never a path)."""
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    return base[:255] or default


@router.post("/verify")
def verify(
    actor: CurrentActor, uow: UoW,
    file: Annotated[UploadFile, File(description="The signed PDF, or the file that "
                                     "the detached signature signs")],
    signature: Annotated[UploadFile | None, File(description="The detached CMS "
                                                 "signature (.p7s) of file")] = None,
) -> dict[str, Any]:
    """Verify the signatures of an uploaded PDF (every signature field and document
    time-stamp), or of a file and its detached ``.p7s``: signer, seal, times,
    integrity, trust (our root), revocation at signing time, PAdES level, changes
    after signing, and the usage-log entry with its inclusion proof. The answer is
    200 with the report whatever the verdict (``verdict``, ``exit_code`` as the CLI
    would exit); 400 for a file that cannot be read as what it claims to be."""
    options = _options(uow, actor)
    name = _name(file.filename, "document")
    if signature is not None:
        sig_name = _name(signature.filename, "signature.p7s")
        report = verify_detached(file.file, signature.file, options, name=name,
                                 signature_name=sig_name)
    else:
        report = verify_pdf(file.file, options, name=name)
    return report.to_dict()
