"""Detached CAdES ``.p7s`` signing of any file around a server-built CMS.

The remote signer is the real ``CmsTemplate(pades=False)`` with the declared
test PKI's seal keys; every ``.p7s`` is verified by ``openssl cms -verify
-binary -content FILE`` and by pyHanko's detached CMS validation.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext

from sealkeeper.client.cades import digest_file, sign_files
from sealkeeper.crypto.cms import CmsTemplate, timestamp_attribute
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.tsa import TimeStampAuthority
from sealkeeper.errors import CryptoError, InvalidInput

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))
from pki_fixtures import Pki, build_test_pki, pem


@dataclass
class Remote:
    pki: Pki
    which: str = "org_seal"
    algorithm: DigestAlgorithm = DigestAlgorithm.SHA256
    timestamp: bool = False
    calls: list[list[tuple[str, Hashed]]] = field(default_factory=list)
    result_override: list[bytes] | None = None

    def __call__(self, items: list[tuple[str, Hashed]]) -> list[bytes]:
        self.calls.append(list(items))
        if self.result_override is not None:
            return self.result_override
        handle = getattr(self.pki, f"{self.which}_handle")
        cert = getattr(self.pki, self.which)
        scheme = handle.default_scheme()
        tpl = CmsTemplate([cert, self.pki.issuing], self.algorithm, scheme)
        out = []
        for _name, digest in items:
            attrs = tpl.signed_attributes(digest, datetime.now(UTC))
            signature = handle.sign(tpl.to_be_signed_digest(attrs), scheme)
            unsigned = None
            if self.timestamp:
                tsa = TimeStampAuthority(self.pki.tsa_handle, self.pki.tsa,
                                         [self.pki.issuing], "1.3.6.1.4.1.99999.2.1")
                unsigned = [timestamp_attribute(
                    tsa.stamp(Hashed.of(signature), datetime.now(UTC), 77))]
            out.append(tpl.assemble(attrs, signature, unsigned))
        return out


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_test_pki("ec")


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "invoice.xml", tmp_path / "empty.bin", tmp_path / "big.dat"]
    paths[0].write_text("<invoice><total>42.00</total></invoice>\n")
    paths[1].write_bytes(b"")
    paths[2].write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return paths


def openssl_verify(pki: Pki, p7s: Path, content: Path) -> subprocess.CompletedProcess[str]:
    root = p7s.with_name("root.pem")
    root.write_bytes(pem(pki.root))
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s),
         "-content", str(content), "-CAfile", str(root), "-purpose", "any",
         "-out", os.devnull], capture_output=True, text=True, check=False)


def pyhanko_ok(pki: Pki, p7s: Path, content: Path) -> bool:
    async def run() -> bool:
        signed = cms.ContentInfo.load(p7s.read_bytes())["content"]
        root = asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))
        vc = ValidationContext(trust_roots=[root], allow_fetching=False)
        with content.open("rb") as f:
            status = await async_validate_detached_cms(f, signed, vc)
        return bool(status.bottom_line)

    return asyncio.run(run())


@pytest.mark.parametrize(("which", "timestamp"), [("org_seal", False), ("org_seal", True),
                                                  ("personal", False)])
def test_batch_writes_verifiable_p7s(pki: Pki, files: list[Path], which: str,
                                     timestamp: bool) -> None:
    remote = Remote(pki, which, timestamp=timestamp)
    stages: list[tuple[str, str]] = []
    signatures = sign_files(files, remote, progress=lambda s, n: stages.append((s, n)))
    assert len(remote.calls) == 1
    assert [n for n, _ in remote.calls[0]] == ["invoice.xml", "empty.bin", "big.dat"]
    assert [s for s, _ in stages] == ["hashed"] * 3 + ["signed"] * 3
    for f, der in zip(files, signatures, strict=True):
        p7s = f.with_name(f.name + ".p7s")
        assert p7s.read_bytes() == der
        result = openssl_verify(pki, p7s, f)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Verification successful" in result.stderr
        assert pyhanko_ok(pki, p7s, f)
    assert not list(files[0].parent.glob("*.part"))


def test_changed_file_no_longer_verifies(pki: Pki, files: list[Path]) -> None:
    sign_files(files[:1], Remote(pki))
    files[0].write_text("<invoice><total>4200.00</total></invoice>\n")
    result = openssl_verify(pki, files[0].with_name("invoice.xml.p7s"), files[0])
    assert result.returncode != 0
    assert not pyhanko_ok(pki, files[0].with_name("invoice.xml.p7s"), files[0])


def test_sha384_and_custom_outputs(pki: Pki, files: list[Path], tmp_path: Path) -> None:
    outs = [tmp_path / f"sig{i}.der" for i in range(3)]
    remote = Remote(pki, algorithm=DigestAlgorithm.SHA384)
    sign_files(files, remote, algorithm=DigestAlgorithm.SHA384, outputs=outs)
    assert remote.calls[0][0][1] == digest_file(files[0], DigestAlgorithm.SHA384)
    for f, out in zip(files, outs, strict=True):
        assert openssl_verify(pki, out, f).returncode == 0


def test_nothing_written_when_one_signature_is_wrong(pki: Pki, files: list[Path]) -> None:
    good = Remote(pki)(
        [(f.name, digest_file(f)) for f in files])
    swapped = [good[0], good[2], good[1]]
    with pytest.raises(CryptoError, match=r"empty\.bin"):
        sign_files(files, Remote(pki, result_override=swapped))
    assert not list(files[0].parent.glob("*.p7s"))


@pytest.mark.parametrize("reply", [[], [b"garbage"] * 3, [b""] * 3])
def test_bad_server_replies(pki: Pki, files: list[Path], reply: list[bytes]) -> None:
    with pytest.raises(CryptoError):
        sign_files(files, Remote(pki, result_override=reply))
    assert not list(files[0].parent.glob("*.p7s"))


def test_expected_signer_certificate(pki: Pki, files: list[Path]) -> None:
    org = pki.org_seal.public_bytes(serialization.Encoding.DER)
    sign_files(files[:1], Remote(pki), signer_certificate=org)
    with pytest.raises(CryptoError, match="another certificate"):
        sign_files(files[:1], Remote(pki, "personal"), signer_certificate=org)


def test_missing_file_fails_before_signing(pki: Pki, tmp_path: Path) -> None:
    remote = Remote(pki)
    with pytest.raises(InvalidInput, match=r"nope\.txt"):
        sign_files([tmp_path / "nope.txt"], remote)
    with pytest.raises(InvalidInput, match="not a file"):
        sign_files([tmp_path], remote)
    assert remote.calls == []
    assert sign_files([], remote) == []
