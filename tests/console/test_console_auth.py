"""Sign-in to the console: cookies, sessions, throttling, TOTP, sign-out, the
mailed validation link."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from console_helpers import csrf_of, post, signin, token_for
from fastapi.testclient import TestClient

from factories import PASSWORD
from sealkeeper.accounts.models import OneTimePurpose
from sealkeeper.config import Settings
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork
from sealkeeper.web.app import create_app

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(settings: Settings, engine, clock: FakeClock) -> Runtime:
    return Runtime.build(settings, engine=engine, clock=clock)


def _signin_post(b: TestClient, email: str, password: str, **extra: str):
    token = csrf_of(b.get("/console/signin").text)
    return b.post("/console/signin", data={"csrf_token": token, "email": email,
                                           "password": password, **extra},
                  follow_redirects=False)


def _set_cookie(r, name: str) -> str:
    headers = r.headers.get_list("set-cookie")
    found = [h for h in headers if h.startswith(name + "=")]
    assert found, headers
    return found[0]


def test_session_cookie_flags_and_security_headers(world, browser):
    b = browser()
    r = _signin_post(b, world.a.emails["employee"], PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = _set_cookie(r, "sk_session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http in this test
    page = b.get("/console/my")
    assert page.status_code == 200
    h = page.headers
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "script-src 'self'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["cache-control"] == "no-store"
    assert h["x-content-type-options"] == "nosniff"


def test_secure_host_cookies_behind_https(tmp_path: Path, engine, world):
    settings = Settings(data_dir=tmp_path / "https", public_base_url="https://seal.example.org",
                        **FAST_ARGON2)  # type: ignore[arg-type]
    rt = Runtime.build(settings, engine=engine)
    with TestClient(create_app(rt), base_url="https://testserver") as b:
        r = _signin_post(b, world.a.emails["employee"], PASSWORD)
        assert r.status_code == 303
        cookie = _set_cookie(r, "__Host-sk_session").lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert "domain=" not in cookie
        assert b.get("/console/my").status_code == 200


def test_wrong_password_is_generic_and_throttled(world, browser, clock):
    b = browser()
    email = world.a.emails["employee"]
    r = _signin_post(b, email, "wrong password!")
    assert r.status_code == 401 and "Wrong email or password." in r.text
    r2 = _signin_post(b, "nobody-here@alpha.example", "wrong password!")
    assert r2.status_code == 401 and "Wrong email or password." in r2.text
    for _ in range(4):
        assert _signin_post(b, email, "wrong password!").status_code == 401
    # Locked: even the right password is refused, without checking it.
    r = _signin_post(b, email, PASSWORD)
    assert r.status_code == 429 and "too many failed sign-ins" in r.text
    # Another account from the same address is not locked.
    assert _signin_post(browser(), world.a.emails["employee2"], PASSWORD).status_code == 303
    clock.advance(minutes=16)
    assert _signin_post(b, email, PASSWORD).status_code == 303


def test_signout_and_expiry_end_the_session(world, browser, clock):
    b = browser()
    signin(b, world.a.emails["employee"])
    assert b.get("/console/my", follow_redirects=False).status_code == 200
    old = dict(b.cookies)
    r = post(b, "/console/signout", page="/console/my")
    assert r.status_code == 303 and "notice=signed_out" in r.headers["location"]
    replay = browser()
    replay.cookies.update(old)
    r = replay.get("/console/my", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/signin")

    signin(b, world.a.emails["employee"])
    clock.advance(minutes=29)
    assert b.get("/console/my", follow_redirects=False).status_code == 200
    clock.advance(minutes=29)  # seen 29 minutes ago: still alive, refreshed on use
    assert b.get("/console/my", follow_redirects=False).status_code == 200
    clock.advance(minutes=31)  # idle too long
    r = b.get("/console/my", follow_redirects=False)
    assert r.status_code == 303 and "next=/console/my" in r.headers["location"]


def test_next_only_goes_to_console_pages(world, browser):
    for target in ("//evil.example/x", "https://evil.example/", "/api/v1/me", "/\\evil"):
        r = _signin_post(browser(), world.a.emails["employee"], PASSWORD, next=target)
        assert r.headers["location"] == "/console/", target
    r = _signin_post(browser(), world.a.emails["employee"], PASSWORD, next="/console/my/log")
    assert r.headers["location"] == "/console/my/log"


def test_totp_second_factor(world, browser, clock):
    b = signin(browser(), world.a.emails["employee"])
    assert post(b, "/console/account/totp/begin").status_code == 303
    page = b.get("/console/account").text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    totp = pyotp.TOTP(secret)
    r = post(b, "/console/account/totp/confirm", {"code": "000000"})
    assert r.status_code == 400 and "not right" in r.text
    r = post(b, "/console/account/totp/confirm", {"code": totp.at(clock())})
    assert r.status_code == 303

    b2 = browser()
    r = _signin_post(b2, world.a.emails["employee"], PASSWORD)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/signin/totp")
    # Half signed in: no page is open yet.
    assert b2.get("/console/my", follow_redirects=False).status_code == 303
    token = csrf_of(b2.get("/console/signin/totp").text)
    r = b2.post("/console/signin/totp", data={"csrf_token": token, "code": "123456",
                                              "next": "/console/my"}, follow_redirects=False)
    assert r.status_code == 401
    clock.advance(seconds=30)
    code = totp.at(clock())
    r = b2.post("/console/signin/totp", data={"csrf_token": token, "code": code,
                                              "next": "/console/my"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/my"
    assert b2.get("/console/my", follow_redirects=False).status_code == 200

    # The same code cannot be used twice.
    b3 = browser()
    _signin_post(b3, world.a.emails["employee"], PASSWORD)
    token3 = csrf_of(b3.get("/console/signin/totp").text)
    r = b3.post("/console/signin/totp", data={"csrf_token": token3, "code": code},
                follow_redirects=False)
    assert r.status_code == 401
    # Five wrong codes (the replay was the first) end the half-open session.
    for _ in range(3):
        b3.post("/console/signin/totp", data={"csrf_token": token3, "code": "999999"})
    r = b3.post("/console/signin/totp", data={"csrf_token": token3, "code": "999999"},
                follow_redirects=False)
    assert r.status_code == 303 and "totp_failed" in r.headers["location"]

    clock.advance(seconds=30)
    r = post(b2, "/console/account/totp/disable", {"code": totp.at(clock())})
    assert r.status_code == 303
    assert _signin_post(browser(), world.a.emails["employee"], PASSWORD
                        ).headers["location"] == "/console/"


def test_validation_link_page(world, browser, runtime):
    uow = UnitOfWork(runtime)
    try:
        admin = uow.accounts.find_by_email(world.a.emails["account_admin"])
        user = uow.employees.add(uow.accounts.actor_for(admin), world.a.id,
                                 f"erin@{world.a.domain}", "Erin")
        link = uow.accounts.issue_one_time(user, OneTimePurpose.EMPLOYEE_VALIDATION)
        uow.outbox.drain()
        uow.commit()
    finally:
        uow.close()
    b = browser()
    page = b.get(f"/validate?token={link}")
    assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
    assert f'value="{link}"' in page.text
    form = {"csrf_token": csrf_of(page.text), "token": link, "display_name": "Erin E.",
            "password": "a fine password", "password2": "another one!!"}
    r = b.post("/validate", data=form)
    assert r.status_code == 400
    assert 'id="e-password2"' in r.text and "the two passwords differ" in r.text
    r = b.post("/validate", data={**form, "password2": "a fine password"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/signin?notice=validated"
    r = b.post("/validate", data={**form, "password2": "a fine password"})
    assert r.status_code == 400 and "invalid, expired or already used" in r.text
    signin(browser(), f"erin@{world.a.domain}", "a fine password")


def test_signup_then_apply_form(browser):
    b = browser()
    token = token_for(b, "/console/signup")
    r = b.post("/console/signup", data={"csrf_token": token, "display_name": "Zed",
                                        "email": "zed@zeta.example", "password": "short",
                                        "password2": "short"})
    assert r.status_code == 400 and "10 to 200 characters" in r.text
    assert 'value="zed@zeta.example"' in r.text and 'value="short"' not in r.text
    r = b.post("/console/signup", data={"csrf_token": token, "display_name": "Zed",
                                        "email": "zed@zeta.example",
                                        "password": "long enough pw",
                                        "password2": "long enough pw"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/apply"
    page = b.get("/console/apply")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    r = post(b, "/console/apply", {"legal_name": "Zeta", "registration_number": "Z",
                                   "domains": "zeta.example",
                                   "eseal_admin_email": "seals@zeta.example"})
    assert r.status_code == 400 and 'id="e-letter"' in r.text
    r = post(b, "/console/apply", {"legal_name": "Zeta", "registration_number": "Z",
                                   "domains": "zeta.example",
                                   "eseal_admin_email": "seals@zeta.example"},
             files={"letter": ("letter.txt", b"just text", "text/plain")})
    assert r.status_code == 400 and "must be a PDF, PNG or JPEG" in r.text
    assert 'value="Zeta"' in r.text  # what was typed is kept
