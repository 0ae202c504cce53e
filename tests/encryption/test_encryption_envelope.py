"""CMS envelopes between the client (encrypts, decrypts content) and the
service's unwrap (crypto.envelope over a key store), and openssl on both sides."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from encryption_helpers import export_software_key, key_pem, openssl

from sealkeeper.client import crypt
from sealkeeper.crypto import envelope, x509ca
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, KeyPurpose, KeyStore
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from sealkeeper.errors import CryptoError, InvalidInput, NotFound

NOW = datetime.now(UTC).replace(microsecond=0)
URLS = x509ca.PkiUrls(crl_url="http://x/crl", ocsp_url="http://x/ocsp",
                      ca_issuers_url="http://x/ca.crt", root_crl_url="http://x/root.crl")
BACKENDS = ["software", pytest.param("pkcs11", marks=pytest.mark.hsm)]


class Party:
    def __init__(self, store: KeyStore, ca: KeyHandle, ca_cert: x509.Certificate,
                 algorithm: KeyAlgorithm, email: str) -> None:
        gen = store.generate(algorithm, label=email, purpose=KeyPurpose.DECRYPT)
        self.handle = KeyHandle(store, gen.key_ref, algorithm)
        self.cert = x509ca.issue_encryption_certificate(
            ca, ca_cert, gen.public_key,
            subject=x509ca.PersonalSignature(name=email, email=email, organization="Test"),
            serial=x509ca.new_serial(), not_before=NOW, not_after=NOW + timedelta(days=30),
            urls=URLS)

    def unwrap(self, info: bytes) -> bytes:
        parsed = envelope.parse_recipient_info(info)
        index = next(i for i, rid in enumerate(parsed.rids)
                     if rid.matches(self.cert.public_bytes(serialization.Encoding.DER)))
        return envelope.unwrap_content_key(parsed, index, self.handle)


@pytest.fixture(scope="module")
def ca() -> tuple[KeyHandle, x509.Certificate]:
    store = SoftwareKeyStore(secrets.token_bytes(32))
    gen = store.generate(KeyAlgorithm.EC_P256, label="ca")
    handle = KeyHandle(store, gen.key_ref, KeyAlgorithm.EC_P256)
    return handle, x509ca.issue_root(handle, x509ca.CaConfig(), NOW - timedelta(days=1))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> KeyStore:
    result: KeyStore = request.getfixturevalue(f"enc_{request.param}_store")
    return result


def test_certificate_is_for_encryption_only(ca) -> None:
    store = SoftwareKeyStore(secrets.token_bytes(32))
    for algorithm, agreement in ((KeyAlgorithm.EC_P256, True), (KeyAlgorithm.RSA_2048, False)):
        cert = Party(store, *ca, algorithm, "a@x.example").cert
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_agreement is agreement
        assert usage.value.key_encipherment is not agreement
        assert not usage.value.digital_signature and not usage.value.content_commitment
        crypt.check_recipient_certificate(cert, email="a@x.example")
        with pytest.raises(InvalidInput):
            crypt.check_recipient_certificate(cert, email="b@x.example")
        with pytest.raises(InvalidInput):
            crypt.check_recipient_certificate(cert, now=NOW + timedelta(days=60))


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384,
                                       KeyAlgorithm.RSA_2048])
def test_round_trip_for_several_recipients(store: KeyStore, ca, algorithm) -> None:
    alice = Party(store, *ca, algorithm, "alice@x.example")
    bob = Party(store, *ca, KeyAlgorithm.EC_P256, "bob@x.example")
    data = secrets.token_bytes(1000) + b"end"
    blob = crypt.encrypt_cms(data, [alice.cert, bob.cert])
    for party in (alice, bob):
        if store.name == "pkcs11" and algorithm.is_rsa and party is alice:
            # SoftHSM2 2.6 does RSA-OAEP with SHA-1 only (we encrypt with SHA-256).
            with pytest.raises(CryptoError):
                crypt.decrypt_cms(blob, [party.cert], party.unwrap)
            continue
        assert crypt.decrypt_cms(blob, [party.cert], party.unwrap) == data
    stranger = Party(store, *ca, KeyAlgorithm.EC_P256, "eve@x.example")
    with pytest.raises(NotFound):
        crypt.decrypt_cms(blob, [stranger.cert], stranger.unwrap)


def test_wrong_key_or_tampering_fails_cleanly(ca) -> None:
    store = SoftwareKeyStore(secrets.token_bytes(32))
    alice = Party(store, *ca, KeyAlgorithm.EC_P256, "alice@x.example")
    mallory = Party(store, *ca, KeyAlgorithm.EC_P256, "m@x.example")
    blob = crypt.encrypt_cms(b"secret", [alice.cert])
    info = crypt.recipient_info_for(
        cms.ContentInfo.load(blob)["content"]["recipient_infos"], alice.cert)
    assert info is not None
    parsed = envelope.parse_recipient_info(info)
    with pytest.raises(envelope.UnwrapFailed):
        envelope.unwrap_content_key(parsed, 0, mallory.handle)
    rsa_party = Party(store, *ca, KeyAlgorithm.RSA_2048, "r@x.example")
    with pytest.raises(InvalidInput):
        envelope.unwrap_content_key(parsed, 0, rsa_party.handle)
    for garbage in (b"", b"\x30\x00", b"\x00" * 50, info[:-5], base64.b64encode(info)):
        with pytest.raises(InvalidInput):
            envelope.parse_recipient_info(garbage)


def test_pkcs1v15_key_transport_is_refused(ca, tmp_path: Path) -> None:
    store = SoftwareKeyStore(secrets.token_bytes(32))
    alice = Party(store, *ca, KeyAlgorithm.RSA_2048, "alice@x.example")
    cert = tmp_path / "a.pem"
    cert.write_bytes(alice.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "in.txt").write_bytes(b"hello")
    r = openssl("cms", "-encrypt", "-binary", "-aes256", "-outform", "DER",
                "-in", tmp_path / "in.txt", "-out", tmp_path / "out.p7m", cert)
    assert r.returncode == 0, r.stderr
    with pytest.raises(InvalidInput, match=r"PKCS#1 v1\.5"):
        crypt.decrypt_cms((tmp_path / "out.p7m").read_bytes(), [alice.cert], alice.unwrap)


@pytest.mark.parametrize("algorithm,keyopts", [
    (KeyAlgorithm.EC_P256, ()),
    (KeyAlgorithm.EC_P384, ("-keyopt", "ecdh_kdf_md:sha256")),
    (KeyAlgorithm.RSA_2048, ("-keyopt", "rsa_padding_mode:oaep")),
    (KeyAlgorithm.RSA_2048, ("-keyopt", "rsa_padding_mode:oaep",
                             "-keyopt", "rsa_oaep_md:sha256")),
])
@pytest.mark.parametrize("form", ["DER", "PEM", "SMIME"])
def test_openssl_both_ways(ca, tmp_path: Path, algorithm, keyopts, form) -> None:
    master = secrets.token_bytes(32)
    store = SoftwareKeyStore(master)
    alice = Party(store, *ca, algorithm, "alice@x.example")
    cert, key = tmp_path / "alice.pem", tmp_path / "alice.key"
    cert.write_bytes(alice.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(key_pem(export_software_key(master, alice.handle.key_ref)))
    data = b"line one\nline two\n" + secrets.token_bytes(300)
    src = tmp_path / "in.bin"
    src.write_bytes(data)

    # openssl encrypts for our certificate, we decrypt through the key store.
    out = tmp_path / "from-openssl"
    r = openssl("cms", "-encrypt", "-binary", "-aes256", "-outform", form, "-in", src,
                "-out", out, "-recip", cert, *keyopts)
    assert r.returncode == 0, r.stderr
    assert crypt.decrypt_cms(out.read_bytes(), [alice.cert], alice.unwrap) == data

    # we encrypt, openssl decrypts with the exported key.
    ours = tmp_path / "ours.p7m"
    ours.write_bytes(crypt.encrypt_cms(data, [alice.cert]))
    r = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", ours,
                "-inkey", key, "-recip", cert)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_openssl_aes_gcm_auth_enveloped(ca, tmp_path: Path) -> None:
    store = SoftwareKeyStore(secrets.token_bytes(32))
    alice = Party(store, *ca, KeyAlgorithm.EC_P256, "alice@x.example")
    cert = tmp_path / "alice.pem"
    cert.write_bytes(alice.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "in").write_bytes(b"authenticated\n")
    r = openssl("cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER",
                "-in", tmp_path / "in", "-out", tmp_path / "out", "-recip", cert)
    if r.returncode != 0:
        pytest.skip(f"this openssl has no AuthEnvelopedData: {r.stderr[:200]!r}")
    blob = (tmp_path / "out").read_bytes()
    assert crypt.decrypt_cms(blob, [alice.cert], alice.unwrap) == b"authenticated\n"
    tampered = bytearray(blob)
    tampered[-20] ^= 1
    with pytest.raises((CryptoError, InvalidInput)):
        crypt.decrypt_cms(bytes(tampered), [alice.cert], alice.unwrap)
