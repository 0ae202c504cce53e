"""``sealkeeper verify`` on PDFs and .p7s files signed with the local test PKI.

Acceptance lines of issue 5 shown here: PDFs signed at B-B, B-T, B-LT and
B-LTA verify valid with the right level (exit 0); one changed byte is
invalid (exit 1); a second signature added later leaves the first valid; a
B-LT signature whose certificate is revoked after signing stays valid as of
its signing time (from the DSS), while a B-B one checked online afterwards is
revoked; a .p7s verifies and a changed file does not.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from verify_cli import run_verify
from verify_pki import LocalPki, Seal, build_pki, make_pdf, sign_p7s, sign_pdf

from sealkeeper.client.pades import Level
from sealkeeper.client.report import VerifyOptions, verify_detached, verify_pdf


@pytest.fixture(scope="module")
def seal(pki: LocalPki) -> Seal:
    return pki.new_seal()


@pytest.fixture(scope="module")
def signed(pki: LocalPki, seal: Seal, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[Level, Path]:
    d = tmp_path_factory.mktemp("signed")
    out = {}
    for level in Level:
        src = d / f"contract-{level.value}.pdf"
        src.write_bytes(make_pdf(2))
        out[level] = sign_pdf(pki, seal, src, level)
    return out


# --------------------------------------------------------------------------- levels


@pytest.mark.parametrize("level", list(Level))
def test_levels_verify_valid(signed: dict[Level, Path], root_pem: Path, level: Level) -> None:
    res = run_verify(signed[level], "--trust", root_pem, "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    report = res.report
    assert report["verdict"] == "valid" and report["exit_code"] == 0
    sigs = report["signatures"]
    assert [s["kind"] for s in sigs] == (
        ["signature", "document_timestamp"] if level is Level.B_LTA else ["signature"])
    s = sigs[0]
    assert s["verdict"] == "valid" and s["problems"] == [] and s["warnings"] == []
    assert (s["format"], s["level"]) == ("PAdES", level.value)
    assert s["field"] == "Seal1"
    assert s["signer"]["common_name"] == "Example Ltd Contract Seal"
    assert s["signer"]["organization_identifier"] == "NTRFI-1234567-8"
    assert s["organization"] == "Example Ltd"
    assert s["seal"] == {"kind": "organization_seal", "name": "Example Ltd Contract Seal",
                         "type": None, "seal_id": None}
    assert s["signing_time"] and "claimed" in s["signing_time_source"]
    assert s["intact"] and s["signature_valid"]
    assert s["trust"]["trusted"] and s["trust"]["root"] == "sealkeeper Root CA"
    assert s["trust"]["chain"] == ["Example Ltd Contract Seal",
                                   "sealkeeper Issuing CA",
                                   "sealkeeper Root CA"]
    assert s["revocation"]["status"] == "good"
    assert s["changes"]["changed_after_signing"] is False
    assert s["log"]["status"] == "skipped"
    if level is Level.B_B:
        assert s["timestamp"] is None
    else:
        assert s["timestamp"]["status"] == "valid" and "Time Stamping" in s["timestamp"]["tsa"]
    if level.long_term:  # validated at the time-stamp's time from the DSS alone
        assert s["revocation"]["as_of"] == s["timestamp"]["time"]
        assert "DSS" in s["revocation"]["source"]
        assert s["changes"]["modification_level"] == "lta_updates"
    else:
        assert s["revocation"]["source"] == "checked online"
        assert s["changes"]["coverage"] == "entire_file"
    if level is Level.B_LTA:
        ts = sigs[1]
        assert ts["verdict"] == "valid" and ts["timestamp"]["status"] == "valid"
        assert ts["signer"]["common_name"] == "sealkeeper Time Stamping Authority"


def test_long_term_levels_need_no_network(signed: dict[Level, Path], root_pem: Path,
                                          pki: LocalPki) -> None:
    pki.down = True
    try:
        for level in (Level.B_LT, Level.B_LTA):
            res = run_verify(signed[level], "--trust", root_pem, "--json", "--offline")
            assert res.exit_code == 0, res.stdout
        # without a DSS the revocation status cannot be known offline: undecided
        res = run_verify(signed[Level.B_T], "--trust", root_pem, "--json", "--offline")
        assert res.exit_code == 2
        assert res.report["signatures"][0]["revocation"]["status"] == "unknown"
        # and online with the PKI down: a network failure, also exit 2
        res = run_verify(signed[Level.B_B], "--trust", root_pem, "--json")
        assert res.exit_code == 2 and res.report["verdict"] == "indeterminate"
    finally:
        pki.down = False


def test_human_output(signed: dict[Level, Path], root_pem: Path) -> None:
    res = run_verify(signed[Level.B_LTA], "--trust", root_pem)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "VALID (2 signatures)" in out
    for text in ("Signature 1", "field Seal1", "Example Ltd Contract Seal",
                 "NTRFI-1234567-8", "Time-stamp", "Integrity", "intact", "Trust",
                 "Revocation", "good as of", "level B-LTA", "Changes", "Usage log",
                 "Document time-stamp 2"):
        assert text in out, (text, out)


def test_help_documents_exit_codes() -> None:
    res = run_verify("--help")
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    assert "Exit codes: 0 every signature is valid; 1 a signature is invalid" in text
    for option in ("--signature", "--trust", "--json", "--server", "--token",
                   "--no-log-check", "--offline"):
        assert option in text


# --------------------------------------------------------------------------- changes


def test_one_changed_byte_is_invalid(signed: dict[Level, Path], root_pem: Path,
                                     tmp_path: Path) -> None:
    data = bytearray(signed[Level.B_T].read_bytes())
    at = data.index(b"Sealkeeper test document")
    data[at] = ord("Z")
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    res = run_verify(tampered, "--trust", root_pem, "--json")
    assert res.exit_code == 1, res.stdout + res.stderr
    s = res.report["signatures"][0]
    assert res.report["verdict"] == "invalid" and s["verdict"] == "invalid"
    assert s["intact"] is False
    assert any("integrity" in p for p in s["problems"])
    human = run_verify(tampered, "--trust", root_pem)
    assert human.exit_code == 1 and "INVALID" in human.stdout and "CHANGED" in human.stdout


def test_changed_signature_value_is_invalid(signed: dict[Level, Path], root_pem: Path,
                                            tmp_path: Path) -> None:
    data = signed[Level.B_B].read_bytes()
    start = data.index(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    hexdata = bytearray(data[start:end])
    # flip a hex digit near the end of the DER (inside the signature value)
    der_len = len(bytes.fromhex(hexdata.decode()).rstrip(b"\x00"))
    i = 2 * der_len - 10
    hexdata[i] = ord("0") if hexdata[i] != ord("0") else ord("1")
    bad = tmp_path / "badsig.pdf"
    bad.write_bytes(data[:start] + bytes(hexdata) + data[end:])
    res = run_verify(bad, "--trust", root_pem, "--json")
    assert res.exit_code == 1, res.stdout + res.stderr
    assert res.report["signatures"][0]["verdict"] == "invalid"


def test_appended_content_change_is_invalid(signed: dict[Level, Path], root_pem: Path,
                                            tmp_path: Path) -> None:
    """An incremental update that changes the page after signing: modified."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    out = tmp_path / "changed-later.pdf"
    with signed[Level.B_B].open("rb") as f:
        w = IncrementalPdfFileWriter(f)
        page = w.root["/Pages"]["/Kids"][0].get_object()
        stream = generic.StreamObject(stream_data=b"BT /F1 30 Tf 72 400 Td (PAID) Tj ET")
        page["/Contents"] = w.add_object(stream)
        w.update_container(page)
        with out.open("wb") as o:
            w.write(o)
    res = run_verify(out, "--trust", root_pem, "--json")
    assert res.exit_code == 1, res.stdout
    s = res.report["signatures"][0]
    assert s["intact"] is True
    assert s["changes"]["changed_after_signing"] and not s["changes"]["permitted"]
    assert any("modified after signing" in p for p in s["problems"])


def test_second_signature_leaves_first_valid(pki: LocalPki, seal: Seal,
                                             signed: dict[Level, Path], root_pem: Path,
                                             tmp_path: Path) -> None:
    person = pki.new_seal(personal=True)
    twice = sign_pdf(pki, person, signed[Level.B_LT], Level.B_T, out=tmp_path / "twice.pdf")
    res = run_verify(twice, "--trust", root_pem, "--json")
    assert res.exit_code == 0, res.stdout
    first, second = res.report["signatures"]
    assert (first["field"], second["field"]) == ("Seal1", "Seal2")
    assert first["verdict"] == second["verdict"] == "valid"
    assert first["level"] == "B-LT" and second["level"] == "B-T"
    assert first["changes"]["changed_after_signing"] is True
    assert first["changes"]["permitted"] is True
    assert "further signatures" in first["changes"]["summary"]
    assert second["changes"]["changed_after_signing"] is False
    assert second["signer"]["email"] == "alice@example.com"
    assert second["seal"]["kind"] == "personal_signature"


# --------------------------------------------------------------------------- revocation


def test_revoked_after_signing(pki: LocalPki, root_pem: Path, tmp_path: Path) -> None:
    victim = pki.new_seal()
    docs = {}
    for level in (Level.B_B, Level.B_T, Level.B_LT):
        src = tmp_path / f"r-{level.value}.pdf"
        src.write_bytes(make_pdf(1))
        docs[level] = sign_pdf(pki, victim, src, level)
    time.sleep(1.1)  # revocation times are whole seconds
    pki.revoke(victim.cert)

    # B-LT: valid as of its signing time, from the DSS (no network needed)
    res = run_verify(docs[Level.B_LT], "--trust", root_pem, "--json", "--offline")
    assert res.exit_code == 0, res.stdout
    s = res.report["signatures"][0]
    assert s["revocation"]["status"] == "good"
    assert s["revocation"]["as_of"] == s["timestamp"]["time"]

    # B-B checked online now: revoked, invalid
    res = run_verify(docs[Level.B_B], "--trust", root_pem, "--json")
    assert res.exit_code == 1, res.stdout
    s = res.report["signatures"][0]
    assert s["revocation"]["status"] == "revoked" and s["revocation"]["revoked_at"]
    assert any(p.startswith("revoked: the signer's certificate was revoked")
               and "no time-stamp" in p for p in s["problems"])
    human = run_verify(docs[Level.B_B], "--trust", root_pem)
    assert human.exit_code == 1 and "revoked" in human.stdout

    # B-T checked online: the trusted time-stamp predates the revocation
    res = run_verify(docs[Level.B_T], "--trust", root_pem, "--json")
    assert res.exit_code == 0, res.stdout
    s = res.report["signatures"][0]
    assert s["revocation"]["status"] == "good" and s["revocation"]["revoked_at"]
    assert any("after the signature's time-stamp" in w for w in s["warnings"])


def test_untrusted_root_is_invalid(signed: dict[Level, Path], tmp_path: Path) -> None:
    other = build_pki("http://127.0.0.1:9")  # another PKI (nothing listens there)
    report = verify_pdf(signed[Level.B_B], VerifyOptions(trust_roots=[other.root_der],
                                                         allow_fetching=False))
    assert report.exit_code == 1
    s = report.signatures[0]
    assert s.trust is not None and not s.trust.trusted
    assert any("not trusted" in p for p in s.problems)


# --------------------------------------------------------------------------- .p7s


def test_p7s_valid_and_changed_file(pki: LocalPki, seal: Seal, root_pem: Path,
                                    tmp_path: Path) -> None:
    data = tmp_path / "invoice.xml"
    data.write_text("<invoice><total>42.00</total></invoice>\n")
    p7s = sign_p7s(pki, seal, data, timestamp=True)
    res = run_verify(data, "--signature", p7s, "--trust", root_pem, "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    report = res.report
    assert report["type"] == "detached" and report["signature_file"] == "invoice.xml.p7s"
    s = report["signatures"][0]
    assert (s["format"], s["level"]) == ("CAdES", "B-T")
    assert s["signing_time_source"] == "signed attribute"
    assert s["timestamp"]["status"] == "valid" and s["trust"]["trusted"]
    assert s["revocation"]["status"] == "good"
    assert s["changes"]["changed_after_signing"] is False

    data.write_text("<invoice><total>4200.00</total></invoice>\n")
    res = run_verify(data, "--signature", p7s, "--trust", root_pem, "--json")
    assert res.exit_code == 1, res.stdout
    s = res.report["signatures"][0]
    assert s["intact"] is False and s["changes"]["changed_after_signing"]

    # the engine takes streams too
    with data.open("rb") as f:
        report_obj = verify_detached(f, p7s.read_bytes(), VerifyOptions(
            trust_roots=[pki.root_der]), name="invoice.xml")
    assert report_obj.exit_code == 1


def test_p7s_of_another_file_and_bad_p7s(pki: LocalPki, seal: Seal, root_pem: Path,
                                         tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"a" * 1000)
    b.write_bytes(b"b" * 1000)
    p7s = sign_p7s(pki, seal, a)
    res = run_verify(b, "--signature", p7s, "--trust", root_pem, "--json")
    assert res.exit_code == 1
    junk = tmp_path / "junk.p7s"
    junk.write_bytes(b"\x30\x82\x01\x00garbage")
    run_verify(a, "--signature", junk, "--trust", root_pem).assert_clean_error()
    run_verify(a, "--trust", root_pem).assert_clean_error()  # not a PDF, no --signature
