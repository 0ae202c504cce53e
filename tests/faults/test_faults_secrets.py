"""Secret hygiene: a representative run of the service's flows (sign-up and
sign-in, API tokens, the approval password, approvals, native and CSC
signing, wrong passwords, the logs, the console with its session cookie) with
every log record (all loggers, DEBUG and up, tracebacks included) and every
response (body and headers) captured. No API token, account password, approval
password, approval / SAD, session cookie, PEM private key or master key may
appear anywhere, except a token or approval in the one response that creates
it (and the SAD echoed by CSC extendTransaction, as the specification says).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient
from fault_helpers import ECDSA_SHA256, SHA256_OID

from factories import PASSWORD, auth
from sealkeeper.web.app import create_app

APPROVAL_PW = "7391"
WRONG_APPROVAL_PW = "2864"
SIGNUP_PW = "signup secret 9f1c"
WRONG_PW = "wrong secret a71d"
TOKEN_RE = re.compile(r"sk[ta]_[A-Za-z0-9_-]{20,}")


@dataclass
class Seen:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Capture:
    responses: list[Seen] = field(default_factory=list)
    allowed: dict[str, set[int]] = field(default_factory=dict)  # secret -> response indexes

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(Seen(response.request.method, response.request.url.path,
                                   response.status_code,
                                   {k.lower(): v for k, v in response.headers.items()},
                                   response.text))

    def created_here(self, secret: str) -> str:
        """``secret`` was created by the last response: it may appear there only."""
        assert secret in self.responses[-1].body
        self.allowed.setdefault(secret, set()).add(len(self.responses) - 1)
        return secret


def _browser(app, cap: Capture) -> TestClient:
    c = TestClient(app, raise_server_exceptions=False)
    c.event_hooks["response"] = [cap.hook]
    return c


def _d(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def _json_strings(body: str) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for k, x in v.items():
                out.append(str(k))
                walk(x)

    walk(data)
    return out


def test_no_secret_in_logs_or_responses(runtime, world, caplog):
    caplog.set_level(logging.DEBUG)
    cap = Capture()
    a = world.a
    emp, eseal = a.tokens["employee"], a.tokens["eseal_admin"]
    contract = a.seals["contract"]
    app = create_app(runtime)
    with _browser(app, cap) as api:
        # -- accounts and tokens ---------------------------------------------
        r = api.post("/api/v1/signup", json={"email": "newbie@elsewhere.example",
                                             "password": SIGNUP_PW, "display_name": "Newbie"})
        assert r.status_code == 201, r.text
        t1 = cap.created_here(r.json()["token"]["token"])
        assert api.get("/api/v1/me", headers=auth(t1)).status_code == 200
        r = api.post("/api/v1/auth/token", json={"email": "newbie@elsewhere.example",
                                                 "password": SIGNUP_PW, "token_name": "cli"})
        assert r.status_code == 201, r.text
        t2 = cap.created_here(r.json()["token"])
        r = api.post("/api/v1/auth/token", json={"email": "newbie@elsewhere.example",
                                                 "password": WRONG_PW})
        assert r.status_code == 401
        r = api.post("/api/v1/me/tokens", headers=auth(t2), json={"name": "ci"})
        t3 = cap.created_here(r.json()["token"])
        assert api.get("/api/v1/me/tokens", headers=auth(t3)).status_code == 200
        r = api.delete(f"/api/v1/me/tokens/{r.json()['id']}", headers=auth(t2))
        assert r.status_code == 200
        assert api.get("/api/v1/me", headers=auth(t3)).status_code == 401  # revoked
        assert api.get("/api/v1/me", headers=auth("skt_" + "x" * 43)).status_code == 401

        # -- the approval password and signing -----------------------------------
        h = auth(emp)
        assert api.post("/api/v1/me/approval-password", headers=h,
                        json={"approval_password": APPROVAL_PW}).status_code == 201
        body = {"seal_id": contract, "documents": [{"file_name": "a.pdf", "digest": _d(b"a")}]}
        r = api.post("/api/v1/sign", headers=h, json={**body,
                                                     "approval_password": WRONG_APPROVAL_PW})
        assert r.status_code == 403
        r = api.post("/api/v1/approvals", headers=h, json={
            "seal_id": contract, "digests": [_d(b"a")], "approval_password": APPROVAL_PW})
        assert r.status_code == 201, r.text
        ska = cap.created_here(r.json()["approval"])
        assert api.post("/api/v1/sign", headers=h, json={**body, "approval": ska}
                        ).status_code == 200
        assert api.post("/api/v1/sign", headers=h, json={**body, "approval": ska}
                        ).status_code == 403  # replay
        assert api.post("/api/v1/sign", headers=h, json={
            **body, "approval_password": APPROVAL_PW, "timestamp": True}).status_code == 200
        for version in ("v1", "v2"):
            auth_body = {"credentialID": contract, "numSignatures": 1, "hashes": [_d(b"c")],
                         "hashAlgorithmOID": SHA256_OID,
                         "authData": [{"id": "PIN", "value": APPROVAL_PW}]}
            r = api.post(f"/csc/{version}/credentials/authorize", headers=h,
                         json={**auth_body, "authData": [{"id": "PIN",
                                                          "value": WRONG_APPROVAL_PW}]})
            assert r.status_code == 400
            r = api.post(f"/csc/{version}/credentials/authorize", headers=h, json=auth_body)
            assert r.status_code == 200, r.text
            sad = cap.created_here(r.json()["SAD"])
            r = api.post(f"/csc/{version}/credentials/extendTransaction", headers=h,
                         json={"credentialID": contract, "SAD": sad})
            assert r.status_code == 200, r.text
            cap.created_here(sad)  # echoed by the specification
            r = api.post(f"/csc/{version}/signatures/signHash", headers=h, json={
                "credentialID": contract, "SAD": sad, "hashes": [_d(b"c")],
                "hashAlgorithmOID": SHA256_OID, "signAlgo": ECDSA_SHA256})
            assert r.status_code == 200, r.text
            assert api.post(f"/csc/{version}/credentials/list", headers=h,
                            json={"credentialInfo": True, "certificates": "chain"}
                            ).status_code == 200
        r = api.post("/api/v1/me/approval-password/reset", headers=h, json={
            "approval_password": "5820", "account_password": WRONG_PW})
        assert r.status_code == 401
        r = api.post("/api/v1/me/approval-password/reset", headers=h, json={
            "approval_password": APPROVAL_PW, "account_password": PASSWORD})
        assert r.status_code == 200, r.text

        # -- what administrators read -------------------------------------------------
        e = auth(eseal)
        for path in ("/log", "/log.csv", "/log/checkpoint", "/log/verifier-key",
                     "/log/entries", "/security-events", "/quota"):
            r = api.get(f"/api/v1/organizations/{a.id}{path}", headers=e)
            assert r.status_code in (200, 403), (path, r.text)
        assert api.get("/api/v1/me/log", headers=h).status_code == 200
        for path in ("", "/certificates", "/chain.pem", "/grants"):
            api.get(f"/api/v1/seals/{contract}{path}", headers=e)
        for path in ("/pki/root.pem", "/pki/crl/issuing.crl", "/api/v1/openapi.json"):
            assert api.get(path).status_code == 200

    # -- the console ------------------------------------------------------------------
    with _browser(app, cap) as wrong:
        page = wrong.get("/console/signin")
        r = wrong.post("/console/signin", data={"csrf_token": _csrf(page.text),
                                                "email": a.emails["employee"],
                                                "password": WRONG_PW}, follow_redirects=False)
        assert r.status_code in (400, 401, 403, 200), r.status_code
    with _browser(app, cap) as browser:
        page = browser.get("/console/signin")
        r = browser.post("/console/signin", data={"csrf_token": _csrf(page.text),
                                                  "email": a.emails["employee"],
                                                  "password": PASSWORD},
                         follow_redirects=False)
        assert r.status_code == 303, r.text
        cookies = [v for k, v in browser.cookies.items()]
        assert cookies
        for c in cookies:
            cap.allowed.setdefault(c, set()).add(len(cap.responses) - 1)
        my = browser.get("/console/my")
        assert my.status_code == 200
        r = browser.post("/console/my/tokens", data={"csrf_token": _csrf(my.text),
                                                     "name": "from the console"})
        assert r.status_code == 201, r.text
        new = [t for t in TOKEN_RE.findall(r.text)]
        assert len(set(new)) == 1, new
        cap.created_here(new[0])
        my = browser.get("/console/my")
        r = browser.post("/console/my/approval/reset", data={
            "csrf_token": _csrf(my.text), "approval_password": "5555",
            "approval_password2": "5556", "account_password": PASSWORD})
        assert r.status_code == 400, r.status_code
        for path in ("/console/my/log", "/console/my/log.csv", "/console/account"):
            browser.get(path)
    with _browser(app, cap) as admin_browser:
        page = admin_browser.get("/console/signin")
        admin_browser.post("/console/signin", data={"csrf_token": _csrf(page.text),
                                                    "email": a.emails["eseal_admin"],
                                                    "password": PASSWORD})
        for path in ("/console/seals", "/console/seals/grants", "/console/seals/log",
                     f"/console/seals/{contract}"):
            assert admin_browser.get(path).status_code == 200, path
        for c in admin_browser.cookies.values():
            cap.allowed.setdefault(c, set())

    # -- the checks -------------------------------------------------------------------------
    logs = []
    for rec in caplog.records:
        text = rec.getMessage()
        if rec.exc_info:
            text += "\n" + logging.Formatter().formatException(rec.exc_info)
        logs.append(f"{rec.name}: {text}")
    assert len(cap.responses) > 50 and logs
    master = (runtime.settings.data_dir / "master.key")
    master_text = master.read_bytes() if master.exists() else b""
    secrets = {t: cap.allowed.get(t, set()) for t in
               [*world.a.tokens.values(), *world.b.tokens.values(), world.operator_token,
                world.outsider_token, *cap.allowed]}
    secrets.update({PASSWORD: set(), SIGNUP_PW: set(), WRONG_PW: set()})
    if master_text:
        secrets[base64.b64encode(master_text).decode()] = set()
        secrets[master_text.decode("latin-1").strip()] = set()
    for i, seen in enumerate(cap.responses):
        where = f"response {i} ({seen.method} {seen.path} -> {seen.status})"
        for secret, ok in secrets.items():
            if i in ok:
                continue
            assert secret not in seen.body, f"{where} shows a secret {secret[:6]}…"
            # Set-Cookie is the cookie's own channel; any other header may not carry it.
            for k, v in seen.headers.items():
                assert k == "set-cookie" or secret not in v, f"{where}: header {k}"
        assert "PRIVATE KEY" not in seen.body, where
        for value in (APPROVAL_PW, WRONG_APPROVAL_PW, "5555", "5556", "5820"):
            assert value not in _json_strings(seen.body), f"{where} echoes an approval password"
            assert f'value="{value}"' not in seen.body, f"{where} echoes an approval password"
    for line in logs:
        for secret in secrets:
            assert secret not in line, f"log line shows a secret {secret[:6]}…: {line[:200]}"
        assert "PRIVATE KEY" not in line, line[:200]
        for value in (APPROVAL_PW, WRONG_APPROVAL_PW, "5555", "5556", "5820"):
            assert not re.search(rf"\b{value}\b", line), line[:300]
        assert not TOKEN_RE.search(line), line[:300]
