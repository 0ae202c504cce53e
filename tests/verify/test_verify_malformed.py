"""Malformed input to ``sealkeeper verify``: a clear one-line error and exit 2,
never a traceback (acceptance line of issue 5: at least 50 malformed PDFs).

The inputs: the 11 malformed PDFs and 60 fuzzed PDFs of ``tests/client/pdfs.py``
and 40 truncations of a signed PDF. A corrupted file that a reader can still
parse is a PDF without a (valid) signature: exit 1 with a report, also never a
traceback. At least 50 of them must be refused with exit 2.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from verify_cli import run_verify, run_verify_process
from verify_pki import LocalPki, fuzzed_pdfs, make_pdf, malformed_pdfs, sign_pdf

from sealkeeper.client.pades import Level
from sealkeeper.client.report import VerifyOptions, verify_pdf
from sealkeeper.errors import InvalidInput


def _cases(signed: bytes) -> list[tuple[str, bytes]]:
    cases = list(malformed_pdfs()) + list(fuzzed_pdfs(60))
    rng = random.Random(11)
    for _ in range(40):
        cut = rng.randrange(1, len(signed) - 1)
        cases.append((f"signed PDF truncated at {cut}", signed[:cut]))
    return cases


@pytest.fixture(scope="module")
def signed_bytes(pki: LocalPki, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("mal")
    src = d / "s.pdf"
    src.write_bytes(make_pdf(2))
    return sign_pdf(pki, pki.new_seal(), src, Level.B_B).read_bytes()


def test_malformed_pdfs_exit_2_with_one_line(signed_bytes: bytes, root_pem: Path,
                                            tmp_path: Path) -> None:
    refused = readable = 0
    for i, (what, data) in enumerate(_cases(signed_bytes)):
        path = tmp_path / f"m{i}.pdf"
        path.write_bytes(data)
        res = run_verify(path, "--trust", root_pem, "--offline")
        assert "Traceback" not in res.stdout + res.stderr, what
        assert res.exception is None or isinstance(res.exception, SystemExit), (what,
                                                                               res.exception)
        if res.exit_code == 2:
            res.assert_clean_error()
            assert f"m{i}.pdf" in res.stderr, (what, res.stderr)
            refused += 1
        else:  # still parseable: reported as not validly signed
            assert res.exit_code == 1, (what, res.exit_code, res.stdout)
            assert "INVALID" in res.stdout, what
            readable += 1
    assert refused >= 50, (refused, readable)


def test_malformed_pdfs_in_a_real_process(root_pem: Path, tmp_path: Path) -> None:
    cases = list(malformed_pdfs())[:1]
    for i, (what, data) in enumerate(cases):
        path = tmp_path / f"p{i}.pdf"
        path.write_bytes(data)
        res = run_verify_process(path, "--trust", root_pem, "--offline")
        assert res.exit_code == 2, (what, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (what, res.stderr)


def test_other_errors_are_one_line(root_pem: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(make_pdf(1))
    run_verify(tmp_path / "missing.pdf", "--trust", root_pem).assert_clean_error()
    run_verify(pdf).assert_clean_error()  # no trust root at all
    bad_root = tmp_path / "bad.pem"
    bad_root.write_text("not a certificate")
    run_verify(pdf, "--trust", bad_root).assert_clean_error()
    # the server cannot be reached for its root: a network failure
    res = run_verify(pdf, "--server", "http://127.0.0.1:9", "--timeout", "2")
    res.assert_clean_error()
    assert "cannot reach" in res.stderr
    # an unsigned, well-formed PDF is not an error but not valid either
    res = run_verify(pdf, "--trust", root_pem)
    assert res.exit_code == 1 and "no signatures found" in res.stdout


def test_engine_raises_invalid_input_only(pki: LocalPki) -> None:
    for what, data in list(malformed_pdfs()):
        import io

        with pytest.raises(InvalidInput) as e:
            verify_pdf(io.BytesIO(data), VerifyOptions(trust_roots=[pki.root_der]),
                       name="x.pdf")
        assert "x.pdf" in e.value.message, what
        assert "\n" not in e.value.message
