"""The whole story in a real browser (Debian's chromium through Playwright)
against a real server process, a real SMTP server (aiosmtpd) and a real DNS
server (dnslib):

an organization applies → the operator approves → a domain is validated by a
DNS TXT record → an employee is invited, gets the mail and validates → the
e-seal administrator grants the contract seal → the employee sets an approval
password and creates a token → signs a PDF with the CLI → the e-seal
administrator sees the entry with the file name and hash → the employee is
deleted → the administrator still sees the entry, and the certificate is
revoked (console page and OCSP).

Screenshots of the main pages go to ``$SEALKEEPER_ARTIFACTS/console``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from dnsbox import DnsBox

from server import SEALKEEPER, Server
from smtpbox import Mailbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from pdfs import make_pdf

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SEALKEEPER_ARTIFACTS") or REPO / "artifacts") / "console"
PASSWORD = "a long enough password"
OPERATOR = "op@operator.example"
FOUNDER = "founder@acme.example"
ESEAL = "seals@acme.example"
EMPLOYEE = "dana@acme.example"
APPROVAL = "2468"

if not Path(CHROMIUM).exists():  # pragma: no cover
    pytest.skip("chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("story")
    box = Mailbox().start()
    dns = DnsBox().start()
    srv = Server(tmp / "data", env={
        "SEALKEEPER_SMTP_HOST": "127.0.0.1", "SEALKEEPER_SMTP_PORT": str(box.port),
        "SEALKEEPER_DNS_RESOLVER": "127.0.0.1", "SEALKEEPER_DNS_RESOLVER_PORT": str(dns.port),
        "SEALKEEPER_DNS_TIMEOUT_SECONDS": "3"})
    try:
        srv.start()
        r = subprocess.run([SEALKEEPER, "operator", "create", OPERATOR],
                           env={**srv.env, "SEALKEEPER_OPERATOR_PASSWORD": PASSWORD},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield {"server": srv, "mail": box, "dns": dns, "browser": browser,
                       "tmp": tmp}
            finally:
                browser.close()
    finally:
        srv.stop()
        dns.stop()
        box.stop()


class Person:
    """One browser context (its own cookies) and page."""

    def __init__(self, stack: dict[str, object], name: str) -> None:
        self.server: Server = stack["server"]  # type: ignore[assignment]
        self.context = stack["browser"].new_context(  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.name = name

    def go(self, path: str) -> None:
        self.page.goto(path if path.startswith("http") else self.server.url + path)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.go("/console/signin")
        self.page.fill("#f-email", email)
        self.page.fill("#f-password", password)
        self.page.click("button:has-text('Sign in')")
        self.page.wait_for_url(re.compile(r".*/console/(?!signin).*"))

    def flash(self) -> str:
        return self.page.inner_text(".flash")


def _link(box: Mailbox, address: str) -> str:
    msgs = box.to(address, timeout=10)
    assert msgs, f"no mail to {address}"
    body = msgs[-1].get_payload(decode=True).decode()
    m = re.search(r"(http://\S+/validate\?token=sko_[A-Za-z0-9_\-]+)", body)
    assert m, body
    return m.group(1)


def _byte_range_digest(pdf: bytes) -> str:
    ranges = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert len(ranges) == 1
    a, b, c, d = (int(x) for x in ranges[0])
    return hashlib.sha256(pdf[a:a + b] + pdf[c:c + d]).hexdigest()


def _ocsp_status(url: str, cert: x509.Certificate, issuer: x509.Certificate) -> object:
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    r = httpx.post(url + "/pki/ocsp", content=req.public_bytes(serialization.Encoding.DER),
                   headers={"Content-Type": "application/ocsp-request"}, timeout=30)
    assert r.status_code == 200
    return ocsp.load_der_ocsp_response(r.content).certificate_status


def test_the_whole_story(stack: dict[str, object]) -> None:
    srv: Server = stack["server"]  # type: ignore[assignment]
    box: Mailbox = stack["mail"]  # type: ignore[assignment]
    dns: DnsBox = stack["dns"]  # type: ignore[assignment]
    tmp: Path = stack["tmp"]  # type: ignore[assignment]
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)

    # -- an organization applies
    founder = Person(stack, "founder")
    founder.go("/console/signin")
    founder.shot("01-sign-in")
    founder.go("/console/signup")
    founder.page.fill("#f-display_name", "Fay Founder")
    founder.page.fill("#f-email", FOUNDER)
    founder.page.fill("#f-password", PASSWORD)
    founder.page.fill("#f-password2", PASSWORD)
    founder.page.click("button:has-text('Create account')")
    founder.page.wait_for_url("**/console/apply")
    founder.page.fill("#f-legal_name", "Acme Trading Ltd")
    founder.page.fill("#f-registration_number", "HRB 12345")
    founder.page.fill("#f-domains", "acme.example")
    founder.page.fill("#f-eseal_admin_email", ESEAL)
    founder.page.set_input_files("#f-letter", files=[{
        "name": "authorization-letter.pdf", "mimeType": "application/pdf",
        "buffer": make_pdf(1, text="We designate seals@acme.example")}])
    founder.shot("02-apply")
    founder.page.click("button:has-text('Send the application')")
    founder.page.wait_for_url("**/console/organization")
    assert "was sent" in founder.flash()
    assert "pending" in founder.page.inner_text("main").lower()
    founder.shot("03-organization-pending")

    # -- the operator approves
    operator = Person(stack, "operator")
    operator.sign_in(OPERATOR)
    operator.page.click("nav.sidebar >> text=Organization validation")
    operator.page.click("tr:has-text('Acme Trading Ltd') >> text=Review")
    operator.page.wait_for_url("**/console/operator/organizations/*")
    assert "authorization-letter.pdf" in operator.page.inner_text("main")
    operator.shot("04-operator-review")
    operator.page.click("button:has-text('Approve')")
    assert "is validated" in operator.flash()
    eseal_link = _link(box, ESEAL)

    # -- the domain is validated through DNS TXT
    founder.page.click("nav.sidebar >> text=Email domains")
    name = founder.page.inner_text("code[id^='rec-name-']")
    value = founder.page.inner_text("code[id^='rec-value-']")
    assert name == "_sealkeeper-challenge.acme.example"
    founder.page.click("button:has-text('Check the DNS record')")  # not published yet
    assert "no TXT record" in founder.page.inner_text(".field-error")
    dns.records[name] = [value]
    founder.shot("05-domains-dns-record")
    founder.page.click("button:has-text('Check the DNS record')")
    assert "validated by its DNS record" in founder.flash()
    assert name in dns.resolver.queries

    # -- quota: the founder orders, the operator credits
    founder.page.click("nav.sidebar >> text=E-sign API management")
    founder.page.fill("#f-units", "25")
    founder.page.click("button:has-text('Order')")
    assert "pending" in founder.flash()
    operator.page.reload()
    operator.page.click("#quota button:has-text('Credit') >> nth=0")
    assert "credited" in operator.flash()
    founder.page.reload()
    assert founder.page.inner_text("#quota-balance") == "25"
    founder.shot("06-api-management")

    # -- an employee is invited, gets the mail and validates
    founder.page.click("nav.sidebar >> text=Employees")
    founder.page.fill("#f-display_name", "Dana Employee")
    founder.page.fill("#f-email", EMPLOYEE)
    founder.page.click("button:has-text('Send invitation')")
    assert EMPLOYEE in founder.flash()
    employee = Person(stack, "employee")
    employee.go(_link(box, EMPLOYEE))
    employee.shot("07-validate-link")
    employee.page.fill("#f-password", PASSWORD)
    employee.page.fill("#f-password2", PASSWORD)
    employee.page.click("button:has-text('Validate')")
    employee.page.wait_for_url("**/console/signin?notice=validated")
    employee.sign_in(EMPLOYEE)
    founder.page.reload()
    assert "validated" in founder.page.inner_text(f"tr:has-text('{EMPLOYEE}')").lower()
    founder.shot("08-employees")

    # -- the e-seal administrator validates and grants the contract seal
    eseal = Person(stack, "eseal")
    eseal.go(eseal_link)
    eseal.page.fill("#f-display_name", "Seal Keeper")
    eseal.page.fill("#f-password", PASSWORD)
    eseal.page.fill("#f-password2", PASSWORD)
    eseal.page.click("button:has-text('Validate')")
    eseal.sign_in(ESEAL)
    eseal.page.click("nav.sidebar >> text=e-Seal management")
    cards = eseal.page.locator("article.seal-card")
    assert cards.count() == 6
    eseal.page.wait_for_load_state("networkidle")
    widths = eseal.page.eval_on_selector_all(
        "img.seal-img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 6 and all(w > 0 for w in widths), widths
    eseal.shot("09-eseal-management")
    contract_card = eseal.page.locator("article.seal-card:has-text('Contract Seal')")
    contract_id = contract_card.locator("code.sealid").inner_text()
    contract_card.locator("text=Grants").click()
    eseal.page.select_option("#f-user_id", label=f"Dana Employee — {EMPLOYEE}")
    eseal.page.click("button:has-text('Grant')")
    assert "may now use this seal" in eseal.flash()
    eseal.shot("10-seal-grants")

    # -- the employee sets an approval password and creates a token
    employee.page.click("nav.sidebar >> text=My e-Seal")
    assert contract_id in employee.page.inner_text("main")
    employee.page.fill("#f-approval_password", APPROVAL)
    employee.page.fill("#f-approval_password2", APPROVAL)
    employee.page.click("button:has-text('Set password')")
    assert "approval password is set" in employee.flash()
    employee.page.fill("#f-name", "cli")
    employee.page.click("button:has-text('Create token')")
    token = employee.page.inner_text("#new-token").strip()
    assert token.startswith("skt_")
    employee.shot("11-my-e-seal-token-once")
    employee.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    employee.shot("11b-my-e-seal-phone")
    employee.page.set_viewport_size({"width": 1280, "height": 900})
    personal_id = employee.page.locator(
        "article.seal-card:has-text('Personal E-signature') code.sealid").inner_text()
    chain = httpx.get(f"{srv.url}/api/v1/seals/{personal_id}/chain.pem",
                      headers={"Authorization": f"Bearer {token}"}).content
    personal_cert, issuer = x509.load_pem_x509_certificates(chain)[:2]
    assert _ocsp_status(srv.url, personal_cert, issuer) == ocsp.OCSPCertStatus.GOOD

    # -- signs a PDF with the CLI
    pdf = tmp / "contract.pdf"
    pdf.write_bytes(make_pdf(2, text="Sales contract 2026-17"))
    env = {**os.environ, "SEALKEEPER_URL": srv.url, "SEALKEEPER_TOKEN": token,
           "SEALKEEPER_CONFIG": str(tmp / "client.json")}
    env.pop("SEALKEEPER_APPROVAL_PASSWORD", None)
    r = subprocess.run([SEALKEEPER, "sign", str(pdf), "--seal", contract_id,
                        "--password-stdin"], env=env, input=APPROVAL + "\n",
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    signed = tmp / "contract-signed.pdf"
    digest = _byte_range_digest(signed.read_bytes())

    # -- the e-seal administrator sees the entry with the file name and hash
    eseal.page.click("nav.sidebar >> text=e-Seal management")
    eseal.page.click(".tabs >> text=Usage log")
    row = eseal.page.locator("table.log tbody tr:has-text('contract.pdf')")
    assert row.count() == 1
    text = row.inner_text()
    assert digest in text and EMPLOYEE in text and contract_id in text
    assert "signed tree head" not in text
    assert eseal.page.inner_text("#checkpoint").count("\n") >= 3
    eseal.shot("12-usage-log")
    eseal.page.fill("#f-file_digest", digest)
    eseal.page.click("button:has-text('Filter')")
    assert eseal.page.locator("table.log tbody tr:has-text('contract.pdf')").count() == 1

    # -- the employee is deleted
    founder.page.click("nav.sidebar >> text=Employees")
    founder.page.click(f"tr:has-text('{EMPLOYEE}') >> text=Delete…")
    assert "will be revoked" in founder.page.inner_text("main")
    founder.shot("13-delete-confirmation")
    founder.page.click("button:has-text('Delete and revoke the certificate')")
    assert "revoked" in founder.flash()
    emp_row = founder.page.inner_text(f"tr:has-text('{EMPLOYEE}')").lower()
    assert "deleted" in emp_row and "revoked" in emp_row
    founder.shot("14-employees-after-delete")

    # -- the administrator still sees the entry, and the certificate is revoked
    eseal.page.click(".tabs >> text=Usage log")
    assert eseal.page.locator("table.log tbody tr:has-text('contract.pdf')").count() == 1
    assert _ocsp_status(srv.url, personal_cert, issuer) == ocsp.OCSPCertStatus.REVOKED
    # The deleted employee's session and token are dead.
    employee.go("/console/my")
    assert "/console/signin" in employee.page.url
    assert httpx.get(f"{srv.url}/api/v1/me", headers={
        "Authorization": f"Bearer {token}"}).status_code == 401

    # -- the verification page: the signature, and its usage-log entry
    visitor = Person(stack, "visitor")
    visitor.go("/console/verify")
    visitor.shot("15-verify-public")
    eseal.page.click("nav.sidebar >> text=Verify a document")
    if eseal.page.locator("#f-file").count():  # the report module is there
        eseal.page.set_input_files("#f-file", str(signed))
        eseal.page.click("button:has-text('Verify')")
        report = eseal.page.inner_text("main")
        assert "Signature 1" in report and "Acme Trading Ltd" in report
        assert "verified" in report.lower()
        eseal.shot("16-verify-report")
    for person in (founder, operator, employee, eseal, visitor):
        person.context.close()
