"""Issue 3, deliver item 2: ``sealkeeper ca init`` on a fresh data directory
creates the root CA, the issuing CA, the delegated OCSP responder and the TSA
with the configured names and lifetimes; a second run says it is already
initialised and changes nothing; ``sealkeeper ca show`` lists the four
certificates. (The first ``serve`` runs the same initialisation; the servers of
the other PKI tests start on fresh data directories with both key stores.)"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from pki_live import openssl, pem
from sqlalchemy import create_engine, text

SEALKEEPER = str(Path(sys.executable).with_name("sealkeeper"))
ROLES = ("root", "issuing", "ocsp", "tsa")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEALKEEPER, "ca", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _rows(out: str) -> dict[str, tuple[str, str, str]]:
    """role -> (subject, serial prefix, valid until) from the rich table."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if len(cells) == 4 and cells[0] in ROLES:
            rows[cells[0]] = (cells[1], cells[2].rstrip("…"), cells[3])
    return rows


def test_ca_init_twice_then_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "SEALKEEPER_DATA_DIR": str(data), "COLUMNS": "220",
           "SEALKEEPER_PUBLIC_BASE_URL": "https://pki.example.test",
           "SEALKEEPER_CA_ORGANIZATION": "Acceptance PKI",
           "SEALKEEPER_CA_ROOT_NAME": "Acceptance Root",
           "SEALKEEPER_CA_ISSUING_NAME": "Acceptance Issuing",
           "SEALKEEPER_CA_ROOT_YEARS": "7", "SEALKEEPER_CA_ISSUING_YEARS": "4"}
    for name in ("SEALKEEPER_DATABASE_URL", "SEALKEEPER_KEYSTORE", "SEALKEEPER_MASTER_KEY",
                 "SEALKEEPER_MASTER_KEY_FILE"):
        env.pop(name, None)

    first = _run(env, "init")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "CA initialised" in first.stdout and "already" not in first.stdout
    created = _rows(first.stdout)
    assert set(created) == set(ROLES), first.stdout
    assert created["root"][0] == "CN=Acceptance Root,O=Acceptance PKI"
    assert created["issuing"][0] == "CN=Acceptance Issuing,O=Acceptance PKI"
    assert "OCSP" in created["ocsp"][0] and "Time" in created["tsa"][0]
    year = datetime.now(UTC).year
    assert created["root"][2].startswith(str(year + 7))
    assert created["issuing"][2].startswith(str(year + 4))
    assert "https://pki.example.test/pki/root.crt" in first.stdout

    second = _run(env, "init")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "CA already initialised" in second.stdout
    assert _rows(second.stdout) == created  # nothing was replaced

    show = _run(env, "show")
    assert show.returncode == 0, show.stdout + show.stderr
    assert _rows(show.stdout) == created

    # The database holds those four certificates, and they chain to the root.
    engine = create_engine(f"sqlite:///{data / 'sealkeeper.db'}")
    with engine.connect() as c:
        rows = list(c.execute(text(
            "SELECT role, certificate_der FROM ca_keys WHERE active")))
    engine.dispose()
    certs = {role: x509.load_der_x509_certificate(d) for role, d in rows if d is not None}
    assert set(certs) == set(ROLES)
    for role in ROLES:
        assert format(certs[role].serial_number, "x").startswith(created[role][1])
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(pem(certs["root"]))
    issuing_pem = tmp_path / "issuing.pem"
    issuing_pem.write_bytes(pem(certs["issuing"]))
    for role in ("issuing", "ocsp", "tsa"):
        leaf = tmp_path / f"{role}.pem"
        leaf.write_bytes(pem(certs[role]))
        out = openssl("verify", "-CAfile", root_pem, "-untrusted", issuing_pem, leaf).stdout
        assert f"{leaf}: OK" in out
    # The software store's master key was generated into the data directory,
    # owner-only.
    assert stat.S_IMODE((data / "master.key").stat().st_mode) == 0o600


def test_ca_show_before_init_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "SEALKEEPER_DATA_DIR": str(tmp_path / "data")}
    env.pop("SEALKEEPER_DATABASE_URL", None)
    r = _run(env, "show")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "sealkeeper ca init" in r.stdout + r.stderr
