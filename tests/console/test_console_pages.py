"""The console pages for each role: what each may open, forms that work and
show errors next to the field, escaping, images, bulk grants, the usage log
with filters and CSV, quota orders and credits, tokens and the approval
password."""

from __future__ import annotations

import re

from console_helpers import post, signin
from sqlalchemy import select

from factories import LETTER, PASSWORD
from sealkeeper.seals.models import Grant
from sealkeeper.services import UnitOfWork

PAGES = {
    "operator": ["/console/", "/console/operator", "/console/operator?status=all",
                 "/console/verify", "/console/account"],
    "account_admin": ["/console/", "/console/employees", "/console/domains",
                      "/console/organization", "/console/api", "/console/api/guide",
                      "/console/my", "/console/my/log"],
    "eseal_admin": ["/console/", "/console/seals", "/console/seals/grants",
                    "/console/seals/log", "/console/seals/log?kind=grant",
                    "/console/seals/security", "/console/my", "/console/api"],
    "employee": ["/console/", "/console/my", "/console/my/log", "/console/api",
                 "/console/verify", "/console/account"],
}
FORBIDDEN = {
    "employee": ["/console/seals", "/console/seals/grants", "/console/seals/log",
                 "/console/seals/security", "/console/employees", "/console/operator"],
    "account_admin": ["/console/operator"],
    "eseal_admin": ["/console/operator"],
}


def _login(browser, world, role):
    email = "operator@operator.example" if role == "operator" else world.a.emails[role]
    return signin(browser(), email)


def test_every_role_opens_its_pages_and_not_the_others(world, browser):
    for role, pages in PAGES.items():
        b = _login(browser, world, role)
        for url in pages:
            r = b.get(url)
            assert r.status_code == 200, (role, url, r.text[:500])
            assert "<main" in r.text and 'name="csrf_token"' in r.text
        for url in FORBIDDEN.get(role, []):
            r = b.get(url, follow_redirects=False)
            assert r.status_code == 403, (role, url)
            assert "Not allowed" in r.text
    # The account administrator may read the seals and grants, not change them.
    b = _login(browser, world, "account_admin")
    held = f"{world.a.seals['contract']}:{world.a.users['employee']}"
    assert post(b, "/console/seals/grants", {"grant": [held]},
                page="/console/seals/grants").status_code == 403
    assert post(b, "/console/seals/grants", {"grant": []},
                page="/console/seals/grants").status_code == 403
    b = _login(browser, world, "operator")
    assert b.get(f"/console/operator/organizations/{world.a.id}").status_code == 200
    b = _login(browser, world, "eseal_admin")
    assert b.get(f"/console/seals/{world.a.seals['contract']}").status_code == 200
    assert b.get(f"/console/seals/{world.b.seals['contract']}").status_code == 404
    assert b.get("/console/no/such/page").status_code == 404
    # Not signed in: a redirect to the sign-in page, which comes back afterwards.
    r = browser().get("/console/seals/log?seal_id=x", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/signin?next=/console/seals/log"


def test_seal_images_need_a_session_and_a_right_to_the_seal(world, browser):
    employee = _login(browser, world, "employee")
    ok = employee.get(f"/console/seals/{world.a.seals['contract']}/image.png")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    assert ok.content.startswith(b"\x89PNG")
    assert employee.get(f"/console/seals/{world.a.seals['official']}/image.png"
                        ).status_code == 404
    assert employee.get(f"/console/seals/{world.b.seals['contract']}/image.png"
                        ).status_code == 404
    r = browser().get(f"/console/seals/{world.a.seals['contract']}/image.png",
                      follow_redirects=False)
    assert r.status_code == 303


def test_everything_is_escaped(world, browser, runtime):
    evil = '<script>alert("x")</script>'
    b = _login(browser, world, "account_admin")
    r = post(b, "/console/employees", {"email": f"eve@{world.a.domain}",
                                       "display_name": evil}, page="/console/employees")
    assert r.status_code == 303
    page = b.get("/console/employees").text
    assert evil not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    r = post(b, "/console/employees", {"email": f"nul@{world.a.domain}",
                                       "display_name": "a\x00b"}, page="/console/employees")
    assert r.status_code == 400 and 'id="e-display_name"' in r.text
    r = post(b, "/console/employees", {"email": f"{evil}@x", "display_name": "x"},
             page="/console/employees")
    assert r.status_code == 400 and "<script>" not in r.text.split("</main>")[0].split(
        "<main")[1]


def test_bulk_grants(world, browser, runtime):
    a = world.a
    b = _login(browser, world, "eseal_admin")
    page = b.get("/console/seals/grants").text
    held = f'{a.seals["contract"]}:{a.users["employee"]}'
    assert re.search(rf'value="{held}"[^>]*checked', page)
    wanted = [f'{a.seals["invoice"]}:{a.users["employee"]}',
              f'{a.seals["invoice"]}:{a.users["employee2"]}',
              f'{a.seals["financial"]}:{a.users["employee2"]}']
    r = post(b, "/console/seals/grants", {"grant": wanted}, page="/console/seals/grants")
    assert r.status_code == 303
    assert "3 grants given, 1 withdrawn" in b.get("/console/seals/grants").text
    with runtime.session_factory() as s:
        active = s.scalars(select(Grant).where(Grant.withdrawn_at.is_(None))).all()
        assert len([g for g in active if g.user_id in (a.users["employee"],
                                                       a.users["employee2"])]) == 3
    r = post(b, "/console/seals/grants", {"grant": [f"{world.b.seals['invoice']}:x"]},
             page="/console/seals/grants")
    assert r.status_code == 400 and "unknown seal" in r.text


def test_grant_withdraw_disable_enable(world, browser):
    a = world.a
    b = _login(browser, world, "eseal_admin")
    seal = a.seals["official"]
    r = post(b, f"/console/seals/{seal}/grants", {"user_id": ""}, page="/console/seals")
    assert r.status_code == 400 and 'id="e-user_id"' in r.text
    r = post(b, f"/console/seals/{seal}/grants", {"user_id": a.users["employee2"]},
             page="/console/seals")
    assert r.status_code == 303
    employee2 = _login(browser, world, "employee2")
    assert seal in employee2.get("/console/my").text
    r = post(b, f"/console/seals/{seal}/grants/{a.users['employee2']}/withdraw",
             page="/console/seals")
    assert r.status_code == 303
    assert seal not in employee2.get("/console/my").text
    assert post(b, f"/console/seals/{seal}/status", {"enabled": "0"},
                page="/console/seals").status_code == 303
    assert "Disabled" in b.get("/console/seals").text or "disabled" in b.get(
        "/console/seals").text
    assert post(b, f"/console/seals/{seal}/status", {"enabled": "1"},
                page="/console/seals").status_code == 303


def _sign(runtime, world, file_name: str) -> str:
    """One signature through the real signing service; returns the digest."""
    import hashlib

    from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
    from sealkeeper.signing.service import Document

    digest = hashlib.sha256(file_name.encode()).digest()
    uow = UnitOfWork(runtime)
    try:
        user = uow.accounts.find_by_email(world.a.emails["employee"])
        actor = uow.accounts.actor_for(user)
        uow.approvals.overwrite(user.id, "1357")
        uow.commit()
        uow.signing.sign_documents(
            actor, world.a.seals["contract"],
            [Document(file_name, Hashed(DigestAlgorithm.SHA256, digest))],
            password="1357", api="native")
        uow.commit()
    finally:
        uow.close()
    return digest.hex()


def test_usage_log_filters_csv_and_checkpoint(world, browser, runtime):
    d1 = _sign(runtime, world, "invoice-<1>.pdf")
    _sign(runtime, world, "offer.pdf")
    b = _login(browser, world, "eseal_admin")
    page = b.get("/console/seals/log").text
    assert "invoice-&lt;1&gt;.pdf" in page and "offer.pdf" in page and d1 in page
    assert 'id="checkpoint"' in page
    page = b.get(f"/console/seals/log?file_digest={d1}").text
    assert d1 in page and "offer.pdf" not in page
    page = b.get("/console/seals/log?file_name=OFFER").text
    assert "offer.pdf" in page and "invoice-" not in page
    r = b.get("/console/seals/log?since=yesterday")
    assert r.status_code == 400 and "2026-01-31" in r.text
    csv = b.get(f"/console/seals/log.csv?seal_id={world.a.seals['contract']}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("seq,time,kind")
    assert "offer.pdf" in csv.text and d1 in csv.text
    # The employee sees their own entries; the other employee sees none.
    me = _login(browser, world, "employee")
    assert "offer.pdf" in me.get("/console/my/log").text
    assert "offer.pdf" in me.get("/console/my/log.csv").text
    other = _login(browser, world, "employee2")
    assert "offer.pdf" not in other.get("/console/my/log").text


def test_security_log_page_filters_and_csv(world, browser, runtime):
    from sealkeeper.audit import SecurityEventDraft, record_security_event

    a = world.a
    uow = UnitOfWork(runtime)
    try:
        record_security_event(uow.session, uow.clock, SecurityEventDraft(
            action="sign", reason="approval_refused", message="wrong <b>password</b>",
            organization_id=a.id, user_id=a.users["employee"], seal_id=a.seals["contract"],
            api="native"))
        record_security_event(uow.session, uow.clock, SecurityEventDraft(
            action="sign", reason="quota_exhausted", message="no quota left",
            organization_id=a.id, user_id=a.users["employee2"]))
        record_security_event(uow.session, uow.clock, SecurityEventDraft(
            action="sign", reason="approval_refused", message="in organization B",
            organization_id=world.b.id, user_id=world.b.users["employee"]))
        uow.commit()
    finally:
        uow.close()
    for role in ("eseal_admin", "account_admin"):
        b = _login(browser, world, role)
        page = b.get("/console/seals/security").text
        assert "wrong &lt;b&gt;password&lt;/b&gt;" in page and "no quota left" in page
        assert a.emails["employee"] in page and "in organization B" not in page
    page = b.get("/console/seals/security?reason=quota_exhausted").text
    assert "no quota left" in page and "wrong &lt;b&gt;" not in page
    page = b.get(f"/console/seals/security?user_id={a.users['employee']}").text
    assert "wrong &lt;b&gt;" in page and "no quota left" not in page
    r = b.get("/console/seals/security?since=yesterday")
    assert r.status_code == 400 and "2026-01-31" in r.text
    csv = b.get("/console/seals/security.csv?reason=approval_refused")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("time,action,reason") and len(lines) == 2
    assert "wrong <b>password</b>" in lines[1]
    assert _login(browser, world, "employee").get(
        "/console/seals/security.csv", follow_redirects=False).status_code == 403


def test_quota_order_and_operator_credit(world, browser, runtime):
    admin = _login(browser, world, "account_admin")
    r = post(admin, "/console/api/quota/orders", {"units": "lots"}, page="/console/api")
    assert r.status_code == 400 and 'id="e-units"' in r.text
    r = post(admin, "/console/api/quota/orders", {"units": "40"}, page="/console/api")
    assert r.status_code == 303
    assert 'id="quota-balance">100<' in admin.get("/console/api").text
    op = _login(browser, world, "operator")
    review = f"/console/operator/organizations/{world.a.id}"
    page = op.get(review).text
    order = re.search(r"/quota/orders/([0-9a-f]{32})/credit", page).group(1)
    r = post(op, f"{review}/quota/orders/{order}/credit", {"reference": "INV-7"}, page=review)
    assert r.status_code == 303
    assert 'id="quota-balance">140<' in admin.get("/console/api").text
    assert "INV-7" in admin.get("/console/api").text
    # Employees read the API document but have no quota page.
    emp = _login(browser, world, "employee")
    assert "quota-balance" not in emp.get("/console/api").text
    spec = emp.get("/console/api/openapi.json")
    assert spec.status_code == 200 and "attachment" in spec.headers["content-disposition"]
    assert spec.json()["openapi"].startswith("3.")
    assert "/api/v1/me/tokens" in emp.get("/console/api/guide").text


def test_reject_with_a_reason(world, browser, runtime, tmp_path):
    applicant = browser()
    from console_helpers import csrf_of

    page = applicant.get("/console/signup")
    applicant.post("/console/signup", data={
        "csrf_token": csrf_of(page.text), "display_name": "Delta", "email": "d@delta.example",
        "password": PASSWORD, "password2": PASSWORD})
    r = post(applicant, "/console/apply", {
        "legal_name": "Delta Ltd", "registration_number": "D-1",
        "domains": "delta.example, mail.delta.example",
        "eseal_admin_email": "seals@delta.example"},
        files={"letter": ("letter.pdf", LETTER.data, "application/pdf")})
    assert r.status_code == 303
    op = _login(browser, world, "operator")
    listing = op.get("/console/operator").text
    org_id = re.search(r"/console/operator/organizations/([0-9a-f]{32})", listing).group(1)
    review = f"/console/operator/organizations/{org_id}"
    page = op.get(review).text
    assert "Delta Ltd" in page and "letter.pdf" in page
    letter = re.search(rf"/console/organizations/{org_id}/letters/([0-9a-f]{{32}})", page)
    got = op.get(letter.group(0))
    assert got.content == LETTER.data and "attachment" in got.headers["content-disposition"]
    r = post(op, f"{review}/reject", {"reason": "  "}, page=review)
    assert r.status_code == 400 and 'id="e-reason"' in r.text
    r = post(op, f"{review}/reject", {"reason": "The letter is not signed."}, page=review)
    assert r.status_code == 303
    # The applicant may apply again; the reason went by mail (outbox files here).
    assert applicant.get("/console/apply").status_code == 200


def test_tokens_and_approval_password(world, browser, runtime):
    b = _login(browser, world, "employee2")
    page = b.get("/console/my").text
    assert "Set password" in page
    r = post(b, "/console/my/approval/set", {"approval_password": "12a4",
                                             "approval_password2": "12a4"}, page="/console/my")
    assert r.status_code == 400 and "exactly 4 digits" in r.text
    r = post(b, "/console/my/approval/set", {"approval_password": "1234",
                                             "approval_password2": "4321"}, page="/console/my")
    assert r.status_code == 400 and 'id="e-approval_password2"' in r.text
    assert post(b, "/console/my/approval/set", {"approval_password": "1234",
                                                "approval_password2": "1234"},
                page="/console/my").status_code == 303
    # Reset within five minutes of signing in needs no account password...
    assert post(b, "/console/my/approval/reset", {"approval_password": "5678",
                                                  "approval_password2": "5678"},
                page="/console/my").status_code == 303
    # ...a wrong account password is refused.
    r = post(b, "/console/my/approval/reset", {"approval_password": "5678",
                                               "approval_password2": "5678",
                                               "account_password": "not mine at all"},
             page="/console/my")
    assert r.status_code == 401

    r = post(b, "/console/my/tokens", {"name": "robot",
                                       "seal_ids": [world.a.personal["employee2"]]},
             page="/console/my")
    assert r.status_code == 201
    token = re.search(r'id="new-token">(skt_[^<]+)<', r.text).group(1)
    assert token not in b.get("/console/my").text  # shown once
    assert b.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}
                 ).status_code == 200
    row = next(tr for tr in b.get("/console/my").text.split("<tr>") if "robot" in tr)
    token_id = re.search(r"/console/my/tokens/([0-9a-f]{32})/revoke", row).group(1)
    assert post(b, f"/console/my/tokens/{token_id}/revoke",
                page="/console/my").status_code == 303
    assert b.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}
                 ).status_code == 401
    r = post(b, "/console/my/tokens", {"name": "x", "seal_ids": [world.a.seals["official"]]},
             page="/console/my")
    assert r.status_code == 404


def test_employee_delete_needs_confirmation_and_revokes(world, browser, runtime):
    a = world.a
    b = _login(browser, world, "account_admin")
    page = b.get(f"/console/employees/{a.users['employee']}/delete").text
    assert "will be revoked" in page and a.personal["employee"] in page
    assert "Contract Seal" in page
    r = post(b, f"/console/employees/{a.users['employee']}/delete", page="/console/employees")
    assert r.status_code == 303
    row = b.get("/console/employees").text
    assert "revoked" in row.lower()
    r = post(b, f"/console/employees/{a.users['employee']}/delete", page="/console/employees")
    assert r.status_code == 409
    # The administrators cannot be deleted from here.
    r = post(b, f"/console/employees/{a.users['eseal_admin']}/delete",
             page="/console/employees")
    assert r.status_code == 409 and "e-seal administrator cannot be deleted" in r.text


def test_verify_page_reports_bad_input_next_to_the_field(world, browser):
    b = browser()
    page = b.get("/console/verify")
    assert page.status_code == 200
    if 'id="f-file"' not in page.text:  # the report module is not there
        return
    r = post(b, "/console/verify", files={"file": ("a.pdf", b"not a pdf", "application/pdf")},
             page="/console/verify")
    assert r.status_code == 400 and "not a PDF" in r.text
    r = post(b, "/console/verify", page="/console/verify")
    assert r.status_code == 400 and 'id="e-file"' in r.text
