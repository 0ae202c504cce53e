"""Every API route × every role × own / other organization.

For each route the table names the roles allowed; everyone else must be
refused: anonymous callers with 401, members of the organization without the
role with 403, and everyone outside it with 404 (another organization's
objects do not exist for them). Operator-only routes answer 403 to everyone
else whatever the id. The refused roles go first, so an allowed call that
changes state runs last; a test then checks that the table covers every
route of the app.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import pytest

from factories import LETTER, PASSWORD, World, auth
from sealkeeper.services import UnitOfWork

DIGEST = base64.b64encode(hashlib.sha256(b"document").digest()).decode()
ROLES = ["anonymous", "outsider", "operator", "a.account_admin", "a.eseal_admin",
         "a.employee", "a.employee2", "b.account_admin", "b.eseal_admin", "b.employee"]
A_MEMBERS = {r for r in ROLES if r.startswith("a.")}
A_ADMINS = {"a.account_admin", "a.eseal_admin"}
EVERYONE = set(ROLES) - {"anonymous"}


@dataclass
class Case:
    method: str
    path: str
    allowed: set[str]
    ok: int = 200
    body: dict[str, Any] | None = None
    multipart: bool = False
    operator_only: bool = False   # everyone but the operator gets 403
    org_scoped: bool = True       # non-members get 404 (else 403)
    overrides: dict[str, int] = field(default_factory=dict)
    file_field: str = "letter"
    id: str = ""


CASES = [
    Case("GET", "/api/v1/me", EVERYONE, org_scoped=False),
    Case("GET", "/api/v1/me/seals", EVERYONE, org_scoped=False),
    Case("GET", "/api/v1/me/tokens", EVERYONE, org_scoped=False),
    Case("POST", "/api/v1/me/tokens", EVERYONE, 201, {"name": "x"}, org_scoped=False),
    Case("DELETE", "/api/v1/me/tokens/{token_id}", {"a.employee"}, org_scoped=False),
    Case("POST", "/api/v1/organizations", {"outsider"}, 201, multipart=True, org_scoped=False,
         overrides={r: 409 for r in EVERYONE - {"outsider"}}),
    Case("GET", "/api/v1/organizations", {"operator"}, operator_only=True),
    Case("GET", "/api/v1/organizations/{org}", A_MEMBERS | {"operator"}),
    Case("POST", "/api/v1/organizations/{pending}/approve", {"operator"}, operator_only=True),
    Case("POST", "/api/v1/organizations/{pending}/reject", {"operator"},
         body={"reason": "incomplete"}, operator_only=True),
    Case("GET", "/api/v1/organizations/{org}/letters", {"operator", "a.account_admin"}),
    Case("POST", "/api/v1/organizations/{org}/letters", {"a.account_admin"}, 201,
         multipart=True),
    Case("GET", "/api/v1/organizations/{org}/letters/{letter}/file",
         {"operator", "a.account_admin"}),
    Case("POST", "/api/v1/organizations/{org}/letters/{pending_letter}/approve", {"operator"},
         operator_only=True),
    Case("POST", "/api/v1/organizations/{org}/letters/{pending_letter}/reject", {"operator"},
         body={"reason": "not signed"}, operator_only=True),
    Case("GET", "/api/v1/organizations/{org}/domains", A_MEMBERS | {"operator"}),
    Case("POST", "/api/v1/organizations/{org}/domains", {"a.account_admin"}, 201,
         {"name": "alpha-two.example"}),
    Case("POST", "/api/v1/organizations/{org}/domains/{domain}/validate", {"operator"},
         operator_only=True),
    Case("GET", "/api/v1/organizations/{org}/employees", A_ADMINS),
    Case("POST", "/api/v1/organizations/{org}/employees", {"a.account_admin"}, 201,
         {"email": "carol@alpha.example", "display_name": "Carol"}),
    Case("GET", "/api/v1/organizations/{org}/employees/{user}", A_ADMINS),
    Case("POST", "/api/v1/organizations/{org}/employees/{invited}/resend",
         {"a.account_admin"}),
    Case("DELETE", "/api/v1/organizations/{org}/employees/{user}", {"a.account_admin"}),
    Case("GET", "/api/v1/organizations/{org}/seals", A_ADMINS),
    Case("GET", "/api/v1/seals/{seal}", A_ADMINS | {"a.employee"},
         overrides={"a.employee2": 404}),
    Case("POST", "/api/v1/seals/{seal}/disable", {"a.eseal_admin"}),
    Case("POST", "/api/v1/seals/{seal}/enable", {"a.eseal_admin"}),
    Case("GET", "/api/v1/seals/{seal}/grants", A_ADMINS),
    Case("POST", "/api/v1/seals/{seal}/grants", {"a.eseal_admin"}, 201,
         {"user_id": "{user}"}),
    Case("DELETE", "/api/v1/seals/{seal}/grants/{grantee}", {"a.eseal_admin"}),
    Case("GET", "/api/v1/seals/{seal}/certificates", A_ADMINS | {"a.employee"},
         overrides={"a.employee2": 404}),
    Case("GET", "/api/v1/seals/{seal}/chain.pem", A_ADMINS | {"a.employee"},
         overrides={"a.employee2": 404}),
    Case("GET", "/api/v1/seals/{seal}/csr", {"a.eseal_admin"}),
    # The allowed caller passes authorization; its JSON body is then refused as a chain.
    Case("POST", "/api/v1/seals/{seal}/certificate", {"a.eseal_admin"}, 400, body={}),
    Case("POST", "/api/v1/seals/{seal}/renew", {"a.eseal_admin"}),
    Case("POST", "/api/v1/seals/{seal}/rekey", {"a.eseal_admin"}),
    Case("POST", "/api/v1/seals/{seal}/compromised", {"a.eseal_admin"}),
    Case("POST", "/api/v1/seals/{seal}/revoke", {"a.eseal_admin"},
         body={"reason": "cessation_of_operation"}),
    Case("GET", "/api/v1/seals/{seal}/image", A_ADMINS | {"a.employee"},
         overrides={"a.employee2": 404}),
    Case("POST", "/api/v1/seals/{seal}/image", {"a.eseal_admin"}, multipart=True,
         file_field="image"),
    Case("DELETE", "/api/v1/seals/{seal}/image", {"a.eseal_admin"}),
    # Signing: only the grantee (whose approval password is set) may use the seal;
    # other members have no grant (403), everyone else does not see the seal (404).
    Case("POST", "/api/v1/approvals", {"a.employee"}, 201,
         {"seal_id": "{seal}", "digests": [DIGEST], "approval_password": "1234"},
         org_scoped=True),
    Case("POST", "/api/v1/sign", {"a.employee"}, 200,
         {"seal_id": "{seal}", "approval_password": "1234",
          "documents": [{"file_name": "a.pdf", "digest": DIGEST}]}),
    Case("GET", "/api/v1/me/approval-password", EVERYONE, org_scoped=False),
    Case("POST", "/api/v1/me/approval-password", EVERYONE - {"a.employee"}, 201,
         {"approval_password": "2468"}, org_scoped=False, overrides={"a.employee": 409}),
    Case("POST", "/api/v1/me/approval-password/reset", EVERYONE, 200,
         {"approval_password": "1357", "account_password": PASSWORD}, org_scoped=False),
    Case("POST", "/api/v1/organizations/{org}/employees/{user}/approval-password/reset",
         {"a.account_admin"}),
    # Any signed-in user may verify; the allowed call has no file and is refused (400).
    Case("POST", "/api/v1/verify", EVERYONE, 400, body={}, org_scoped=False),
    Case("GET", "/api/v1/organizations/{org}/quota", A_ADMINS | {"operator"}),
    Case("POST", "/api/v1/organizations/{org}/quota/orders", A_ADMINS, 201, {"units": 10},
         overrides={"operator": 409}),
    Case("POST", "/api/v1/organizations/{org}/quota/credit", {"operator"}, 201,
         {"units": 10, "reference": "INV-1"}, operator_only=True),
    Case("POST", "/api/v1/quota/orders/{order}/credit", {"operator"}, body={},
         operator_only=True),
    # The usage log. Members read it (non-administrators only their own entries);
    # raw entries and the security log are for the two administrators.
    Case("GET", "/api/v1/organizations/{org}/log", A_MEMBERS),
    Case("GET", "/api/v1/organizations/{org}/log.csv", A_MEMBERS),
    Case("GET", "/api/v1/organizations/{org}/log/checkpoint", A_MEMBERS),
    Case("GET", "/api/v1/organizations/{org}/log/verifier-key", A_MEMBERS),
    # Members pass authorization, then are told to name an entry (seq or leaf_hash).
    Case("GET", "/api/v1/organizations/{org}/log/proof/inclusion", A_MEMBERS, 400),
    Case("GET", "/api/v1/organizations/{org}/log/proof/consistency?old=0", A_MEMBERS),
    Case("GET", "/api/v1/organizations/{org}/log/entries", A_ADMINS),
    Case("GET", "/api/v1/organizations/{org}/security-events", A_ADMINS),
    Case("GET", "/api/v1/organizations/{org}/security-events.csv", A_ADMINS),
    Case("GET", "/api/v1/me/log", EVERYONE, org_scoped=False),
    Case("GET", "/api/v1/me/log.csv", EVERYONE, org_scoped=False),
    # Encryption. The directory serves members of any validated organization.
    Case("GET", "/api/v1/directory?email=alice@alpha.example", EVERYONE - {"outsider", "operator"},
         org_scoped=False, overrides={"outsider": 403, "operator": 403}),
    Case("GET", "/api/v1/me/encryption-keys", EVERYONE, org_scoped=False),
    Case("POST", "/api/v1/organizations/{org}/encryption-key", {"a.eseal_admin"}, 201,
         {"algorithm": "ec-p256"}),
    Case("GET", "/api/v1/organizations/{org}/encryption-grants", A_ADMINS),
    Case("POST", "/api/v1/organizations/{org}/encryption-grants", {"a.eseal_admin"}, 201,
         {"user_id": "{user}"}),
    Case("DELETE", "/api/v1/organizations/{org}/encryption-grants/{grantee}",
         {"a.eseal_admin"}),
    # Only the recipient (a.employee) unwraps; a colleague's or another
    # organization's key does not exist for anyone else (404).
    Case("POST", "/api/v1/decrypt", {"a.employee"}, 200,
         {"recipient_info": "{recipient_info}", "file_name": "a.pdf.p7m",
          "file_digest": DIGEST, "approval_password": "1234"},
         org_scoped=False, overrides={"outsider": 403, "operator": 403}),
]
for c in CASES:
    c.id = f"{c.method} {c.path}"

PUBLIC = {("POST", "/api/v1/signup"), ("POST", "/api/v1/auth/token"),
          ("POST", "/api/v1/employees/validate")}


def expected(case: Case, role: str) -> int:
    if role == "anonymous":
        return 401
    if role in case.allowed:
        return case.ok
    if role in case.overrides:
        return case.overrides[role]
    if case.operator_only or not case.org_scoped:
        return 403 if case.operator_only else 404
    return 403 if role in A_MEMBERS else 404


def tokens(world: World) -> dict[str, str]:
    out = {"outsider": world.outsider_token, "operator": world.operator_token}
    for prefix, org in (("a", world.a), ("b", world.b)):
        for role, tok in org.tokens.items():
            out[f"{prefix}.{role}"] = tok
    return out


def extras(runtime, world: World, case: Case) -> dict[str, str]:
    """Objects some routes need: a pending organization and letter, an invited
    employee, a pending order, a token to revoke."""
    a = world.a
    uow = UnitOfWork(runtime)
    try:
        acc = uow.accounts
        applicant = acc.signup("founder@gamma.example", PASSWORD, "Founder")
        pending = uow.orgs.apply(acc.actor_for(applicant), legal_name="Gamma Ltd",
                                 registration_number="G-1", domains=["gamma.example"],
                                 eseal_admin_email="seals@gamma.example", letter=LETTER)
        admin = acc.actor_for(acc.find_by_email(a.emails["account_admin"]))
        letter_id = ""
        if "{pending_letter}" in case.path:
            letter_id = uow.orgs.submit_letter(admin, a.id, "bob@alpha.example", LETTER).id
        invited = uow.employees.add(admin, a.id, "dave@alpha.example", "Dave")
        order = uow.quota.place_order(admin, a.id, 5)
        employee = acc.actor_for(acc.find_by_email(a.emails["employee"]))
        tok, _ = acc.create_token(employee, "to revoke")
        uow.approvals.set_password(employee, "1234")
        recipient_info = ""
        if case.path == "/api/v1/decrypt":
            recipient_info = _recipient_info(uow, employee)
        if "/encryption-grants/{grantee}" in case.path:
            eseal = acc.actor_for(acc.find_by_email(a.emails["eseal_admin"]))
            uow.encryption.grant(eseal, a.id, a.users["employee"])
        uow.outbox.drain()
        uow.commit()
        first_letter = uow.orgs.letters(admin, a.id)[0].id
    finally:
        uow.close()
    return {"org": a.id, "pending": pending.id, "pending_letter": letter_id,
            "letter": first_letter, "invited": invited.id, "order": order.id,
            "token_id": tok.id, "user": a.users["employee2"], "grantee": a.users["employee"],
            "seal": a.seals["contract"], "domain": a.domain, "recipient_info": recipient_info}


def _recipient_info(uow: UnitOfWork, actor) -> str:
    """base64 of a recipient info addressed to the actor's encryption key."""
    from asn1crypto import cms
    from cryptography import x509

    from sealkeeper.client import crypt

    cert = x509.load_der_x509_certificate(uow.encryption.my_keys(actor)[0].certificate_der)
    blob = crypt.encrypt_cms(b"document", [cert])
    info = crypt.recipient_info_for(cms.ContentInfo.load(blob)["content"]["recipient_infos"],
                                    cert)
    assert info is not None
    return base64.b64encode(info).decode()


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (64, 64), (200, 0, 0, 255)).save(buf, "PNG")
    return buf.getvalue()


def call(client, case: Case, ids: dict[str, str], token: str | None):
    path = case.path.format(**ids)
    headers = auth(token) if token else {}
    if case.multipart and case.file_field == "image":
        return client.request(case.method, path, headers=headers,
                              files={"image": ("seal.png", _png(), "image/png")})
    if case.multipart:
        files = {"letter": ("letter.pdf", LETTER.data, "application/pdf")}
        data = {"eseal_admin_email": "seals@alpha.example"}
        if case.path == "/api/v1/organizations":
            data = {"legal_name": "New Org", "registration_number": "N-1",
                    "domains": "new.example", "eseal_admin_email": "seals@new.example"}
        return client.request(case.method, path, headers=headers, data=data, files=files)
    body = None
    if case.body is not None:
        body = {k: _fill(v, ids) for k, v in case.body.items()}
    return client.request(case.method, path, headers=headers, json=body)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_route_authorization(case: Case, client, world, runtime):
    ids = extras(runtime, world, case)
    toks = tokens(world)
    ordered = sorted(ROLES, key=lambda r: r in case.allowed)  # allowed roles last
    for role in ordered:
        r = call(client, case, ids, toks.get(role))
        want = expected(case, role)
        assert r.status_code == want, f"{role}: {r.status_code} {r.text}"
        if want >= 400:
            assert set(r.json()) >= {"error", "message"}, r.text
            if want == 404:
                # Nothing about the object leaks: not its name, not its id.
                for secret in (world.a.name, ids["org"]):
                    assert secret not in r.text


def api_routes(app) -> set[tuple[str, str]]:
    """Every (method, path) of the JSON API, from the OpenAPI document (which,
    unlike ``app.routes``, lists the routes of included routers too)."""
    return {(m.upper(), path) for path, ops in app.openapi()["paths"].items()
            if path.startswith("/api/v1") for m in ops}


_PLACEHOLDERS = {"{pending}": "{org_id}", "{org}": "{org_id}", "{token_id}": "{token_id}",
                 "{letter}": "{letter_id}", "{pending_letter}": "{letter_id}",
                 "{domain}": "{name}", "{user}": "{user_id}", "{invited}": "{user_id}",
                 "{seal}": "{seal_id}", "{grantee}": "{user_id}", "{order}": "{order_id}"}


def test_table_covers_every_route(client):
    routes = api_routes(client.app)
    assert len(routes) > 40  # the walk found the API
    table = set()
    for m, p in {(c.method, c.path) for c in CASES} | PUBLIC:
        p = p.split("?", 1)[0]
        for ph, real in _PLACEHOLDERS.items():
            p = p.replace(ph, real)
        table.add((m, p))
    missing = routes - table
    assert not missing, f"routes without an authorization row: {sorted(missing)}"
