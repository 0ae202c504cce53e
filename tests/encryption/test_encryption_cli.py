"""`sealkeeper encrypt` and `sealkeeper decrypt` against a running server
(``serve --demo``), with openssl on the other side in both directions."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from encryption_helpers import export_software_key, key_pem, openssl

from sealkeeper.crypto.keystore.software import load_master_key
from server import SEALKEEPER, Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from pdfs import make_pdf

TEXT = b"minutes of the board meeting\n" * 20


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("enc-cli") / "data"
    with Server(data, args=("--demo",)) as srv:
        yield srv, json.loads((data / "demo.json").read_text())


def _run(srv: Server, user: dict, args: list[str], stdin: str | None = None):
    env = {**srv.env, "SEALKEEPER_URL": srv.url, "SEALKEEPER_TOKEN": user["token"],
           "SEALKEEPER_CONFIG": "/nonexistent/client.json"}
    env.pop("SEALKEEPER_APPROVAL_PASSWORD", None)
    return subprocess.run([SEALKEEPER, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def _export(srv: Server, email: str, directory: Path) -> tuple[Path, Path]:
    """The recipient's current encryption key, opened with the server's master key."""
    with sqlite3.connect(srv.data_dir / "sealkeeper.db") as db:
        key_ref, cert_der = db.execute(
            "SELECT k.key_ref, k.certificate_der FROM encryption_keys k JOIN users u "
            "ON u.id = k.user_id WHERE u.email = ? AND k.is_current", (email,)).fetchone()
    master = load_master_key(srv.data_dir, env_value=None, file=None, create=False)
    key_path, cert_path = directory / "recipient.key", directory / "recipient.pem"
    key_path.write_bytes(key_pem(export_software_key(master, key_ref)))
    cert_path.write_bytes(x509.load_der_x509_certificate(cert_der)
                          .public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_encrypt_with_cli_decrypt_with_openssl_and_back(demo, tmp_path: Path) -> None:
    srv, info = demo
    users = {u["email"]: u for u in info["users"]}
    alice, bob = users["alice@example.com"], users["bob@example.com"]
    src = tmp_path / "notes.txt"
    src.write_bytes(TEXT)

    r = _run(srv, alice, ["encrypt", str(src), "--to", "bob@example.com"])
    assert r.returncode == 0, r.stdout + r.stderr
    p7m = tmp_path / "notes.txt.p7m"
    assert p7m.is_file() and TEXT[:20] not in p7m.read_bytes()

    key, cert = _export(srv, "bob@example.com", tmp_path)
    res = openssl("cms", "-decrypt", "-inform", "DER", "-in", p7m, "-inkey", key,
                  "-recip", cert)
    assert res.returncode == 0, res.stderr
    assert res.stdout == TEXT

    out = tmp_path / "back.txt"
    r = _run(srv, bob, ["decrypt", str(p7m), "-o", str(out), "--password-stdin"],
             stdin=bob["approval_password"] + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes() == TEXT

    # openssl encrypts for our certificate (S/MIME, its default), we decrypt.
    smime = tmp_path / "from-openssl.p7m"
    res = openssl("cms", "-encrypt", "-aes256", "-binary", "-in", src, "-out", smime,
                  "-recip", cert)
    assert res.returncode == 0, res.stderr
    r = _run(srv, bob, ["decrypt", str(smime), "-o", str(tmp_path / "o2.txt"),
                        "--password-stdin"], stdin=bob["approval_password"] + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "o2.txt").read_bytes() == TEXT

    # Refusals: a clear message and exit code 2, never a traceback.
    r = _run(srv, bob, ["decrypt", str(p7m), "-o", str(tmp_path / "o3"),
                        "--password-stdin"], stdin="0000\n")
    assert r.returncode == 2 and "approval password" in r.stderr, r.stderr
    r = _run(srv, alice, ["decrypt", str(p7m), "-o", str(tmp_path / "o4"),
                          "--password-stdin"], stdin=alice["approval_password"] + "\n")
    assert r.returncode == 2 and "not encrypted for any of your" in r.stderr, r.stderr
    r = _run(srv, alice, ["encrypt", str(src), "--to", "nobody@example.com"])
    assert r.returncode == 2 and "no encryption certificate" in r.stderr, r.stderr
    assert not (tmp_path / "o3").exists() and not (tmp_path / "o4").exists()


def test_pdf_and_a_batch_through_the_cli(demo, tmp_path: Path) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    srv, info = demo
    users = {u["email"]: u for u in info["users"]}
    alice, bob = users["alice@example.com"], users["bob@example.com"]
    pdf = tmp_path / "contract.pdf"
    pdf.write_bytes(make_pdf(1, text="Pay the invoice"))
    txt = tmp_path / "notes.txt"
    txt.write_bytes(TEXT)
    r = _run(srv, bob, ["encrypt", str(pdf), str(txt), "--to", "alice@example.com",
                        "--to", "bob@example.com", "-o", str(tmp_path / "sealed")])
    assert r.returncode == 0, r.stdout + r.stderr
    enc = tmp_path / "sealed" / "contract-encrypted.pdf"
    with enc.open("rb") as f:
        assert PdfFileReader(f).encrypted
    p7m = tmp_path / "sealed" / "notes.txt.p7m"
    assert p7m.is_file()
    for user in (alice, bob):
        out = tmp_path / user["email"]
        r = _run(srv, user, ["decrypt", str(enc), str(p7m), "-o", str(out),
                             "--password-stdin"], stdin=user["approval_password"] + "\n")
        assert r.returncode == 0, r.stdout + r.stderr
        with (out / "contract-decrypted.pdf").open("rb") as f:
            reader = PdfFileReader(f)
            assert not reader.encrypted
            assert b"Pay the invoice" in reader.root["/Pages"]["/Kids"][0]["/Contents"].data
        assert (out / "notes.txt").read_bytes() == TEXT
