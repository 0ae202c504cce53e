"""Routes: one seal, its status, and its grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response

from sealkeeper.accounts.models import User
from sealkeeper.errors import InvalidInput, NotFound
from sealkeeper.pki.service import REASONS
from sealkeeper.web.api.schemas import CertificateOut, GrantIn, GrantOut, Ok, RevokeIn, SealOut
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["seals"])
MAX_IMAGE = 2_000_000


@router.get("/seals/{seal_id}", response_model=SealOut)
def get_seal(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    return SealOut.from_row(uow.seals.get_visible(actor, seal_id))


@router.post("/seals/{seal_id}/disable", response_model=SealOut)
def disable_seal(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    """E-seal administrator: nobody can sign with the seal until it is enabled again."""
    return SealOut.from_row(uow.seals.set_enabled(actor, seal_id, False))


@router.post("/seals/{seal_id}/enable", response_model=SealOut)
def enable_seal(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    return SealOut.from_row(uow.seals.set_enabled(actor, seal_id, True))


@router.get("/seals/{seal_id}/grants", response_model=list[GrantOut])
def list_grants(seal_id: str, actor: CurrentActor, uow: UoW,
                include_withdrawn: bool = False) -> list[GrantOut]:
    return [GrantOut.build(g, seal_id, u)
            for g, u in uow.grants.grants_of_seal(actor, seal_id, include_withdrawn)]


@router.post("/seals/{seal_id}/grants", status_code=201, response_model=GrantOut)
def grant(seal_id: str, body: GrantIn, actor: CurrentActor, uow: UoW) -> GrantOut:
    """E-seal administrator: let an employee (by user_id or email) use this seal."""
    if (body.user_id is None) == (body.email is None):
        raise InvalidInput("give exactly one of user_id and email", field="user_id")
    user_id = body.user_id
    if body.email is not None:
        user = uow.accounts.find_by_email(body.email.strip().lower())
        if user is None:
            raise NotFound("employee not found")
        user_id = user.id
    assert user_id is not None
    g = uow.grants.grant(actor, seal_id, user_id)
    u = uow.session.get(User, g.user_id)
    assert u is not None
    return GrantOut.build(g, seal_id, u)


@router.delete("/seals/{seal_id}/grants/{user_id}", response_model=Ok)
def withdraw(seal_id: str, user_id: str, actor: CurrentActor, uow: UoW) -> Ok:
    """E-seal administrator: withdraw the right; effective on the very next request."""
    uow.grants.withdraw(actor, seal_id, user_id)
    return Ok()



@router.get("/seals/{seal_id}/certificates", response_model=list[CertificateOut])
def certificates(seal_id: str, actor: CurrentActor, uow: UoW) -> list[CertificateOut]:
    """Every certificate the seal ever had (old ones verify old signatures)."""
    seal = uow.seals.get_visible(actor, seal_id)
    return [CertificateOut.from_row(c) for c in uow.pki.certificates(seal)]


@router.get("/seals/{seal_id}/chain.pem")
def chain_pem(seal_id: str, actor: CurrentActor, uow: UoW) -> Response:
    """The current certificate followed by its issuers, PEM."""
    seal = uow.seals.get_visible(actor, seal_id)
    ders = uow.pki.chain_of(uow.pki.current_certificate(seal))
    return Response(b"".join(pem_of(d) for d in ders), media_type="application/x-pem-file")


@router.get("/seals/{seal_id}/csr")
def csr(seal_id: str, actor: CurrentActor, uow: UoW) -> Response:
    """E-seal administrator: a PKCS#10 request for the seal's key, for an outside CA."""
    seal = uow.seals.administered(actor, seal_id)
    return Response(uow.pki.csr(seal), media_type="application/pkcs10")


@router.post("/seals/{seal_id}/certificate", response_model=CertificateOut)
async def import_certificate(seal_id: str, request: Request, actor: CurrentActor,
                             uow: UoW) -> CertificateOut:
    """E-seal administrator: install the chain (PEM, leaf first) an outside CA issued
    for the seal's CSR. The leaf must match the seal's key."""
    body = await request.body()
    seal = uow.seals.administered(actor, seal_id)
    return CertificateOut.from_row(uow.pki.import_chain(seal, body, by=actor.user_id))


@router.post("/seals/{seal_id}/renew", response_model=CertificateOut)
def renew(seal_id: str, actor: CurrentActor, uow: UoW) -> CertificateOut:
    """E-seal administrator: a new certificate for the same key and SealID."""
    seal = uow.seals.administered(actor, seal_id)
    return CertificateOut.from_row(uow.pki.renew(seal, by=actor.user_id))


@router.post("/seals/{seal_id}/rekey", response_model=CertificateOut)
def rekey(seal_id: str, actor: CurrentActor, uow: UoW) -> CertificateOut:
    """E-seal administrator: a new key pair and certificate under the same SealID; the
    old certificates stay available and valid for the signatures they made."""
    seal = uow.seals.administered(actor, seal_id)
    row, old_ref = uow.pki.rekey(seal, by=actor.user_id)
    if old_ref is not None:
        ref = old_ref
        uow.after_commit(lambda: uow.rt.keystore.destroy(ref))
    return CertificateOut.from_row(row)


@router.post("/seals/{seal_id}/revoke", response_model=SealOut)
def revoke(seal_id: str, body: RevokeIn, actor: CurrentActor, uow: UoW) -> SealOut:
    """E-seal administrator: retire the seal for good and revoke its certificates."""
    if body.reason not in REASONS or body.reason in ("affiliation_changed", "superseded"):
        raise InvalidInput("reason must be cessation_of_operation, key_compromise or "
                           "unspecified", field="reason")
    return SealOut.from_row(uow.seals.revoke(actor, seal_id, body.reason))


@router.post("/seals/{seal_id}/compromised", response_model=CertificateOut)
def compromised(seal_id: str, actor: CurrentActor, uow: UoW) -> CertificateOut:
    """E-seal administrator: the key is compromised. Every certificate of that key is
    revoked (keyCompromise) and the seal gets a new key and certificate at once."""
    seal = uow.seals.administered(actor, seal_id)
    current = uow.pki.current_certificate(seal)
    uow.pki.revoke_seal(seal, uow.clock(), "key_compromise", only_key=current.key_fingerprint)
    row, old_ref = uow.pki.rekey(seal)
    if old_ref is not None:
        ref = old_ref
        uow.after_commit(lambda: uow.rt.keystore.destroy(ref))
    return CertificateOut.from_row(row)


@router.get("/seals/{seal_id}/image", response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
def seal_image(seal_id: str, actor: CurrentActor, uow: UoW, format: str = "png") -> Response:
    """The seal's stamp image: PNG (default) or SVG (?format=svg)."""
    headers = {"Cache-Control": "private, max-age=300"}
    if format == "svg":
        return Response(uow.seal_images.svg(actor, seal_id), media_type="image/svg+xml",
                        headers={**headers, "Content-Security-Policy": "script-src 'none'"})
    if format != "png":
        raise InvalidInput("format must be png or svg", field="format")
    return Response(uow.seal_images.png(actor, seal_id), media_type="image/png", headers=headers)


@router.post("/seals/{seal_id}/image", response_model=SealOut)
async def upload_image(seal_id: str, actor: CurrentActor, uow: UoW,
                       image: Annotated[UploadFile, File(description="PNG or JPEG")]) -> SealOut:
    """E-seal administrator: replace the generated image with the organization's own."""
    data = await image.read(MAX_IMAGE + 1)
    return SealOut.from_row(uow.seal_images.upload(actor, seal_id, data,
                                                   image.content_type or ""))


@router.delete("/seals/{seal_id}/image", response_model=SealOut)
def reset_image(seal_id: str, actor: CurrentActor, uow: UoW) -> SealOut:
    """E-seal administrator: go back to the generated image."""
    return SealOut.from_row(uow.seal_images.reset(actor, seal_id))


def pem_of(der: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
