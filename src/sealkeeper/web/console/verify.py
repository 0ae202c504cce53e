"""Console route: the public verification page. Upload a signed PDF, or a
file and its detached ``.p7s``, and read the report that ``sealkeeper verify``
and ``POST /api/v1/verify`` give (:mod:`sealkeeper.client.report`).

Trust is the service's own root; revocation comes from what the document
embeds and our CRLs; nothing named in the upload is fetched. The usage-log
check runs only for a signed-in member of an organization, on what they may
read; for anyone else it is reported as skipped.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi.responses import Response

from sealkeeper.errors import InvalidInput
from sealkeeper.pki.models import CaRole
from sealkeeper.web.console.context import Console, ConsoleDep, Errors, console_router
from sealkeeper.web.console.errors import form_errors

router = console_router()


def _name(filename: str | None, default: str) -> str:
    return PurePosixPath((filename or "").replace("\\", "/")).name[:255] or default


def _report(c: Console) -> object:
    from sealkeeper.client.report import VerifyOptions, verify_detached, verify_pdf
    from sealkeeper.web.api.verify import ServerLogChecker

    document = c.upload("file")
    if document is None:
        raise InvalidInput("choose the signed PDF, or the file that the .p7s signs",
                           field="file")
    pki = c.uow.pki
    actor = c.actor
    options = VerifyOptions(
        trust_roots=[pki.key(CaRole.ROOT).der], certificates=[pki.key(CaRole.ISSUING).der],
        crls=[pki.crl(CaRole.ROOT), pki.crl(CaRole.ISSUING)], allow_fetching=False,
        log=ServerLogChecker(c.uow, actor) if actor is not None and actor.organization_id
        else None)
    name = _name(document.filename, "document")
    signature = c.upload("signature")
    if signature is not None:
        return verify_detached(document.file, signature.file, options, name=name,
                               signature_name=_name(signature.filename, "signature.p7s"))
    return verify_pdf(document.file, options, name=name)


def verify_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200,
                report: object | None = None) -> Response:
    return c.render("verify.html", status=status, errors=errors, report=report,
                    available=_available())


def _available() -> bool:
    try:
        import sealkeeper.client.report
        import sealkeeper.web.api.verify  # noqa: F401
    except ImportError:
        return False
    return True


@router.get("/console/verify")
def verify_form(c: ConsoleDep) -> Response:
    return verify_page(c)


@router.get("/verify")
def verify_alias(c: ConsoleDep) -> Response:
    return c.redirect("/console/verify")


@router.post("/console/verify")
@form_errors(verify_page)
def verify(c: ConsoleDep) -> Response:
    if not _available():
        return verify_page(c, errors={"_form": "Verification is not available on this "
                                               "server."}, status=503)
    return verify_page(c, report=_report(c))
