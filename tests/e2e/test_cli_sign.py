"""`sealkeeper login` and `sealkeeper sign` against a running server: PDFs at
B-B and B-LTA with a visible stamp, and a plain file as a detached .p7s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from server import SEALKEEPER, Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from pdfs import make_pdf
from test_client_pades import extract_signatures, pdfsig, pyhanko_report


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli") / "data"
    with Server(data, args=("--demo",)) as srv:
        yield srv, json.loads((data / "demo.json").read_text())


def _run(args, env, stdin=None):
    return subprocess.run([SEALKEEPER, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_login_sign_pdf_and_file(demo, tmp_path):
    srv, info = demo
    alice = next(u for u in info["users"] if u["email"] == "alice@example.com")
    contract = next(s["seal_id"] for s in info["seals"] if s["type"] == "contract")
    env = {**srv.env, "SEALKEEPER_CONFIG": str(tmp_path / "client.json")}
    env.pop("SEALKEEPER_TOKEN", None)
    r = _run(["login", "--server", srv.url, "--token", alice["token"]], env)
    assert r.returncode == 0, r.stderr
    assert "alice@example.com" in r.stdout
    r = _run(["seals"], env)
    assert r.returncode == 0 and contract in r.stdout

    pdf = tmp_path / "contract.pdf"
    pdf.write_bytes(make_pdf(2))
    root = x509.load_der_x509_certificate(httpx.get(srv.url + "/pki/root.crt").content)
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(httpx.get(srv.url + "/pki/root.pem").content)
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "root", "-t", "CT,C,C",
                    "-i", str(root_pem)], check=True, capture_output=True)
    for level in ("B-B", "B-LTA"):
        out = tmp_path / f"signed-{level}.pdf"
        r = _run(["sign", str(pdf), "--seal", contract, "--level", level, "--page", "1",
                  "--at", "100,100", "--reason", "approved", "-o", str(out),
                  "--password-stdin"], env, stdin=alice["approval_password"] + "\n")
        assert r.returncode == 0, r.stdout + r.stderr
        report = pyhanko_report(out, root, long_term=level == "B-LTA")
        assert len(report) == 1
        assert report[0].intact and report[0].valid and report[0].trusted, report
        # poppler with an NSS database trusting only the server's root
        text = pdfsig(out, nss)
        assert "Signature is Valid." in text and "Certificate is Trusted." in text, text
        # openssl on the CMS and the signed byte ranges, extracted without pyHanko
        first = extract_signatures(out)[0]
        (tmp_path / "sig.der").write_bytes(first.contents)
        (tmp_path / "signed.bin").write_bytes(first.signed)
        res = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER",
                              "-in", str(tmp_path / "sig.der"), "-content",
                              str(tmp_path / "signed.bin"), "-CAfile", str(root_pem),
                              "-purpose", "any", "-out", "/dev/null"],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr

    txt = tmp_path / "notes.txt"
    txt.write_text("minutes of the board meeting\n")
    env2 = {**env, "SEALKEEPER_APPROVAL_PASSWORD": alice["approval_password"]}
    r = _run(["sign", str(txt), "--seal", contract], env2)
    assert r.returncode == 0, r.stdout + r.stderr
    p7s = tmp_path / "notes.txt.p7s"
    res = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                          str(p7s), "-content", str(txt), "-CAfile", str(tmp_path / "root.pem"),
                          "-purpose", "any", "-out", "/dev/null"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr

    # A wrong approval password is refused with a clear message and exit code 2.
    r = _run(["sign", str(txt), "--seal", contract, "--password-stdin"], env, stdin="0000\n")
    assert r.returncode == 2 and "approval password" in r.stderr
    assert "Traceback" not in r.stderr


def test_sdk_signs_and_verifies(demo, tmp_path):
    """The Python SDK: list my seals, sign digests, a PDF and a file, verify them."""
    from sealkeeper.client.api import SealkeeperClient
    from sealkeeper.crypto.digests import Hashed

    srv, info = demo
    alice = next(u for u in info["users"] if u["email"] == "alice@example.com")
    with SealkeeperClient(srv.url, alice["token"]) as sk:
        seals = {s["type"]: s["seal_id"] for s in sk.my_seals()}
        assert {"personal", "contract", "invoice"} <= set(seals)
        cms = sk.sign_digests(seals["invoice"], [("a.xml", Hashed.of(b"<invoice/>"))],
                              approval_password=alice["approval_password"])
        assert len(cms) == 1 and cms[0][:1] == b"\x30"
        pdf = tmp_path / "invoice.pdf"
        pdf.write_bytes(make_pdf(1))
        out = tmp_path / "invoice-signed.pdf"
        sk.sign_pdfs([pdf], seals["invoice"], approval_password=alice["approval_password"],
                     level="B-T", outputs=[out], box=(50, 50, 170, 170))
        report = sk.verify(out)
        assert report.exit_code == 0, report.to_dict()
        sig = report.signatures[0]
        assert sig.log is not None and sig.log.status == "verified"
        txt = tmp_path / "a.txt"
        txt.write_text("hello")
        sk.sign_files([txt], seals["personal"], approval_password=alice["approval_password"])
        assert sk.verify(txt, signature=tmp_path / "a.txt.p7s").exit_code == 0
