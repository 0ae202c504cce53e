"""Key stores: software (sealed under a master key) and PKCS#11 (SoftHSM2)."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from pkcs11 import Attribute, ObjectClass

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import GeneratedKey, KeyAlgorithm, KeyStore, SignatureScheme
from sealkeeper.crypto.keystore.factory import build_keystore
from sealkeeper.crypto.keystore.pkcs11 import PEPPER_KEY_LABEL, Pkcs11KeyStore
from sealkeeper.crypto.keystore.software import (
    MASTER_KEY_FILENAME,
    SoftwareKeyStore,
    load_master_key,
)
from sealkeeper.errors import ConfigurationError, CryptoError, InvalidInput, KeyStoreUnavailable
from softhsm import make_softhsm_token, softhsm_missing_reason

SOFTHSM_SKIP_REASON = softhsm_missing_reason()
needs_softhsm = [pytest.mark.hsm,
                 pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))]
BACKENDS = ["software", pytest.param("pkcs11", marks=needs_softhsm)]

COMBOS = [
    (KeyAlgorithm.EC_P256, SignatureScheme.ECDSA),
    (KeyAlgorithm.EC_P384, SignatureScheme.ECDSA),
    (KeyAlgorithm.RSA_2048, SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA_2048, SignatureScheme.RSA_PSS),
    (KeyAlgorithm.RSA_3072, SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA_3072, SignatureScheme.RSA_PSS),
]
_HASHES = {DigestAlgorithm.SHA256: hashes.SHA256, DigestAlgorithm.SHA384: hashes.SHA384,
           DigestAlgorithm.SHA512: hashes.SHA512}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> KeyStore:
    result: KeyStore = request.getfixturevalue(f"{request.param}_store")
    return result


@pytest.fixture(scope="module")
def key_cache() -> dict[tuple[int, KeyAlgorithm], GeneratedKey]:
    """Keys generated once per module and store (RSA-3072 generation is slow)."""
    return {}


def _key(store: KeyStore, cache: dict[tuple[int, KeyAlgorithm], GeneratedKey],
         algorithm: KeyAlgorithm) -> GeneratedKey:
    if (id(store), algorithm) not in cache:
        cache[(id(store), algorithm)] = store.generate(algorithm, label=f"test {algorithm.value}")
    return cache[(id(store), algorithm)]


def _verify(public: Any, signature: bytes, hashed: Hashed, scheme: SignatureScheme) -> None:
    h = _HASHES[hashed.algorithm]()
    if scheme is SignatureScheme.ECDSA:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, hashed.digest, ec.ECDSA(Prehashed(h)))
    elif scheme is SignatureScheme.RSA_PKCS1V15:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, hashed.digest, padding.PKCS1v15(), Prehashed(h))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        public.verify(signature, hashed.digest, pss, Prehashed(h))


def _spki(public: Any) -> bytes:
    der: bytes = public.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


# --------------------------------------------------------------------------- both backends

@pytest.mark.parametrize("digest_alg", [DigestAlgorithm.SHA256, DigestAlgorithm.SHA384])
@pytest.mark.parametrize(("algorithm", "scheme"), COMBOS,
                         ids=[f"{a.value}-{s.value}" for a, s in COMBOS])
def test_sign_digest_verifies(store: KeyStore, key_cache: dict[tuple[int, KeyAlgorithm],
                              GeneratedKey], algorithm: KeyAlgorithm, scheme: SignatureScheme,
                              digest_alg: DigestAlgorithm) -> None:
    key = _key(store, key_cache, algorithm)
    public = store.public_key(key.key_ref)
    assert _spki(public) == _spki(key.public_key)
    if algorithm.is_rsa:
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}[
            algorithm]
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == {KeyAlgorithm.EC_P256: "secp256r1",
                                     KeyAlgorithm.EC_P384: "secp384r1"}[algorithm]

    hashed = Hashed.of(b"document " + secrets.token_bytes(8), digest_alg)
    signature = store.sign_digest(key.key_ref, hashed, scheme)
    _verify(public, signature, hashed, scheme)
    if scheme is SignatureScheme.ECDSA:
        decode_dss_signature(signature)  # DER ECDSA-Sig-Value
    with pytest.raises(InvalidSignature):
        _verify(public, signature, Hashed.of(b"other", digest_alg), scheme)


def test_scheme_must_fit_the_key(store: KeyStore,
                                 key_cache: dict[tuple[int, KeyAlgorithm], GeneratedKey]) -> None:
    ec_key = _key(store, key_cache, KeyAlgorithm.EC_P256)
    rsa_key = _key(store, key_cache, KeyAlgorithm.RSA_2048)
    hashed = Hashed.of(b"x")
    with pytest.raises(InvalidInput):
        store.sign_digest(ec_key.key_ref, hashed, SignatureScheme.RSA_PSS)
    with pytest.raises(InvalidInput):
        store.sign_digest(rsa_key.key_ref, hashed, SignatureScheme.ECDSA)


@pytest.mark.parametrize("bad_ref", [b"", b"garbage", b"SKSW\x07", b"SKP1\x07ec-p256"])
def test_malformed_ref_is_crypto_error(store: KeyStore, bad_ref: bytes) -> None:
    with pytest.raises(CryptoError):
        store.sign_digest(bad_ref, Hashed.of(b"x"), SignatureScheme.ECDSA)
    with pytest.raises(CryptoError):
        store.public_key(bad_ref)


def test_pepper_mac_is_deterministic(store: KeyStore) -> None:
    mac = store.pepper_mac(b"1234")
    assert len(mac) == 32
    assert store.pepper_mac(b"1234") == mac
    assert store.pepper_mac(b"1235") != mac


def test_concurrent_signing(store: KeyStore,
                            key_cache: dict[tuple[int, KeyAlgorithm], GeneratedKey]) -> None:
    key = _key(store, key_cache, KeyAlgorithm.EC_P256)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(25):
                hashed = Hashed.of(f"{threading.get_ident()}-{i}".encode())
                _verify(key.public_key, store.sign_digest(key.key_ref, hashed,
                                                          SignatureScheme.ECDSA),
                        hashed, SignatureScheme.ECDSA)
                store.pepper_mac(b"p")
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --------------------------------------------------------------------------- software store

def test_software_ref_does_not_contain_the_private_key(software_store: SoftwareKeyStore) -> None:
    for algorithm in (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048):
        ref = software_store.generate(algorithm, label="x").key_ref
        private = software_store._open(ref)[1]
        pkcs8 = private.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        assert pkcs8 not in ref
        assert pkcs8[-32:] not in ref  # not even the tail (EC scalar / RSA CRT value)
        assert ref.startswith(b"SKSW\x01")


def test_software_tampered_ref_is_refused() -> None:
    store = SoftwareKeyStore(secrets.token_bytes(32))
    ref = store.generate(KeyAlgorithm.EC_P256, label="x").key_ref
    hashed = Hashed.of(b"x")

    flipped = ref[:-1] + bytes([ref[-1] ^ 1])
    swapped_alg = ref.replace(b"ec-p256", b"ec-p384", 1)  # AAD binds the algorithm
    for bad in (flipped, swapped_alg, ref[:-20], ref + b"\x00"):
        with pytest.raises(CryptoError):
            store.sign_digest(bad, hashed, SignatureScheme.ECDSA)


def test_software_wrong_master_key_is_refused() -> None:
    ref = SoftwareKeyStore(secrets.token_bytes(32)).generate(KeyAlgorithm.EC_P256,
                                                             label="x").key_ref
    other = SoftwareKeyStore(secrets.token_bytes(32))
    with pytest.raises(CryptoError, match="wrong master key"):
        other.sign_digest(ref, Hashed.of(b"x"), SignatureScheme.ECDSA)
    with pytest.raises(CryptoError):
        other.public_key(ref)


def test_software_same_master_key_opens_refs_of_another_instance() -> None:
    master = secrets.token_bytes(32)
    key = SoftwareKeyStore(master).generate(KeyAlgorithm.RSA_2048, label="x")
    hashed = Hashed.of(b"x")
    signature = SoftwareKeyStore(master).sign_digest(key.key_ref, hashed, SignatureScheme.RSA_PSS)
    _verify(key.public_key, signature, hashed, SignatureScheme.RSA_PSS)


def test_software_pepper_differs_across_master_keys() -> None:
    master = secrets.token_bytes(32)
    assert SoftwareKeyStore(master).pepper_mac(b"1234") == \
        SoftwareKeyStore(master).pepper_mac(b"1234")
    assert SoftwareKeyStore(master).pepper_mac(b"1234") != \
        SoftwareKeyStore(secrets.token_bytes(32)).pepper_mac(b"1234")


def test_software_cache_is_bounded_and_destroy_evicts() -> None:
    store = SoftwareKeyStore(secrets.token_bytes(32), cache_size=2)
    refs = [store.generate(KeyAlgorithm.EC_P256, label="x").key_ref for _ in range(3)]
    assert "cached_keys=2" in repr(store)
    for ref in refs:  # evicted keys are opened again from the ref
        store.sign_digest(ref, Hashed.of(b"x"), SignatureScheme.ECDSA)
    store.destroy(refs[-1])
    assert "cached_keys=1" in repr(store)
    # Documented: the ref itself still opens; deleting the caller's row destroys the key.
    store.sign_digest(refs[-1], Hashed.of(b"x"), SignatureScheme.ECDSA)


def test_software_repr_hides_the_master_key() -> None:
    master = secrets.token_bytes(32)
    store = SoftwareKeyStore(master)
    text = repr(store) + str(store)
    for form in (master.hex(), base64.b64encode(master).decode(), repr(master)):
        assert form not in text
    assert not any(v == master for v in vars(store).values())


def test_software_rejects_wrong_master_key_size() -> None:
    with pytest.raises(ConfigurationError):
        SoftwareKeyStore(b"short")


# --------------------------------------------------------------------------- master key loading

def test_master_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_master_key(data_dir, env_value=None, file=None, create=True)
    path = data_dir / MASTER_KEY_FILENAME
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text().strip()) == first
    assert load_master_key(data_dir, env_value=None, file=None, create=True) == first
    assert load_master_key(data_dir, env_value=None, file=None, create=False) == first
    assert [p.name for p in data_dir.iterdir()] == [MASTER_KEY_FILENAME]  # no temp file left


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_master_key(tmp_path, env_value=None, file=None, create=True)
    path = tmp_path / MASTER_KEY_FILENAME
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_master_key(tmp_path, env_value=None, file=None, create=True)
    path.chmod(0o640)
    with pytest.raises(ConfigurationError):
        load_master_key(tmp_path, env_value=None, file=None, create=True)


def test_master_key_missing_without_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_master_key(tmp_path, env_value=None, file=None, create=False)
    assert not (tmp_path / MASTER_KEY_FILENAME).exists()


def test_master_key_from_env(tmp_path: Path) -> None:
    master = secrets.token_bytes(32)
    encoded = base64.b64encode(master).decode()
    assert load_master_key(tmp_path, env_value=encoded, file=None, create=True) == master
    assert load_master_key(tmp_path, env_value=f" {encoded}\n", file=None, create=True) == master
    assert not (tmp_path / MASTER_KEY_FILENAME).exists()
    for bad in ("not base64!", base64.b64encode(b"too short").decode()):
        with pytest.raises(ConfigurationError) as info:
            load_master_key(tmp_path, env_value=bad, file=None, create=True)
        assert bad not in info.value.message
    with pytest.raises(ConfigurationError):
        load_master_key(tmp_path, env_value=encoded, file=tmp_path / "k", create=True)


def test_master_key_from_explicit_file(tmp_path: Path) -> None:
    master = secrets.token_bytes(32)
    raw, text = tmp_path / "raw.key", tmp_path / "text.key"
    for path, content in ((raw, master), (text, base64.b64encode(master) + b"\n")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, content)
        os.close(fd)
        assert load_master_key(tmp_path, env_value=None, file=path, create=True) == master
    with pytest.raises(ConfigurationError):
        load_master_key(tmp_path, env_value=None, file=tmp_path / "absent.key", create=True)
    assert not (tmp_path / MASTER_KEY_FILENAME).exists()


# --------------------------------------------------------------------------- factory

def test_factory_builds_software_store(tmp_path: Path) -> None:
    store = build_keystore("software", data_dir=tmp_path, master_key_env=None,
                           master_key_file=None, pkcs11_module=None, pkcs11_token_label=None,
                           pkcs11_pin=None)
    assert isinstance(store, SoftwareKeyStore)
    assert store.name == "software"
    assert (tmp_path / MASTER_KEY_FILENAME).exists()
    again = build_keystore("software", data_dir=tmp_path)
    assert again.pepper_mac(b"x") == store.pepper_mac(b"x")


def test_factory_refuses_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        build_keystore("vault", data_dir=tmp_path)
    with pytest.raises(ConfigurationError) as info:
        build_keystore("pkcs11", data_dir=tmp_path, pkcs11_module="/nonexistent.so",
                       pkcs11_token_label="t", pkcs11_pin=None)
    assert info.value.field == "pkcs11_pin"
    with pytest.raises(ConfigurationError):
        build_keystore("pkcs11", data_dir=tmp_path, pkcs11_module="/nonexistent.so",
                       pkcs11_token_label="t", pkcs11_pin="1234")


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_factory_builds_pkcs11_store(tmp_path: Path, softhsm_token: dict[str, str]) -> None:
    store = build_keystore("pkcs11", data_dir=tmp_path,
                           pkcs11_module=softhsm_token["module"],
                           pkcs11_token_label=softhsm_token["label"],
                           pkcs11_pin=softhsm_token["pin"])
    assert isinstance(store, Pkcs11KeyStore)
    assert store.name == "pkcs11"
    assert softhsm_token["pin"] not in repr(store)
    assert len(store.pepper_mac(b"x")) == 32


# --------------------------------------------------------------------------- PKCS#11 store

def _inspect(token: dict[str, str]) -> pkcs11.Session:
    """A second, read-only session (login state is shared within the process)."""
    tok = pkcs11.lib(token["module"]).get_token(token_label=token["label"])
    return tok.open()


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_private_key_is_sensitive_and_not_extractable(
        pkcs11_store: Pkcs11KeyStore, softhsm_token: dict[str, str]) -> None:
    key = pkcs11_store.generate(KeyAlgorithm.EC_P256, label="attrs")
    cka_id = key.key_ref[-16:]
    with _inspect(softhsm_token) as session:
        priv = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=cka_id)
        assert priv[Attribute.SENSITIVE] is True
        assert priv[Attribute.EXTRACTABLE] is False
        assert priv[Attribute.TOKEN] is True
        assert priv[Attribute.PRIVATE] is True
        assert priv[Attribute.SIGN] is True
        assert priv[Attribute.DECRYPT] is False
        assert priv[Attribute.LABEL] == "attrs"
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            priv[Attribute.VALUE]
        pepper_store_mac = pkcs11_store.pepper_mac(b"x")
        pepper = session.get_key(object_class=ObjectClass.SECRET_KEY, label=PEPPER_KEY_LABEL)
        assert pepper[Attribute.SENSITIVE] is True
        assert pepper[Attribute.EXTRACTABLE] is False
        assert pepper[Attribute.TOKEN] is True
        assert len(pepper_store_mac) == 32
    pkcs11_store.destroy(key.key_ref)


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_destroy_removes_the_objects(pkcs11_store: Pkcs11KeyStore,
                                            softhsm_token: dict[str, str]) -> None:
    key = pkcs11_store.generate(KeyAlgorithm.EC_P256, label="doomed")
    cka_id = key.key_ref[-16:]
    pkcs11_store.sign_digest(key.key_ref, Hashed.of(b"x"), SignatureScheme.ECDSA)  # cached
    pkcs11_store.destroy(key.key_ref)
    with _inspect(softhsm_token) as session:
        assert list(session.get_objects({Attribute.ID: cka_id})) == []
    with pytest.raises(CryptoError):
        pkcs11_store.sign_digest(key.key_ref, Hashed.of(b"x"), SignatureScheme.ECDSA)
    with pytest.raises(CryptoError):
        pkcs11_store.public_key(key.key_ref)
    pkcs11_store.destroy(key.key_ref)  # idempotent


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_pepper_is_shared_by_stores_on_one_token(
        pkcs11_store: Pkcs11KeyStore, softhsm_token: dict[str, str],
        tmp_path: Path) -> None:
    other = Pkcs11KeyStore(softhsm_token["module"], softhsm_token["label"], softhsm_token["pin"])
    assert other.pepper_mac(b"1234") == pkcs11_store.pepper_mac(b"1234")
    second_token = make_softhsm_token(tmp_path)
    elsewhere = Pkcs11KeyStore(second_token["module"], second_token["label"],
                               second_token["pin"], reconnect_interval=0)
    assert elsewhere.pepper_mac(b"1234") != pkcs11_store.pepper_mac(b"1234")
    elsewhere.close()


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_wrong_pin_is_a_configuration_error(tmp_path: Path) -> None:
    token = make_softhsm_token(tmp_path)  # nobody logged in to it in this process
    store = Pkcs11KeyStore(token["module"], token["label"], "0000", reconnect_interval=0)
    with pytest.raises(ConfigurationError):
        store.pepper_mac(b"x")
    with pytest.raises(ConfigurationError):  # not retried: would lock the PIN
        store.pepper_mac(b"x")


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_recovers_when_the_token_appears(softhsm_token: dict[str, str],
                                                tmp_path: Path) -> None:
    label = f"late-{secrets.token_hex(4)}"
    store = Pkcs11KeyStore(softhsm_token["module"], label, "1234", reconnect_interval=0)
    with pytest.raises(KeyStoreUnavailable):
        store.pepper_mac(b"x")
    make_softhsm_token(tmp_path, label=label, pin="1234")
    assert len(store.pepper_mac(b"x")) == 32
    store.close()


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_recovers_after_the_module_was_reset(pkcs11_store: Pkcs11KeyStore,
                                                    softhsm_token: dict[str, str]) -> None:
    key = pkcs11_store.generate(KeyAlgorithm.EC_P256, label="reset")
    mac = pkcs11_store.pepper_mac(b"x")
    pkcs11.lib(softhsm_token["module"]).reinitialize()  # every session handle is now invalid
    hashed = Hashed.of(b"after reset")
    _verify(key.public_key, pkcs11_store.sign_digest(key.key_ref, hashed, SignatureScheme.ECDSA),
            hashed, SignatureScheme.ECDSA)
    assert pkcs11_store.pepper_mac(b"x") == mac
    pkcs11_store.destroy(key.key_ref)


@pytest.mark.hsm
@pytest.mark.skipif(bool(SOFTHSM_SKIP_REASON), reason=str(SOFTHSM_SKIP_REASON))
def test_pkcs11_token_disappears_and_returns(softhsm_token: dict[str, str],
                                             tmp_path: Path) -> None:
    token_root = Path(softhsm_token["conf_path"]).parent / "softhsm-tokens"
    before = set(token_root.iterdir())
    token = make_softhsm_token(tmp_path)
    (token_dir,) = set(token_root.iterdir()) - before
    store = Pkcs11KeyStore(token["module"], token["label"], token["pin"], reconnect_interval=0)
    key = store.generate(KeyAlgorithm.EC_P256, label="k")
    mac = store.pepper_mac(b"x")
    hashed = Hashed.of(b"x")
    store.sign_digest(key.key_ref, hashed, SignatureScheme.ECDSA)

    away = tmp_path / "away"
    shutil.move(token_dir, away)  # the token vanishes under the open session
    try:
        for _ in range(2):
            with pytest.raises(KeyStoreUnavailable):
                store.sign_digest(key.key_ref, hashed, SignatureScheme.ECDSA)
    finally:
        shutil.move(away, token_dir)

    signature = store.sign_digest(key.key_ref, hashed, SignatureScheme.ECDSA)  # no restart
    _verify(key.public_key, signature, hashed, SignatureScheme.ECDSA)
    assert store.pepper_mac(b"x") == mac
    store.close()
