"""Builders of test data through the real services (no fixtures in SQL).

``build_world`` makes an operator and two validated organizations, A and B,
each with an account administrator, an e-seal administrator, two validated
employees (the first granted A's contract seal), a validated domain, and
quota; every user has an API token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sealkeeper.accounts.models import OneTimePurpose
from sealkeeper.orgs.letters import UploadedFile
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork

LETTER = UploadedFile("letter.pdf", "application/pdf", b"%PDF-1.4\n%test letter\n%%EOF\n")
PASSWORD = "correct horse battery"


@dataclass
class OrgWorld:
    id: str
    name: str
    domain: str
    tokens: dict[str, str] = field(default_factory=dict)     # role -> API token
    users: dict[str, str] = field(default_factory=dict)      # role -> user id
    emails: dict[str, str] = field(default_factory=dict)     # role -> email
    seals: dict[str, str] = field(default_factory=dict)      # seal type -> SealID
    personal: dict[str, str] = field(default_factory=dict)   # role -> personal SealID


@dataclass
class World:
    operator_token: str
    operator_id: str
    a: OrgWorld
    b: OrgWorld
    outsider_token: str  # an account that belongs to no organization


def build_org(uow: UnitOfWork, op_actor: object, name: str, domain: str) -> OrgWorld:
    acc = uow.accounts
    admin = acc.signup(f"admin@{domain}", PASSWORD, f"{name} Admin")
    org = uow.orgs.apply(acc.actor_for(admin), legal_name=name, registration_number="R-" + name,
                         domains=[domain], eseal_admin_email=f"seals@{domain}", letter=LETTER)
    uow.orgs.approve(op_actor, org.id)  # type: ignore[arg-type]
    uow.orgs.mark_domain_validated(op_actor, org.id, domain)  # type: ignore[arg-type]
    uow.quota.credit(op_actor, org.id, 100, "test")  # type: ignore[arg-type]
    w = OrgWorld(id=org.id, name=name, domain=domain)
    w.users["account_admin"] = admin.id
    w.emails["account_admin"] = admin.email
    eseal = acc.find_by_email(f"seals@{domain}")
    assert eseal is not None
    uow.employees.validate(acc.issue_one_time(eseal, OneTimePurpose.EMPLOYEE_VALIDATION),
                           PASSWORD, f"{name} Seal Admin")
    w.users["eseal_admin"] = eseal.id
    w.emails["eseal_admin"] = eseal.email
    for role, local in (("employee", "alice"), ("employee2", "bob")):
        user = uow.employees.add(acc.actor_for(admin), org.id, f"{local}@{domain}",
                                 local.title())
        uow.employees.validate(acc.issue_one_time(user, OneTimePurpose.EMPLOYEE_VALIDATION),
                               PASSWORD)
        w.users[role] = user.id
        w.emails[role] = user.email
    eseal_actor = acc.actor_for(eseal)
    for s in uow.seals.organization_seals(eseal_actor, org.id):
        w.seals[str(s.type)] = s.seal_id
    uow.grants.grant(eseal_actor, w.seals["contract"], w.users["employee"])
    for role, uid in w.users.items():
        user = uow.session.get(type(admin), uid)
        assert user is not None
        _, w.tokens[role] = acc.create_token(acc.actor_for(user), "test")
        personal = uow.seals.personal_seal_of(uid)
        if personal is not None:
            w.personal[role] = personal.seal_id
    uow.outbox.drain()
    return w


def build_world(rt: Runtime) -> World:
    uow = UnitOfWork(rt)
    try:
        acc = uow.accounts
        uow.pki.init_ca()
        op = acc.signup("operator@operator.example", PASSWORD, "Operator", is_operator=True)
        op_actor = acc.actor_for(op)
        _, op_token = acc.create_token(op_actor, "test")
        a = build_org(uow, op_actor, "Alpha Ltd", "alpha.example")
        b = build_org(uow, op_actor, "Beta Ltd", "beta.example")
        outsider = acc.signup("nobody@elsewhere.example", PASSWORD, "Nobody")
        _, outsider_token = acc.create_token(acc.actor_for(outsider), "test")
        uow.commit()
    finally:
        uow.close()
    return World(operator_token=op_token, operator_id=op.id, a=a, b=b,
                 outsider_token=outsider_token)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
