"""Email-domain validation from the console: a DNS TXT record checked with
dnspython against a local DNS server (dnslib), and a code mailed to admin@ or
postmaster@ the domain (read from a local aiosmtpd server)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from console_helpers import post, signin
from dnsbox import DnsBox
from sqlalchemy import select

from sealkeeper.config import Settings
from sealkeeper.console.models import ConsoleSession
from sealkeeper.orgs.models import Domain

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsBox]:
    box = DnsBox().start()
    yield box
    box.stop()


@pytest.fixture
def settings(tmp_path: Path, mailbox, dns: DnsBox) -> Settings:
    dns.records.clear()
    return Settings(data_dir=tmp_path / "data", public_base_url="http://testserver",
                    smtp_host="127.0.0.1", smtp_port=mailbox.port, dns_resolver="127.0.0.1",
                    dns_resolver_port=dns.port, dns_timeout_seconds=3,
                    **FAST_ARGON2)  # type: ignore[arg-type]


def _domain(runtime, org_id: str, name: str) -> Domain:
    with runtime.session_factory() as s:
        d = s.scalar(select(Domain).where(Domain.organization_id == org_id,
                                          Domain.name == name))
        assert d is not None
        s.expunge(d)
        return d


def test_dns_txt_record(world, browser, runtime, dns):
    admin = signin(browser(), world.a.emails["account_admin"])
    name = "sales.alpha.example"
    r = post(admin, "/console/domains", {"name": name}, page="/console/domains")
    assert r.status_code == 303
    page = admin.get("/console/domains").text
    d = _domain(runtime, world.a.id, name)
    record = f"_sealkeeper-challenge.{name}"
    assert record in page and d.challenge and d.challenge in page
    check = f"/console/domains/{d.id}/check-dns"

    r = post(admin, check, page="/console/domains")
    assert r.status_code == 400 and "no TXT record" in r.text and 'id="e-dns"' in r.text
    dns.records[record] = ["something else"]
    r = post(admin, check, page="/console/domains")
    assert r.status_code == 400 and "something else" in r.text
    assert _domain(runtime, world.a.id, name).status == "pending"

    # Only the account administrator of the organization may ask.
    employee = signin(browser(), world.a.emails["employee"])
    assert post(employee, check, page="/console/my").status_code == 403
    other = signin(browser(), world.b.emails["account_admin"])
    assert post(other, check, page="/console/domains").status_code == 404

    dns.records[record] = ["unrelated", d.challenge]
    r = post(admin, check, page="/console/domains")
    assert r.status_code == 303
    done = _domain(runtime, world.a.id, name)
    assert done.status == "validated" and done.validation_method == "dns-txt"
    assert record in dns.resolver.queries
    # Now employees of that domain can be invited.
    r = post(admin, "/console/employees", {"email": f"sam@{name}", "display_name": "Sam"},
             page="/console/employees")
    assert r.status_code == 303


def test_a_domain_of_another_organization_cannot_be_taken(world, browser, runtime, dns):
    admin = signin(browser(), world.a.emails["account_admin"])
    post(admin, "/console/domains", {"name": world.b.domain}, page="/console/domains")
    admin.get("/console/domains")  # shows the record to publish
    d = _domain(runtime, world.a.id, world.b.domain)
    dns.records[f"_sealkeeper-challenge.{world.b.domain}"] = [d.challenge]
    r = post(admin, f"/console/domains/{d.id}/check-dns", page="/console/domains")
    assert r.status_code == 409 and "another organization" in r.text


def test_mailed_code(world, browser, runtime, mailbox):
    admin = signin(browser(), world.a.emails["account_admin"])
    name = "ops.alpha.example"
    post(admin, "/console/domains", {"name": name}, page="/console/domains")
    d = _domain(runtime, world.a.id, name)
    r = post(admin, f"/console/domains/{d.id}/send-code", {"mailbox": "root"},
             page="/console/domains")
    assert r.status_code == 400 and "admin@ or postmaster@" in r.text
    r = post(admin, f"/console/domains/{d.id}/send-code", {"mailbox": "postmaster"},
             page="/console/domains")
    assert r.status_code == 303
    msgs = mailbox.to(f"postmaster@{name}")
    assert msgs
    code = re.search(r"Validation code: (\d{8})", msgs[-1].get_payload(decode=True).decode())
    assert code
    confirm = f"/console/domains/{d.id}/confirm-code"
    wrong = "00000000" if code.group(1) != "00000000" else "11111111"
    for left in (4, 3, 2, 1):
        r = post(admin, confirm, {"code": wrong}, page="/console/domains")
        assert r.status_code == 400 and f"{left} attempt" in r.text
    r = post(admin, confirm, {"code": wrong}, page="/console/domains")
    assert r.status_code == 400 and "send a new one" in r.text
    # Every attempt was counted although each request failed: the right code is
    # now refused too.
    r = post(admin, confirm, {"code": code.group(1)}, page="/console/domains")
    assert r.status_code == 409
    assert _domain(runtime, world.a.id, name).status == "pending"

    post(admin, f"/console/domains/{d.id}/send-code", {"mailbox": "admin"},
         page="/console/domains")
    # The session was last seen two minutes ago: this request touches it before
    # the attempt is counted in a transaction of its own.
    with runtime.session_factory() as s:
        for row in s.scalars(select(ConsoleSession)):
            row.last_seen_at -= timedelta(minutes=2)
        s.commit()
    body = mailbox.to(f"admin@{name}")[-1].get_payload(decode=True).decode()
    fresh = re.search(r"Validation code: (\d{8})", body).group(1)
    r = post(admin, confirm, {"code": fresh}, page="/console/domains")
    assert r.status_code == 303
    done = _domain(runtime, world.a.id, name)
    assert done.status == "validated" and done.validation_method == "mail-admin"
