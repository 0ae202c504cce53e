"""RSA-PSS with the salt length a CSC client declares in signAlgoParams (pyHanko
asks for the largest one): both key stores sign with it, and refuse lengths
outside 0..emLen-hLen-2."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, KeyHandle, KeyStore, SignatureScheme
from sealkeeper.crypto.keystore.software import SoftwareKeyStore
from sealkeeper.errors import InvalidInput
from softhsm import make_softhsm_token, softhsm_missing_reason


@pytest.fixture(scope="module", params=["software", "pkcs11"])
def store(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStore]:
    if request.param == "software":
        yield SoftwareKeyStore(secrets.token_bytes(32))
        return
    reason = softhsm_missing_reason()
    if reason:
        pytest.skip(reason)
    from sealkeeper.crypto.keystore.pkcs11 import Pkcs11KeyStore

    token = make_softhsm_token(tmp_path_factory.mktemp("softhsm-pss"))
    p11 = Pkcs11KeyStore(token["module"], token["label"], token["pin"], reconnect_interval=0)
    yield p11
    p11.close()


@pytest.mark.parametrize("digest,top", [(DigestAlgorithm.SHA256, 222),
                                        (DigestAlgorithm.SHA512, 190)])
def test_pss_salt_length(store: KeyStore, digest: DigestAlgorithm, top: int) -> None:
    gen = store.generate(KeyAlgorithm.RSA_2048, label="csc-pss")
    handle = KeyHandle(store, gen.key_ref, KeyAlgorithm.RSA_2048)
    public = gen.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    hashed = Hashed.of(b"document", digest)
    h = {DigestAlgorithm.SHA256: hashes.SHA256, DigestAlgorithm.SHA512: hashes.SHA512}[digest]
    for salt in (0, digest.size, top):
        sig = handle.sign(hashed, SignatureScheme.RSA_PSS, pss_salt_length=salt)
        public.verify(sig, hashed.digest, padding.PSS(padding.MGF1(h()), salt), Prehashed(h()))
    # the default stays salt = digest size
    sig = handle.sign(hashed, SignatureScheme.RSA_PSS)
    public.verify(sig, hashed.digest, padding.PSS(padding.MGF1(h()), digest.size),
                  Prehashed(h()))
    for bad in (top + 1, -1, 10_000):
        with pytest.raises(InvalidInput) as e:
            handle.sign(hashed, SignatureScheme.RSA_PSS, pss_salt_length=bad)
        assert e.value.field == "pss_salt_length"
    store.destroy(gen.key_ref)
