"""Decryption keys in both key stores: RSA-OAEP decryption and ECDH, kept
apart from signing keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sealkeeper.crypto.digests import Hashed
from sealkeeper.crypto.keystore.base import (
    KeyAlgorithm,
    KeyPurpose,
    KeyStore,
    OaepHash,
    SignatureScheme,
)
from sealkeeper.errors import CryptoError

BACKENDS = ["software", pytest.param("pkcs11", marks=pytest.mark.hsm)]
OAEP = {OaepHash.SHA1: hashes.SHA1, OaepHash.SHA256: hashes.SHA256,
        OaepHash.SHA384: hashes.SHA384, OaepHash.SHA512: hashes.SHA512}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> KeyStore:
    result: KeyStore = request.getfixturevalue(f"enc_{request.param}_store")
    return result


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384])
def test_ecdh_matches_the_senders_secret(store: KeyStore, algorithm: KeyAlgorithm) -> None:
    gen = store.generate(algorithm, label="t-ecdh", purpose=KeyPurpose.DECRYPT)
    public = gen.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert store.public_key(gen.key_ref).public_numbers() == public.public_numbers()
    for _ in range(3):
        ephemeral = ec.generate_private_key(public.curve)
        expected = ephemeral.exchange(ec.ECDH(), public)
        assert store.derive_shared(gen.key_ref, ephemeral.public_key()) == expected
    other = ec.generate_private_key(ec.SECP384R1() if algorithm == KeyAlgorithm.EC_P256
                                    else ec.SECP256R1())
    with pytest.raises(CryptoError):
        store.derive_shared(gen.key_ref, other.public_key())
    # A decryption key never signs.
    with pytest.raises(CryptoError):
        store.sign_digest(gen.key_ref, Hashed.of(b"x"), SignatureScheme.ECDSA)


def test_rsa_oaep_decrypts(store: KeyStore) -> None:
    gen = store.generate(KeyAlgorithm.RSA_2048, label="t-oaep", purpose=KeyPurpose.DECRYPT)
    public = gen.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    cek = b"\x07" * 32
    for name, h in OAEP.items():
        wrapped = public.encrypt(cek, padding.OAEP(padding.MGF1(h()), h(), None))
        try:
            assert store.decrypt_key(gen.key_ref, wrapped, name) == cek
        except CryptoError:
            # SoftHSM2 2.6 only does OAEP with SHA-1; other hashes are refused cleanly.
            assert store.name == "pkcs11" and name is not OaepHash.SHA1
    bad = public.encrypt(cek, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    with pytest.raises(CryptoError):
        store.decrypt_key(gen.key_ref, bad[:-1] + bytes([bad[-1] ^ 1]), OaepHash.SHA1)
    with pytest.raises(CryptoError):
        store.sign_digest(gen.key_ref, Hashed.of(b"x"), SignatureScheme.RSA_PKCS1V15)


def test_signing_keys_do_not_decrypt(store: KeyStore) -> None:
    ec_key = store.generate(KeyAlgorithm.EC_P256, label="t-sign")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(CryptoError):
        store.derive_shared(ec_key.key_ref, peer)
    rsa_key = store.generate(KeyAlgorithm.RSA_2048, label="t-sign-rsa")
    public = rsa_key.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    wrapped = public.encrypt(b"k" * 32, padding.OAEP(padding.MGF1(hashes.SHA1()),
                                                     hashes.SHA1(), None))
    with pytest.raises(CryptoError):
        store.decrypt_key(rsa_key.key_ref, wrapped, OaepHash.SHA1)
    # ... and an EC key does not do RSA, nor an RSA key ECDH.
    dec = store.generate(KeyAlgorithm.EC_P256, label="t-dec", purpose=KeyPurpose.DECRYPT)
    with pytest.raises(CryptoError):
        store.decrypt_key(dec.key_ref, wrapped, OaepHash.SHA1)


def test_software_purpose_cannot_be_relabelled(enc_software_store: KeyStore) -> None:
    gen = enc_software_store.generate(KeyAlgorithm.EC_P256, label="x",
                                      purpose=KeyPurpose.DECRYPT)
    assert gen.key_ref.startswith(b"SKSD")
    forged = b"SKSW" + gen.key_ref[4:]
    with pytest.raises(CryptoError):
        enc_software_store.sign_digest(forged, Hashed.of(b"x"), SignatureScheme.ECDSA)
