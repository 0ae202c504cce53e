"""Issue 3 acceptance against a running server, with the software key store and
with SoftHSM2 (the ``live`` fixture runs every test once per key store):

- ``openssl verify`` accepts every issued certificate (every seal of the demo
  organization, the OCSP responder, the TSA) against the downloaded root;
- ``openssl crl`` verifies both CRLs, ``openssl ocsp -issuer … -url …`` gets a
  verified answer with the nonce echoed (POST, and GET by hand), ``openssl ts
  -verify`` accepts the time-stamp replies;
- an employee deleted a moment ago reads revoked (affiliationChanged) in the
  CRL and in OCSP as soon as the DELETE returns; the same for a revoked seal
  (cessationOfOperation) and a compromised key (keyCompromise), whose seal
  keeps its SealID with a new good certificate;
- renewal and re-key keep the SealID and the old certificates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pki_live import (
    ORG_LEGAL_NAME,
    ORG_REGISTRATION,
    Live,
    cert_for_serial,
    der,
    gettable,
    ocsp_get_path,
    ocsp_request_der,
    openssl,
    pem,
)

ORG_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def _ocsp_post(live: Live, cert: x509.Certificate, url: str | None = None) -> ocsp.OCSPResponse:
    r = live.post(url or "/pki/ocsp", content=ocsp_request_der(cert, live.ca("issuing")),
                  headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/ocsp-response"
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return resp


def _tsa_cert_from(reply: bytes) -> x509.Certificate:
    token = tsp.TimeStampResp.load(reply)["time_stamp_token"]
    for choice in token["content"]["certificates"]:
        cert = x509.load_der_x509_certificate(choice.chosen.dump())
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.TIME_STAMPING in eku.value:
            return cert
    raise AssertionError("no TSA certificate in the time-stamp token")


def _serial_text(serial_hex: str) -> str:
    """How ``openssl crl -text`` prints a serial (upper-case hex, even length)."""
    s = serial_hex.upper()
    return s if len(s) % 2 == 0 else "0" + s


def _crl_entry_text(crl_text: str, serial_hex: str) -> str:
    """The part of ``openssl crl -text`` describing one revoked serial."""
    marker = f"Serial Number: {_serial_text(serial_hex)}"
    assert marker in crl_text, f"{marker} not in CRL:\n{crl_text}"
    tail = crl_text.split(marker, 1)[1]
    return tail.split("Serial Number:", 1)[0].split("Signature Algorithm", 1)[0]


def _check_revoked_everywhere(live: Live, cert: x509.Certificate, serial_hex: str,
                              crl_reason: str, ocsp_reason: str,
                              crl_number_before: int) -> None:
    """Right now (no waiting): the freshly fetched CRL verifies and lists the
    certificate with the reason, and openssl ocsp says revoked with the reason."""
    raw, crl = live.crl("issuing")
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > crl_number_before
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    crl_file = live.path("issuing.crl", raw)
    out = openssl("crl", "-inform", "DER", "-in", crl_file, "-CAfile", live.ca_chain_pem,
                  "-noout", "-text").stdout
    assert "verify OK" in out, out
    assert crl_reason in _crl_entry_text(out, serial_hex)
    assert live.ocsp_status(cert) == f"revoked {ocsp_reason}"


def _crl_number(live: Live) -> int:
    _, crl = live.crl("issuing")
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


# --------------------------------------------------------------------------- the CA


def test_ca_certificates_are_downloadable_and_chain(live: Live) -> None:
    """The first ``serve`` created the CA; root and issuing CA at /pki/ in DER and PEM."""
    root, issuing = live.ca("root"), live.ca("issuing")
    for name, cert in (("root", root), ("issuing", issuing)):
        r = live.ok("GET", f"/pki/{name}.crt")
        assert r.headers["content-type"] == "application/pkix-cert"
        assert r.content == der(cert)
    assert root.subject == root.issuer
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert issuing.issuer == root.subject
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    out = openssl("verify", "-CAfile", live.root_pem, live.issuing_pem).stdout
    assert f"{live.issuing_pem}: OK" in out
    # The issuing CA names the root's CRL and certificate, and both are served.
    cdp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_url = cdp[0].full_name[0].value
    assert crl_url == f"{live.url}/pki/crl/root.crl"
    root_crl = x509.load_der_x509_crl(live.ok("GET", crl_url).content)
    assert root_crl.is_signature_valid(root.public_key())
    aia = issuing.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    issuers = [d.access_location.value for d in aia
               if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS]
    assert issuers == [f"{live.url}/pki/root.crt"]
    assert live.ok("GET", issuers[0]).content == der(root)
    assert "root.crt" in live.ok("GET", "/pki/").text


def test_every_seal_certificate_verifies_with_subject_usage_and_urls(live: Live) -> None:
    issuing = live.ca("issuing")
    root = live.ca("root")
    people = {u["id"]: u for u in live.employees()}
    seals = live.seals()
    kinds = {s["type"] for s in seals}
    assert {"official", "contract", "invoice", "personal"} <= kinds
    assert sum(s["type"] == "personal" for s in seals) >= 3
    fetched: dict[str, bytes] = {}
    for seal in seals:
        chain = live.chain(seal["seal_id"])
        leaf = chain[0]
        assert [der(c) for c in chain[1:]] == [der(issuing), der(root)], seal
        live.verify_cert(leaf)
        # The leaf is the current certificate of the listing, for the seal's key.
        listing = live.certificates(seal["seal_id"])
        current = [c for c in listing if c["is_current"]]
        assert len(current) == 1 and current[0]["serial"] == format(leaf.serial_number, "x")
        assert current[0]["source"] == "internal"
        # Subject.
        subject = leaf.subject
        assert _attr(subject, NameOID.ORGANIZATION_NAME) == [ORG_LEGAL_NAME]
        if seal["type"] == "personal":
            owner = people[seal["owner_user_id"]]
            assert _attr(subject, NameOID.COMMON_NAME) == [owner["display_name"]]
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert san.get_values_for_type(x509.RFC822Name) == [owner["email"]]
            assert not _attr(subject, ORG_IDENTIFIER)
        else:
            assert _attr(subject, NameOID.COMMON_NAME) == [seal["name"]]
            (org_id,) = _attr(subject, ORG_IDENTIFIER)
            assert org_id.startswith("NTR") and org_id.endswith("-" + ORG_REGISTRATION)
        # Key usage: digitalSignature + nonRepudiation, critical; not a CA.
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
        assert not ku.value.key_cert_sign and not ku.value.crl_sign
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        # CRL distribution point and AIA: from the public base URL, and they serve.
        cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        (crl_url,) = [n.value for dp in cdp for n in dp.full_name or ()]
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp_urls = [d.access_location.value for d in aia
                     if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP]
        ca_urls = [d.access_location.value for d in aia
                   if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS]
        assert len(ocsp_urls) == 1 and len(ca_urls) == 1
        for url in (crl_url, ocsp_urls[0], ca_urls[0]):
            assert url.startswith(live.url + "/pki/"), url
        if crl_url not in fetched:
            fetched[crl_url] = live.ok("GET", crl_url).content
        crl = x509.load_der_x509_crl(fetched[crl_url])
        assert crl.issuer == leaf.issuer and crl.is_signature_valid(issuing.public_key())
        if ca_urls[0] not in fetched:
            fetched[ca_urls[0]] = live.ok("GET", ca_urls[0]).content
        assert fetched[ca_urls[0]] == der(issuing)
        single = _ocsp_post(live, leaf, ocsp_urls[0])
        assert single.serial_number == leaf.serial_number
        expected = (ocsp.OCSPCertStatus.GOOD if current[0]["status"] == "good"
                    else ocsp.OCSPCertStatus.REVOKED)
        assert single.certificate_status == expected


def test_ocsp_responder_and_tsa_certificates_verify(live: Live) -> None:
    official = live.seal_of_type("official")
    resp = _ocsp_post(live, live.current(official["seal_id"]))
    (responder,) = resp.certificates
    live.verify_cert(responder)
    live.verify_cert(responder, "-purpose", "ocsphelper")
    assert responder.issuer == live.ca("issuing").subject
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)  # id-pkix-ocsp-nocheck

    tsq = live.path("q.tsq")
    openssl("ts", "-query", "-digest", "ab" * 32, "-sha256", "-cert", "-out", tsq)
    reply = live.post("/pki/tsa", content=tsq.read_bytes(),
                      headers={"Content-Type": "application/timestamp-query"}).content
    tsa = _tsa_cert_from(reply)
    live.verify_cert(tsa)
    live.verify_cert(tsa, "-purpose", "timestampsign")
    eku_ext = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku_ext.critical and list(eku_ext.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


# --------------------------------------------------------------------------- CRL, OCSP, TSA


def test_crls_verify_with_openssl(live: Live) -> None:
    for name, cafile in (("issuing", live.ca_chain_pem), ("root", live.root_pem)):
        raw, crl = live.crl(name)
        path = live.path(f"{name}.crl", raw)
        out = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", cafile,
                      "-noout").stdout
        assert "verify OK" in out, out
        # CRL v2: authority key identifier, cRLNumber, thisUpdate < nextUpdate.
        issuer = live.ca(name)
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == ski.digest
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1
        assert crl.next_update_utc is not None
        assert crl.last_update_utc <= datetime.now(UTC) < crl.next_update_utc


def test_openssl_ocsp_good_with_nonce_post_and_get(live: Live) -> None:
    official = live.seal_of_type("official")  # never revoked by any test
    leaf = live.current(official["seal_id"])
    out = live.openssl_ocsp(leaf)
    assert "Cert Status: good" in out
    assert live.ocsp_status(leaf) == "good"

    # GET (RFC 6960 A.1): the URL-encoded base64 of the DER request.
    leaf_pem = live.path("get-leaf.pem", pem(leaf))
    req = live.path("get-req.der")

    def make() -> bytes:  # openssl adds a random nonce
        openssl("ocsp", "-issuer", live.issuing_pem, "-cert", leaf_pem, "-reqout", req)
        return req.read_bytes()

    req.write_bytes(gettable(make))
    r = live.get(ocsp_get_path(req.read_bytes()))
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    resp = live.path("get-resp.der", r.content)
    # -reqin (not -cert) so that openssl checks the nonce of *that* request.
    out = openssl("ocsp", "-respin", resp, "-reqin", req, "-verify_other", live.issuing_pem,
                  "-CAfile", live.root_pem, "-resp_text").stdout
    assert "Response verify OK" in out and "WARNING" not in out, out
    assert "Cert Status: good" in out and "OCSP Nonce" in out
    parsed = ocsp.load_der_ocsp_response(r.content)
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
    # A SHA-256 CertID is answered too (the CertID is echoed as sent).
    sha256 = ocsp_request_der(leaf, live.ca("issuing"), hashes.SHA256(), nonce=b"n" * 16)
    r = live.post("/pki/ocsp", content=sha256)
    parsed = ocsp.load_der_ocsp_response(r.content)
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert isinstance(parsed.hash_algorithm, hashes.SHA256)
    nonce = parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"n" * 16


def test_openssl_ts_verify(live: Live) -> None:
    data = live.path("document.txt", b"a document to time-stamp\n" * 10)
    for digest in ("-sha256", "-sha512"):
        tsq = live.path("q.tsq")
        openssl("ts", "-query", "-data", data, digest, "-cert", "-out", tsq)
        r = live.post("/pki/tsa", content=tsq.read_bytes(),
                      headers={"Content-Type": "application/timestamp-query"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/timestamp-reply"
        tsr = live.path("reply.tsr", r.content)
        out = openssl("ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile",
                      live.root_pem, "-untrusted", live.issuing_pem).stdout
        assert "Verification: OK" in out, out
        text = openssl("ts", "-reply", "-in", tsr, "-text").stdout
        query_text = openssl("ts", "-query", "-in", tsq, "-text").stdout
        assert "Status: Granted." in text
        assert "Policy OID: 2.25.197620417950215632489632981212843712523" in text
        assert "Accuracy: 0x01 seconds" in text
        nonce = next(line for line in query_text.splitlines() if line.startswith("Nonce:"))
        assert nonce in text  # echoed
    # Without -cert the token carries no certificates: verify with the TSA's
    # certificate given separately.
    tsq = live.path("q-nocert.tsq")
    openssl("ts", "-query", "-data", data, "-sha256", "-out", tsq)
    r = live.post("/pki/tsa", content=tsq.read_bytes(),
                  headers={"Content-Type": "application/timestamp-query"})
    tsr = live.path("reply-nocert.tsr", r.content)
    token = tsp.TimeStampResp.load(r.content)["time_stamp_token"]
    assert not token["content"]["certificates"]
    with_certs = live.post("/pki/tsa", content=_query_with_cert(live, data)).content
    tsa_and_issuing = live.path("tsa-chain.pem", pem(_tsa_cert_from(with_certs))
                                + live.issuing_pem.read_bytes())
    out = openssl("ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile", live.root_pem,
                  "-untrusted", tsa_and_issuing).stdout
    assert "Verification: OK" in out, out


def _query_with_cert(live: Live, data: Path) -> bytes:
    tsq = live.path("q-cert.tsq")
    openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", tsq)
    return tsq.read_bytes()


# --------------------------------------------------------------------------- revocation


def test_deleted_employee_reads_revoked_in_crl_and_ocsp_at_once(live: Live) -> None:
    bob = next(u for u in live.employees() if u["email"] == "bob@example.com")
    assert bob["status"] == "active"
    seal = next(s for s in live.seals()
                if s["type"] == "personal" and s["owner_user_id"] == bob["id"])
    cert = live.current(seal["seal_id"])
    serial = format(cert.serial_number, "x")
    assert live.ocsp_status(cert) == "good"
    before = _crl_number(live)

    r = live.http.delete(f"/api/v1/organizations/{live.org_id}/employees/{bob['id']}",
                         headers=live.account_admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deleted"
    # Immediately: no wait, no retry.
    _check_revoked_everywhere(live, cert, serial, "Affiliation Changed", "affiliationChanged",
                              before)
    listing = live.certificates(seal["seal_id"])
    assert [(c["serial"], c["status"], c["revocation_reason"]) for c in listing] == [
        (serial, "revoked", "affiliation_changed")]
    assert live.get("/api/v1/me", headers=live.auth("bob@example.com")).status_code == 401


def test_revoking_a_seal_revokes_its_certificate(live: Live) -> None:
    seal = live.seal_of_type("financial")
    sid = seal["seal_id"]
    cert = live.current(sid)
    # Reasons that belong to other flows are refused.
    r = live.post(f"/api/v1/seals/{sid}/revoke", json={"reason": "affiliation_changed"},
                  headers=live.eseal)
    assert r.status_code == 400
    assert live.ocsp_status(cert) == "good"
    before = _crl_number(live)

    r = live.post(f"/api/v1/seals/{sid}/revoke", json={"reason": "cessation_of_operation"},
                  headers=live.eseal)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked" and r.json()["seal_id"] == sid
    _check_revoked_everywhere(live, cert, format(cert.serial_number, "x"),
                              "Cessation Of Operation", "cessationOfOperation", before)
    (row,) = live.certificates(sid)
    assert row["status"] == "revoked" and row["revocation_reason"] == "cessation_of_operation"
    # A revoked seal gets no new certificate or key.
    for action in ("renew", "rekey"):
        assert live.post(f"/api/v1/seals/{sid}/{action}",
                         headers=live.eseal).status_code == 409


def test_compromised_key_is_revoked_and_replaced_under_the_same_seal_id(live: Live) -> None:
    seal = live.seal_of_type("employment_agreement")
    sid = seal["seal_id"]
    old = live.current(sid)
    old_row = next(c for c in live.certificates(sid) if c["is_current"])
    before = _crl_number(live)

    r = live.post(f"/api/v1/seals/{sid}/compromised", headers=live.eseal)
    assert r.status_code == 200, r.text
    new_row = r.json()
    assert new_row["is_current"] and new_row["status"] == "good"
    assert new_row["key_fingerprint"] != old_row["key_fingerprint"]
    _check_revoked_everywhere(live, old, old_row["serial"], "Key Compromise", "keyCompromise",
                              before)
    new = live.current(sid)
    assert format(new.serial_number, "x") == new_row["serial"]
    assert live.ocsp_status(new) == "good"
    live.verify_cert(new)
    # Same SealID, still active, both certificates listed.
    got = live.ok("GET", f"/api/v1/seals/{sid}", headers=live.eseal).json()
    assert got["seal_id"] == sid and got["status"] == "active"
    listing = {c["serial"]: c for c in live.certificates(sid)}
    assert set(listing) == {old_row["serial"], new_row["serial"]}
    assert listing[old_row["serial"]]["status"] == "revoked"
    assert listing[old_row["serial"]]["revocation_reason"] == "key_compromise"
    assert not listing[old_row["serial"]]["is_current"]


def test_renew_and_rekey_keep_the_seal_id_and_the_old_certificates(live: Live) -> None:
    seal = live.seal_of_type("authorized_signature")
    sid = seal["seal_id"]
    first = next(c for c in live.certificates(sid) if c["is_current"])

    renewed = live.ok("POST", f"/api/v1/seals/{sid}/renew", headers=live.eseal).json()
    assert renewed["serial"] != first["serial"]
    assert renewed["key_fingerprint"] == first["key_fingerprint"]  # same key
    rekeyed = live.ok("POST", f"/api/v1/seals/{sid}/rekey", headers=live.eseal).json()
    assert rekeyed["key_fingerprint"] != first["key_fingerprint"]  # new key

    assert live.ok("GET", f"/api/v1/seals/{sid}", headers=live.eseal).json()["seal_id"] == sid
    listing = live.certificates(sid)
    assert [c["serial"] for c in listing] == [first["serial"], renewed["serial"],
                                              rekeyed["serial"]]
    assert [c["is_current"] for c in listing] == [False, False, True]
    assert {c["status"] for c in listing} == {"good"}
    # The old certificates stay verifiable and good (they verify old signatures).
    for row in listing:
        cert = cert_for_serial(row["serial"], listing)
        live.verify_cert(cert)
        assert live.ocsp_status(cert) == "good"
    assert format(live.current(sid).serial_number, "x") == rekeyed["serial"]
