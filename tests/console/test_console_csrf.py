"""Every console form needs this browser's CSRF token: a POST without it, or
with a wrong one, answers 403 and changes nothing."""

from __future__ import annotations

import pytest
from console_helpers import csrf_of, post, signin, token_for
from sqlalchemy import func, select

from sealkeeper.accounts.models import ApiToken, User
from sealkeeper.console.models import ConsoleSession
from sealkeeper.orgs.models import Organization
from sealkeeper.seals.models import Grant
from sealkeeper.signing.models import ApprovalCredential


def _count(runtime, model, *where) -> int:
    with runtime.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _forms(world):
    a = world.a
    return [
        # (who signs in, url, form, (model, where...) that must not change)
        ("account_admin", "/console/employees",
         {"email": f"carol@{a.domain}", "display_name": "Carol"}, (User,)),
        ("eseal_admin", f"/console/seals/{a.seals['official']}/grants",
         {"user_id": a.users["employee2"]}, (Grant,)),
        ("eseal_admin", "/console/seals/grants",
         {"grant": f"{a.seals['invoice']}:{a.users['employee']}"}, (Grant,)),
        ("employee", "/console/my/tokens", {"name": "stolen"}, (ApiToken,)),
        ("employee2", "/console/my/approval/set",
         {"approval_password": "1234", "approval_password2": "1234"}, (ApprovalCredential,)),
        ("eseal_admin", f"/console/seals/{a.seals['contract']}/status", {"enabled": "0"},
         None),
    ]


@pytest.mark.parametrize("case", range(6))
def test_post_without_the_right_token_is_403_and_changes_nothing(world, browser, runtime,
                                                                  case):
    role, url, form, model = _forms(world)[case]
    b = signin(browser(), world.a.emails[role])
    other = signin(browser(), world.a.emails[role])
    before = _count(runtime, *model) if model else None
    for data in (dict(form), {**form, "csrf_token": "0" * 64},
                 # the token of another signed-in browser (of the same user)
                 {**form, "csrf_token": token_for(other)}):
        r = b.post(url, data=data, follow_redirects=False)
        assert r.status_code == 403, r.text
        assert "text/html" in r.headers["content-type"]
        assert "did not come from this site" in r.text
        if model:
            assert _count(runtime, *model) == before
    # The same form with the right token works.
    r = b.post(url, data={**form, "csrf_token": token_for(b)}, follow_redirects=False)
    assert r.status_code in (201, 303), r.text
    if model:
        assert _count(runtime, *model) == before + 1


def test_seal_status_unchanged_without_token(world, browser, runtime):
    b = signin(browser(), world.a.emails["eseal_admin"])
    seal = world.a.seals["contract"]
    r = b.post(f"/console/seals/{seal}/status", data={"enabled": "0"})
    assert r.status_code == 403
    assert "Disable" in b.get("/console/seals").text
    r = post(b, f"/console/seals/{seal}/status", {"enabled": "0"})
    assert r.status_code == 303
    page = b.get(f"/console/seals/{seal}").text
    assert "Enable</button>" in page


def test_anonymous_forms_need_the_cookie_bound_token(world, browser, runtime):
    b = browser()
    page = b.get("/console/signin")
    token = csrf_of(page.text)
    creds = {"email": world.a.emails["employee"], "password": "correct horse battery"}
    assert b.post("/console/signin", data=creds).status_code == 403
    # A token minted for another browser's cookie does not work here.
    other = browser()
    other_token = csrf_of(other.get("/console/signin").text)
    assert other_token != token
    r = b.post("/console/signin", data={**creds, "csrf_token": other_token})
    assert r.status_code == 403
    assert _count(runtime, ConsoleSession) == 0
    r = b.post("/console/signin", data={**creds, "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303
    assert _count(runtime, ConsoleSession) == 1


def test_operator_decisions_need_the_token(world, browser, runtime):
    from factories import LETTER

    applicant = browser()
    page = applicant.get("/console/signup")
    applicant.post("/console/signup", data={
        "csrf_token": csrf_of(page.text), "display_name": "Gamma", "email": "g@gamma.example",
        "password": "long enough pw", "password2": "long enough pw"})
    r = post(applicant, "/console/apply", {
        "legal_name": "Gamma Ltd", "registration_number": "G-1", "domains": "gamma.example",
        "eseal_admin_email": "seals@gamma.example"},
        files={"letter": ("letter.pdf", LETTER.data, "application/pdf")})
    assert r.status_code == 303, r.text
    with runtime.session_factory() as s:
        org = s.scalar(select(Organization).where(Organization.legal_name == "Gamma Ltd"))
        assert org is not None and org.status == "pending"
        org_id = org.id
    op = signin(browser(), "operator@operator.example")
    assert op.post(f"/console/operator/organizations/{org_id}/approve").status_code == 403
    assert op.post(f"/console/operator/organizations/{org_id}/reject",
                   data={"reason": "x", "csrf_token": "nope"}).status_code == 403
    with runtime.session_factory() as s:
        assert s.get(Organization, org_id).status == "pending"
