"""Routes of the CSC API, the same handlers at ``/csc/v1/`` and ``/csc/v2/``.

credentialID is the SealID. Authentication is a personal API token as
``Authorization: Bearer`` (authType "external": tokens are made in the
console or the JSON API). Credential authorization is explicit: the PIN is
the user's 4-digit signing approval password, and the SAD is a single-use
approval bound to exactly the hashes given at credentials/authorize (SCAL 2).
Every signature costs one quota unit and writes one usage-log entry with the
API "csc-v1" or "csc-v2".
"""

from __future__ import annotations

import base64
import functools
from datetime import datetime
from typing import Annotated, Any

from asn1crypto import tsp
from cryptography import x509
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from sealkeeper.authz import Actor
from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm
from sealkeeper.pki.models import CertStatus
from sealkeeper.seals.models import Seal, SealStatus
from sealkeeper.services import UnitOfWork
from sealkeeper.signing.approvals import expires_in
from sealkeeper.web.csc import algorithms
from sealkeeper.web.csc.errors import CscError, CscRoute, invalid
from sealkeeper.web.csc.params import Params, check_no_user_id
from sealkeeper.web.deps import CurrentActor, UoW, get_runtime

VERSIONS = ("v1", "v2")
SPECS = {"v1": "1.0.4.0", "v2": "2.0.0.2"}
METHODS = ["info", "credentials/list", "credentials/info", "credentials/authorize",
           "credentials/extendTransaction", "signatures/signHash", "signatures/timestamp"]
# Methods of the specification that sealkeeper does not offer (answered 501).
UNIMPLEMENTED = {"auth/login", "auth/revoke", "credentials/sendOTP", "credentials/getChallenge",
                 "credentials/authorizeCheck", "signatures/signDoc", "signatures/signPolling",
                 "oauth2/authorize", "oauth2/token", "oauth2/revoke", "oauth2/pushed_authorize"}
PIN_LABEL = "Signing approval password"
PIN_HELP = "The 4-digit approval password you set for the e-sign service"
MAX_NONCE_HEX = 128

Json = dict[str, Any]
RawBody = Annotated[Any, Body(description="a JSON object with the CSC parameters")]


def _csc_actor(request: Request, actor: CurrentActor) -> Actor:
    request.state.csc_user = actor.email
    return actor


CscActor = Annotated[Actor, Depends(_csc_actor)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _generalized(dt: datetime) -> str:
    return dt.strftime("%Y%m%d%H%M%SZ")


# -- credentials ---------------------------------------------------------------

def _my_seal(uow: UnitOfWork, actor: Actor, credential_id: str) -> Seal | None:
    for seal, _how in uow.seals.my_seals(actor):
        if seal.seal_id == credential_id:
            return seal
    return None


def _credential_info(uow: UnitOfWork, seal: Seal, version: str, certificates: str) -> Json:
    if not seal.key_algorithm:
        raise CscError("The credential identified by credentialID has no key")
    key_alg = KeyAlgorithm(seal.key_algorithm)
    ki = algorithms.key_info(key_alg)
    row = uow.pki.current_certificate(seal)
    cert = x509.load_der_x509_certificate(row.der)
    now = uow.clock()
    status = "revoked" if row.status != CertStatus.GOOD else \
        "expired" if now > row.not_after else "valid"
    key: Json = {"status": "enabled" if seal.status == SealStatus.ACTIVE else "disabled",
                 "algo": ki.algos, "len": ki.length}
    if ki.curve:
        key["curve"] = ki.curve
    cert_out: Json = {"status": status}
    if certificates == "chain":
        cert_out["certificates"] = [_b64(c) for c in uow.pki.chain_of(row)]
    elif certificates == "single":
        cert_out["certificates"] = [_b64(row.der)]
    cert_out.update(issuerDN=cert.issuer.rfc4514_string(), serialNumber=row.serial.upper(),
                    subjectDN=cert.subject.rfc4514_string(),
                    validFrom=_generalized(row.not_before), validTo=_generalized(row.not_after))
    out: Json = {"description": f"{seal.name} ({seal.type})", "key": key, "cert": cert_out,
                 "authMode": "explicit",
                 "PIN": {"presence": "true", "format": "N", "label": PIN_LABEL,
                         "description": PIN_HELP},
                 "OTP": {"presence": "false"},
                 "SCAL": "2", "multisign": uow.signing.batch_limit, "lang": "en-US"}
    if version == "v2":
        out["auth"] = {"mode": "explicit", "expression": "PIN",
                       "objects": [{"type": "Password", "id": "PIN", "format": "N",
                                    "label": PIN_LABEL, "description": PIN_HELP}]}
    return out


def _certificates_param(p: Params, default: str) -> str:
    return p.choice("certificates", ("none", "single", "chain"), default)


# -- time-stamps ---------------------------------------------------------------

def _nonce(p: Params) -> int | None:
    value = p.string("nonce", max_length=MAX_NONCE_HEX + 2)
    if value is None:
        return None
    text = value[2:] if value[:2].lower() == "0x" else value
    if not text or len(text) > MAX_NONCE_HEX or any(c not in "0123456789abcdefABCDEF"
                                                     for c in text):
        raise invalid(f"Invalid parameter nonce: a hex number of at most {MAX_NONCE_HEX} "
                      "digits")
    return int(text, 16)


def _timestamp_token(uow: UnitOfWork, imprint: Hashed, nonce: int | None) -> bytes:
    """An RFC 3161 token from our TSA (through a TimeStampReq, so the nonce is kept)."""
    req: dict[str, Any] = {
        "version": "v1", "cert_req": True,
        "message_imprint": {"hash_algorithm": {"algorithm": imprint.algorithm.value},
                            "hashed_message": imprint.digest}}
    if nonce is not None:
        req["nonce"] = nonce
    resp = tsp.TimeStampResp.load(uow.pki.timestamp_response(tsp.TimeStampReq(req).dump()))
    if resp["status"]["status"].native not in ("granted", "granted_with_mods"):
        text = resp["status"]["status_string"].native
        raise invalid(f"The time-stamp request was refused: {text}")
    token: bytes = resp["time_stamp_token"].dump()
    return token


# -- the routes of one version -------------------------------------------------

def _version_router(version: str) -> APIRouter:
    api = f"csc-{version}"
    router = APIRouter(prefix=f"/csc/{version}", route_class=CscRoute,
                       tags=[f"CSC API {version}"])

    @router.post("/info")
    def info(request: Request, body: RawBody = None) -> Json:
        """The service: specs, name, authentication type, methods (no token needed)."""
        p = Params(request, body, version)
        p.string("lang", max_length=35)
        settings = get_runtime(request).settings
        out: Json = {
            "specs": SPECS[version], "name": "sealkeeper",
            "logo": f"{settings.base_url}/csc/logo.png",
            "region": settings.ca_country or "XX", "lang": "en-US",
            "description": "sealkeeper: organization e-seals and personal e-signatures, "
                           "remote hash signing",
            "authType": ["external"], "methods": METHODS,
        }
        if version == "v2":
            out.update(signAlgorithms={"algos": algorithms.ALL_ALGOS},
                       signature_formats={"formats": [], "envelope_properties": []},
                       conformance_levels=[], asynchronousOperationMode=False,
                       validationInfo=False)
        return out

    router.add_api_route("/info", info, methods=["GET"], include_in_schema=False)

    @router.post("/credentials/list")
    def credentials_list(request: Request, actor: CscActor, uow: UoW,
                         body: RawBody = None) -> Json:
        """The SealIDs the caller may use (v2: with their details on request)."""
        p = Params(request, body, version)
        check_no_user_id(p)
        with_info = p.boolean("credentialInfo")
        certificates = _certificates_param(p, "single")
        only_valid = p.boolean("onlyValid")
        if p.has("maxResults") and p.integer("maxResults") < 1:
            raise invalid("Invalid parameter maxResults")
        p.string("pageToken", max_length=200)
        seals = [s for s, _how in uow.seals.my_seals(actor)]
        if only_valid:
            seals = [s for s in seals if s.status == SealStatus.ACTIVE]
        out: Json = {"credentialIDs": [s.seal_id for s in seals]}
        if with_info:
            out["credentialInfos"] = [
                {"credentialID": s.seal_id, **_credential_info(uow, s, version, certificates)}
                for s in seals]
        if only_valid:
            out["onlyValid"] = True
        return out

    @router.post("/credentials/info")
    def credentials_info(request: Request, actor: CscActor, uow: UoW,
                         body: RawBody = None) -> Json:
        """The key, certificate (chain: signer first), authorization and limits of a seal."""
        p = Params(request, body, version)
        cid = p.credential_id()
        request.state.csc_credential = cid
        certificates = _certificates_param(p, "single")
        p.boolean("certInfo")
        p.boolean("authInfo")
        seal = _my_seal(uow, actor, cid)
        if seal is None:
            raise invalid("Invalid parameter credentialID")
        return _credential_info(uow, seal, version, certificates)

    @router.post("/credentials/authorize")
    def credentials_authorize(request: Request, actor: CscActor, uow: UoW,
                              body: RawBody = None) -> Json:
        """The PIN (approval password) for exactly these hashes gives a single-use SAD."""
        p = Params(request, body, version)
        cid = p.credential_id()
        request.state.csc_credential = cid
        count = p.integer("numSignatures")
        hashes = p.hashes(p.hash_algorithm())
        assert hashes is not None
        limit = uow.signing.batch_limit
        if count < 1:
            raise invalid("Invalid value for parameter numSignatures")
        if count > limit:
            raise invalid(f"Numbers of signatures is too high (at most {limit})")
        if count != len(hashes):
            raise invalid(f"Invalid value for parameter numSignatures: it must equal the "
                          f"number of hashes ({len(hashes)})")
        pin = p.pin()
        p.string("description", max_length=500)
        p.string("clientData")
        row, token = uow.signing.authorize(actor, cid, hashes, pin, api=api)
        return {"SAD": token, "expiresIn": expires_in(row, uow.clock())}

    @router.post("/credentials/extendTransaction")
    def credentials_extend(request: Request, actor: CscActor, uow: UoW,
                           body: RawBody = None) -> Json:
        """A fresh lifetime for an unused SAD (hashes, if given, must be the approved ones)."""
        p = Params(request, body, version)
        cid = p.credential_id()
        request.state.csc_credential = cid
        sad = p.required_string("SAD", max_length=1000)
        hashes = p.hashes(p.hash_algorithm(), required=False)
        p.string("clientData")
        row = uow.signing.extend_approval(actor, cid, sad, hashes, api=api)
        return {"SAD": sad, "expiresIn": expires_in(row, uow.clock())}

    @router.post("/signatures/signHash")
    def signatures_sign_hash(request: Request, actor: CscActor, uow: UoW,
                             body: RawBody = None) -> Json:
        """Raw signatures (ECDSA: DER) over the hashes the SAD approved, in order."""
        p = Params(request, body, version)
        cid = p.credential_id()
        request.state.csc_credential = cid
        sad = p.required_string("SAD", max_length=1000)
        if p.string("operationMode", default="S") != "S":
            raise invalid("Invalid parameter operationMode: only synchronous signing (\"S\")")
        hash_algo = p.hash_algorithm()
        sign_algo = p.required_string("signAlgo", max_length=100)
        params_b64 = p.string("signAlgoParams", max_length=4000)
        p.string("clientData")
        seal = _my_seal(uow, actor, cid)
        key = KeyAlgorithm(seal.key_algorithm) if seal and seal.key_algorithm else None
        hash_name = p.names.get("hashAlgo", "hashAlgorithmOID" if version == "v2"
                                else "hashAlgo")
        spec = algorithms.sign_spec(sign_algo, hash_algo, params_b64, key,
                                    hash_name=hash_name)
        hashes = p.hashes(spec.digest)
        assert hashes is not None
        limit = uow.signing.batch_limit
        if len(hashes) > limit:
            raise invalid(f"Invalid parameter {p.names['hash']}: at most {limit} hashes "
                          "per request")
        _, signatures = uow.signing.sign_hashes(
            actor, cid, hashes, approval=sad, api=api, scheme=spec.scheme,
            pss_salt_length=spec.pss_salt_length)
        return {"signatures": [_b64(s.signature) for s in signatures]}

    @router.post("/signatures/timestamp")
    def signatures_timestamp(request: Request, actor: CscActor, uow: UoW,
                             body: RawBody = None) -> Json:
        """An RFC 3161 time-stamp token over a hash from sealkeeper's TSA (no quota)."""
        p = Params(request, body, version)
        algorithm = p.hash_algorithm(required=True)
        hashes = p.hashes(algorithm, single=True)
        assert hashes is not None
        nonce = _nonce(p)
        p.string("clientData")
        return {"timestamp": _b64(_timestamp_token(uow, hashes[0], nonce))}

    return router


# -- everything else under /csc ------------------------------------------------

_fallback = APIRouter(route_class=CscRoute)


@_fallback.get("/csc/logo.png", include_in_schema=False)
def logo() -> Response:
    return Response(_logo(), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})


@functools.cache
def _logo() -> bytes:
    from sealkeeper.seals.images import render_png

    return render_png("official", "sealkeeper", size=256)


@_fallback.api_route("/csc/{rest:path}", include_in_schema=False,
                     methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def unknown(rest: str, request: Request) -> None:
    version, _, method = rest.partition("/")
    if version not in VERSIONS:
        raise CscError(f"Unknown CSC API version {version[:20]!r}: use v1 or v2", status=404)
    if method in METHODS:
        raise CscError(f"Use POST for {method}", status=405)
    if method in UNIMPLEMENTED:
        raise CscError(f"The method {method} is not implemented", status=501)
    raise CscError(f"Unknown CSC method {method[:60]!r}", status=404)


def build_router() -> APIRouter:
    router = APIRouter()
    for version in VERSIONS:
        router.include_router(_version_router(version))
    router.include_router(_fallback)
    return router
