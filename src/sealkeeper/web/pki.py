"""PKI endpoints under ``/pki``: CA certificates, CRLs, OCSP (RFC 6960) and
time-stamping (RFC 3161).

These speak binary protocols, so errors are mapped here, in this one place,
to the protocol's own error answers: an OCSP ``malformedRequest`` or
``internalError``, a TSA rejection; never a 500.
"""

from __future__ import annotations

import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sealkeeper.crypto import ocsp as ocsp_mod
from sealkeeper.crypto import tsa as tsa_mod
from sealkeeper.errors import InvalidInput, KeyStoreUnavailable, SealkeeperError
from sealkeeper.pki.models import CaRole
from sealkeeper.web.deps import UoW

log = logging.getLogger(__name__)
router = APIRouter(prefix="/pki", tags=["pki"])

OCSP_RESPONSE = "application/ocsp-response"
TS_REPLY = "application/timestamp-reply"
MAX_PROTOCOL_BODY = 64 * 1024


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request) -> str:
    base = str(request.base_url).rstrip("/") + "/pki"
    links = [("root.crt", "Root CA certificate (DER)"), ("root.pem", "Root CA certificate (PEM)"),
             ("issuing.crt", "Issuing CA certificate (DER)"),
             ("issuing.pem", "Issuing CA certificate (PEM)"),
             ("crl/root.crl", "CRL of the root CA"), ("crl/issuing.crl", "CRL of the issuing CA")]
    items = "".join(f'<li><a href="{base}/{href}">{label}</a></li>' for href, label in links)
    return (f"<!doctype html><title>sealkeeper PKI</title><h1>sealkeeper PKI</h1><ul>{items}"
            f"</ul><p>OCSP: {base}/ocsp &middot; Time-stamping (RFC 3161): {base}/tsa</p>")


def _cert_response(der: bytes, pem: bool, name: str) -> Response:
    if pem:
        cert = x509.load_der_x509_certificate(der)
        return Response(cert.public_bytes(serialization.Encoding.PEM),
                        media_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pem"'})
    return Response(der, media_type="application/pkix-cert",
                    headers={"Content-Disposition": f'attachment; filename="{name}.crt"'})


@router.get("/root.crt")
def root_der(uow: UoW) -> Response:
    return _cert_response(uow.pki.key(CaRole.ROOT).der, False, "sealkeeper-root")


@router.get("/root.pem")
def root_pem(uow: UoW) -> Response:
    return _cert_response(uow.pki.key(CaRole.ROOT).der, True, "sealkeeper-root")


@router.get("/issuing.crt")
def issuing_der(uow: UoW) -> Response:
    return _cert_response(uow.pki.key(CaRole.ISSUING).der, False, "sealkeeper-issuing")


@router.get("/issuing.pem")
def issuing_pem(uow: UoW) -> Response:
    return _cert_response(uow.pki.key(CaRole.ISSUING).der, True, "sealkeeper-issuing")


@router.get("/crl/{name}")
def crl(name: str, uow: UoW) -> Response:
    roles = {"root.crl": CaRole.ROOT, "issuing.crl": CaRole.ISSUING}
    if name not in roles:
        return Response(b"no such CRL", status_code=404, media_type="text/plain")
    return Response(uow.pki.crl(roles[name]), media_type="application/pkix-crl",
                    headers={"Cache-Control": "max-age=60"})


def _ocsp(uow: UoW, der: bytes) -> Response:
    try:
        return Response(uow.pki.ocsp(der), media_type=OCSP_RESPONSE)
    except InvalidInput as e:
        log.info("malformed OCSP request: %s", e.message)
        return Response(ocsp_mod.error_response(ocsp_mod.OcspErrorStatus.MALFORMED_REQUEST),
                        status_code=400, media_type=OCSP_RESPONSE)
    except KeyStoreUnavailable:
        return Response(ocsp_mod.error_response(ocsp_mod.OcspErrorStatus.TRY_LATER),
                        status_code=503, media_type=OCSP_RESPONSE)
    except SealkeeperError as e:
        log.error("OCSP failure: %s", e.message)
        return Response(ocsp_mod.error_response(ocsp_mod.OcspErrorStatus.INTERNAL_ERROR),
                        status_code=500, media_type=OCSP_RESPONSE)


@router.post("/ocsp")
async def ocsp_post(request: Request, uow: UoW) -> Response:
    body = await request.body()
    if len(body) > MAX_PROTOCOL_BODY:
        return Response(ocsp_mod.error_response(ocsp_mod.OcspErrorStatus.MALFORMED_REQUEST),
                        status_code=413, media_type=OCSP_RESPONSE)
    return _ocsp(uow, body)


@router.get("/ocsp/{encoded:path}")
def ocsp_get(encoded: str, uow: UoW) -> Response:
    try:
        der = ocsp_mod.decode_get_path(encoded)
    except InvalidInput:
        return Response(ocsp_mod.error_response(ocsp_mod.OcspErrorStatus.MALFORMED_REQUEST),
                        status_code=400, media_type=OCSP_RESPONSE)
    return _ocsp(uow, der)


@router.post("/tsa")
async def tsa(request: Request, uow: UoW) -> Response:
    body = await request.body()
    if len(body) > MAX_PROTOCOL_BODY:
        return Response(tsa_mod.rejection_response(tsa_mod.TsaFailure.BAD_REQUEST,
                                                   "request too large"),
                        status_code=413, media_type=TS_REPLY)
    try:
        return Response(uow.pki.timestamp_response(body), media_type=TS_REPLY)
    except KeyStoreUnavailable:
        return Response(tsa_mod.rejection_response(tsa_mod.TsaFailure.SYSTEM_FAILURE,
                                                   "the time-stamping key is unavailable"),
                        status_code=503, media_type=TS_REPLY)
    except SealkeeperError as e:
        log.error("TSA failure: %s", e.message)
        return Response(tsa_mod.rejection_response(tsa_mod.TsaFailure.SYSTEM_FAILURE,
                                                   "time-stamping failed"),
                        status_code=500, media_type=TS_REPLY)
