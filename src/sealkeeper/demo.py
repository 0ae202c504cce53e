"""The demo organization, seeded idempotently by ``sealkeeper serve --demo``.

Creates "Example Ltd" (domain example.com, validated), an operator, an
account administrator, an e-seal administrator and two employees (the first
granted the contract and invoice seals), credits quota, and writes
``demo.json`` (mode 0600) into the data directory with URLs, accounts,
passwords, API tokens and SealIDs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sealkeeper.accounts.models import OneTimePurpose, User
from sealkeeper.authz import Actor
from sealkeeper.crypto.secrets import token_hash
from sealkeeper.orgs.letters import UploadedFile
from sealkeeper.orgs.models import Organization, OrgStatus
from sealkeeper.runtime import Runtime
from sealkeeper.seals.models import SealType
from sealkeeper.services import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

ORG_NAME = "Example Ltd"
DOMAIN = "example.com"
DEMO_QUOTA = 1000


@dataclass(frozen=True)
class DemoUser:
    role: str
    email: str
    name: str
    grants: tuple[SealType, ...] = ()


USERS = [
    DemoUser("operator", "operator@example.org", "Demo Operator"),
    DemoUser("account_admin", "admin@example.com", "Ada Admin"),
    DemoUser("eseal_admin", "seals@example.com", "Sam Sealkeeper"),
    DemoUser("employee", "alice@example.com", "Alice Example",
             (SealType.CONTRACT, SealType.INVOICE)),
    DemoUser("employee", "bob@example.com", "Bob Example"),
]

# A one-page PDF standing in for the signed authorization letter.
_LETTER = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
           b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
           b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
           b"trailer<</Root 1 0 R>>\n%%EOF\n")


def seed(rt: Runtime) -> dict[str, Any]:
    """Create what is missing and (re)write demo.json; safe to run many times."""
    path = rt.settings.data_dir / "demo.json"
    previous = _read(path)
    old_users = {u["email"]: u for u in previous.get("users", [])}
    with unit_of_work(rt) as uow:
        out = _seed(uow, old_users)
    out["base_url"] = rt.settings.base_url
    _write(path, out)
    return out


def _seed(uow: UnitOfWork, old_users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    passwords: dict[str, str] = {}
    users: dict[str, User] = {}

    def keep_password(user: User) -> None:
        """Reuse the password from the last demo.json if it still works."""
        password = old_users.get(user.email, {}).get("password") or ""
        if not password or not uow.rt.passwords.verify(user.password_hash or "", password):
            password = _password()
            uow.accounts.set_password(user, password)
        passwords[user.email] = password

    def ensure_account(d: DemoUser, operator: bool = False) -> User:
        user = uow.accounts.find_by_email(d.email)
        if user is None:
            passwords[d.email] = _password()
            return uow.accounts.signup(d.email, passwords[d.email], d.name,
                                       is_operator=operator)
        keep_password(user)
        return user

    operator = ensure_account(USERS[0], operator=True)
    op = uow.accounts.actor_for(operator)
    admin = ensure_account(USERS[1])
    org = uow.session.scalar(select(Organization).where(Organization.legal_name == ORG_NAME,
                                                        Organization.status ==
                                                        OrgStatus.VALIDATED))
    if org is None:
        org = uow.orgs.apply(uow.accounts.actor_for(admin), legal_name=ORG_NAME,
                             registration_number="EX-0001", domains=[DOMAIN],
                             eseal_admin_email=USERS[2].email,
                             letter=UploadedFile("authorization-letter.pdf", "application/pdf",
                                                 _LETTER))
        uow.orgs.approve(op, org.id)
        uow.orgs.mark_domain_validated(op, org.id, DOMAIN)
        uow.quota.credit(op, org.id, DEMO_QUOTA, "demo")
    uow.session.flush()
    users[USERS[0].email] = operator
    users[USERS[1].email] = admin
    acct = uow.accounts.actor_for(admin)
    for d in USERS[2:]:
        user = uow.accounts.find_by_email(d.email)
        if user is None:
            user = uow.employees.add(acct, org.id, d.email, d.name)
        if user.validated_at is None:
            link = uow.accounts.issue_one_time(user, OneTimePurpose.EMPLOYEE_VALIDATION)
            password = _password()
            uow.employees.validate(link, password, d.name)
            passwords[d.email] = password
        else:
            keep_password(user)
        users[d.email] = user
    uow.outbox.drain()  # the demo accounts are validated already: no mail
    eseal = uow.accounts.actor_for(users[USERS[2].email])
    org_seals = {s.type: s for s in uow.seals.organization_seals(eseal, org.id)}
    for d in USERS:
        for t in d.grants:
            uow.grants.grant(eseal, org_seals[t].seal_id, users[d.email].id)
    uow.session.flush()

    out_users = []
    for d in USERS:
        user = users[d.email]
        actor = uow.accounts.actor_for(user)
        token: str = old_users.get(d.email, {}).get("token") or ""
        if not _token_alive(uow, token):
            _, token = uow.accounts.create_token(actor, "demo")
        approval = _approval_password(uow, actor, old_users.get(d.email, {}))
        out_users.append({
            "role": d.role, "email": d.email, "name": d.name, "password": passwords[d.email],
            "token": token, "approval_password": approval,
            "seal_ids": [s.seal_id for s, _ in uow.seals.my_seals(actor)],
        })
    return {
        "organization": {"id": org.id, "name": org.legal_name},
        "users": out_users,
        "seals": [{"seal_id": s.seal_id, "type": s.type.value, "name": s.name}
                  for s in uow.seals.organization_seals(eseal, org.id)
                  if s.type.is_organizational],
    }


def _approval_password(uow: UnitOfWork, actor: Actor, old: dict[str, Any]) -> str:
    """Keep the approval password recorded in the last demo.json, else set a new one."""
    cred = uow.approvals.credential(actor.user_id)
    previous = old.get("approval_password")
    if cred is not None and cred.password_hash is not None and previous:
        return str(previous)
    pin = f"{secrets.randbelow(10_000):04d}"
    if cred is None or cred.password_hash is None:
        uow.approvals.set_password(actor, pin)
    else:
        uow.approvals.overwrite(actor.user_id, pin)
    return pin


def _token_alive(uow: UnitOfWork, token: str) -> bool:
    from sealkeeper.accounts.models import ApiToken

    if not token:
        return False
    tok = uow.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    return tok is not None and tok.revoked_at is None


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(12)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
