"""Issue 3, outside CA (deliver item 4), against the running server with both
key stores: the seal's CSR (signed in the key store) is issued by a CA built
here with ``cryptography``; the chain imported with POST /certificate becomes
the seal's current certificate (source external) and is what /chain.pem
serves; chains for another key, or otherwise unusable, are refused with 400
and change nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID
from pki_live import Live, der, openssl, pem

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class OutsideCa:
    """A two-level CA, like a public one, entirely outside sealkeeper."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate

    @classmethod
    def build(cls, name: str = "Outside Trust Services") -> OutsideCa:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                               x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root")])
        root = _ca_cert(root_name, root_name, root_key.public_key(), root_key, path_len=1)
        key = ec.generate_private_key(ec.SECP256R1())
        int_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                              x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Seal CA")])
        intermediate = _ca_cert(int_name, root_name, key.public_key(), root_key, path_len=0)
        return cls(root_key, root, key, intermediate)

    def issue(self, subject: x509.Name, public_key: PublicKeyTypes, *,
              sans: list[x509.GeneralName] | None = None, signing: bool = True,
              not_after: datetime | None = None) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(self.intermediate.subject).public_key(public_key)  # type: ignore[arg-type]
             .serial_number(x509.random_serial_number())
             .not_valid_before(NOW - timedelta(days=2))
             .not_valid_after(not_after or NOW + timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(
                 digital_signature=signing, content_commitment=signing,
                 key_encipherment=not signing, data_encipherment=False, key_agreement=False,
                 key_cert_sign=False, crl_sign=False, encipher_only=False,
                 decipher_only=False), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 self.key.public_key()), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(self.key, hashes.SHA256())


def _ca_cert(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             signer: ec.EllipticCurvePrivateKey, path_len: int) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=30))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .sign(signer, hashes.SHA256()))


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _csr(live: Live, seal_id: str) -> x509.CertificateSigningRequest:
    r = live.get(f"/api/v1/seals/{seal_id}/csr", headers=live.eseal)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pkcs10"
    csr = x509.load_pem_x509_csr(r.content)
    out = openssl("req", "-in", live.path("seal.csr", r.content), "-verify", "-noout").stdout
    assert "verify OK" in out.replace("Certificate request self-signature verify OK",
                                      "verify OK"), out
    return csr


def test_outside_ca_chain_from_the_csr_becomes_current(live: Live) -> None:
    seal = live.seal_of_type("invoice")
    sid = seal["seal_id"]
    before = live.certificates(sid)
    ours = live.current(sid)
    # Only the e-seal administrator gets the CSR or installs a chain.
    alice = live.auth("alice@example.com")
    assert live.get(f"/api/v1/seals/{sid}/csr", headers=alice).status_code in (403, 404)
    csr = _csr(live, sid)
    assert csr.is_signature_valid
    assert _spki(csr.public_key()) == _spki(ours.public_key())  # the seal's own key
    assert csr.subject == ours.subject

    outside = OutsideCa.build()
    leaf = outside.issue(csr.subject, csr.public_key())
    chain = pem(leaf, outside.intermediate, outside.root)
    assert live.post(f"/api/v1/seals/{sid}/certificate", content=chain,
                     headers=alice).status_code in (403, 404)
    try:
        r = live.post(f"/api/v1/seals/{sid}/certificate", content=chain,
                      headers={**live.eseal, "Content-Type": "application/x-pem-file"})
        assert r.status_code == 200, r.text
        row = r.json()
        assert row["source"] == "external" and row["is_current"] and row["status"] == "good"
        assert row["serial"] == format(leaf.serial_number, "x")
        served = live.chain(sid)
        assert [der(c) for c in served] == [der(leaf), der(outside.intermediate),
                                            der(outside.root)]
        out = openssl("verify", "-CAfile", live.path("outside-root.pem", pem(outside.root)),
                      "-untrusted", live.path("outside-int.pem", pem(outside.intermediate)),
                      live.path("outside-leaf.pem", pem(served[0]))).stdout
        assert ": OK" in out
        listing = live.certificates(sid)
        assert len(listing) == len(before) + 1
        assert [c["is_current"] for c in listing if c["source"] == "internal"] == [False]
        assert listing[-1]["serial"] == row["serial"]

        # A renewal by the outside CA, sent root first: the order does not matter.
        renewed = outside.issue(csr.subject, csr.public_key())
        r = live.post(f"/api/v1/seals/{sid}/certificate",
                      content=pem(outside.root, renewed, outside.intermediate),
                      headers=live.eseal)
        assert r.status_code == 200, r.text
        assert [der(c) for c in live.chain(sid)] == [der(renewed), der(outside.intermediate),
                                                     der(outside.root)]
        assert len(live.certificates(sid)) == len(before) + 2
    finally:
        # Back to a certificate of our own CA (other tests verify every seal
        # against our root); the outside certificates stay listed.
        live.ok("POST", f"/api/v1/seals/{sid}/rekey", headers=live.eseal)
    listing = live.certificates(sid)
    assert [c["source"] for c in listing if c["is_current"]] == ["internal"]
    assert sum(c["source"] == "external" for c in listing) == 2


def test_a_chain_that_is_not_for_the_seal_key_is_refused(live: Live) -> None:
    seal = live.seal_of_type("contract")
    sid = seal["seal_id"]
    before = live.certificates(sid)
    csr = _csr(live, sid)
    outside, stranger = OutsideCa.build(), OutsideCa.build("Stranger CA")
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    good_leaf = outside.issue(csr.subject, csr.public_key())
    bad = {
        "another key": pem(outside.issue(csr.subject, other_key), outside.intermediate,
                           outside.root),
        "only the CA certificates": pem(outside.intermediate, outside.root),
        "not for signing": pem(outside.issue(csr.subject, csr.public_key(), signing=False),
                               outside.intermediate),
        "expired": pem(outside.issue(csr.subject, csr.public_key(),
                                     not_after=NOW - timedelta(days=1)),
                       outside.intermediate),
        "a certificate outside the chain": pem(good_leaf, outside.intermediate,
                                               stranger.intermediate),
        "garbage": b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
        "random bytes": bytes(range(256)) * 4,
        "empty": b"",
    }
    for what, body in bad.items():
        r = live.post(f"/api/v1/seals/{sid}/certificate", content=body, headers=live.eseal)
        assert r.status_code == 400, (what, r.status_code, r.text)
        assert r.json().get("error"), (what, r.text)
    assert live.certificates(sid) == before
    chain = live.chain(sid)
    assert chain[0].issuer == live.ca("issuing").subject  # still ours
