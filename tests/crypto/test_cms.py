"""Tests of the fast detached CMS builder, checked by independent verifiers.

A throw-away PKI (root -> intermediate -> leaves and a TSA) is built here with
cryptography; every CMS is verified by OpenSSL's ``cms -verify``, parsed and
canonically re-encoded by asn1crypto, and validated by pyHanko.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core, keys, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sealkeeper.crypto.cms import CmsTemplate, _der_len, _tlv, _tlv_span, timestamp_attribute
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, SignatureScheme
from sealkeeper.errors import InvalidInput

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DATA = b"%PDF-1.7 pretend this is the signed byte range\n" * 50

_HASHES: dict[DigestAlgorithm, type[hashes.HashAlgorithm]] = {
    DigestAlgorithm.SHA256: hashes.SHA256,
    DigestAlgorithm.SHA384: hashes.SHA384,
    DigestAlgorithm.SHA512: hashes.SHA512,
}


# ------------------------------------------------------------------ test PKI


@dataclass
class Pki:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaves: dict[str, tuple[Any, x509.Certificate]]
    tsa_key: rsa.RSAPrivateKey
    tsa: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sealkeeper Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, public_key: Any, issuer: x509.Certificate | None, issuer_key: Any,
           *, ca: bool, eku: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _issue("Test Root", root_key.public_key(), None, root_key, ca=True)
    int_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _issue("Test Issuing CA", int_key.public_key(), root, root_key, ca=True)
    leaves: dict[str, tuple[Any, x509.Certificate]] = {}
    for name, key in (("p256", ec.generate_private_key(ec.SECP256R1())),
                      ("p384", ec.generate_private_key(ec.SECP384R1())),
                      ("rsa2048", rsa.generate_private_key(65537, 2048))):
        leaves[name] = (key, _issue(f"Seal {name}", key.public_key(), intermediate, int_key,
                                    ca=False))
    tsa_key = rsa.generate_private_key(65537, 2048)  # pyHanko's DummyTimeStamper is RSA-only
    tsa = _issue("Test TSA", tsa_key.public_key(), intermediate, int_key, ca=False,
                 eku=ExtendedKeyUsageOID.TIME_STAMPING)
    return Pki(root, intermediate, leaves, tsa_key, tsa)


def _sign(key: Any, scheme: SignatureScheme, hashed: Hashed) -> bytes:
    """Sign a digest the way the key stores do: Prehashed."""
    algo = _HASHES[hashed.algorithm]()
    if scheme is SignatureScheme.ECDSA:
        return bytes(key.sign(hashed.digest, ec.ECDSA(Prehashed(algo))))
    if scheme is SignatureScheme.RSA_PKCS1V15:
        return bytes(key.sign(hashed.digest, padding.PKCS1v15(), Prehashed(algo)))
    pss = padding.PSS(mgf=padding.MGF1(_HASHES[hashed.algorithm]()),
                      salt_length=hashed.algorithm.size)
    return bytes(key.sign(hashed.digest, pss, Prehashed(algo)))


CASES = [
    ("p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA),
    ("p256", DigestAlgorithm.SHA512, SignatureScheme.ECDSA),
    ("p384", DigestAlgorithm.SHA384, SignatureScheme.ECDSA),
    ("rsa2048", DigestAlgorithm.SHA256, SignatureScheme.RSA_PKCS1V15),
    ("rsa2048", DigestAlgorithm.SHA384, SignatureScheme.RSA_PKCS1V15),
    ("rsa2048", DigestAlgorithm.SHA256, SignatureScheme.RSA_PSS),
    ("rsa2048", DigestAlgorithm.SHA512, SignatureScheme.RSA_PSS),
]
CASE_IDS = [f"{k}-{d.value}-{s.value}" for k, d, s in CASES]


def _template(pki: Pki, leaf: str, alg: DigestAlgorithm, scheme: SignatureScheme,
              *, pades: bool = False) -> CmsTemplate:
    return CmsTemplate([pki.leaves[leaf][1], pki.intermediate], alg, scheme, pades=pades)


def _make_cms(pki: Pki, leaf: str, alg: DigestAlgorithm, scheme: SignatureScheme, *,
              pades: bool = False, data: bytes = DATA,
              unsigned: list[bytes] | None = None) -> bytes:
    tpl = _template(pki, leaf, alg, scheme, pades=pades)
    key = pki.leaves[leaf][0]
    return tpl.build(Hashed.of(data, alg), NOW, lambda h: _sign(key, scheme, h), unsigned)


def _signer_info(der: bytes) -> asn1_cms.SignerInfo:
    ci = asn1_cms.ContentInfo.load(der, strict=True)
    assert ci["content_type"].native == "signed_data"
    infos = ci["content"]["signer_infos"]
    assert len(infos) == 1
    return infos[0]


def _attrs(si: asn1_cms.SignerInfo) -> dict[str, list[Any]]:
    return {a["type"].native: list(a["values"]) for a in si["signed_attrs"]}


def _assert_canonical(der: bytes) -> asn1_cms.ContentInfo:
    """asn1crypto parses it and its forced DER re-encoding is byte-identical."""
    ci = asn1_cms.ContentInfo.load(der, strict=True)
    ci.native  # parse everything
    assert asn1_cms.ContentInfo.load(der).dump(force=True) == der
    return ci


# ------------------------------------------------------------ (a) OpenSSL


def _openssl_verify(tmp: Path, cms_der: bytes, content: bytes, root: x509.Certificate) -> bool:
    (tmp / "sig.der").write_bytes(cms_der)
    (tmp / "data.bin").write_bytes(content)
    (tmp / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER",
         "-in", str(tmp / "sig.der"), "-content", str(tmp / "data.bin"),
         "-CAfile", str(tmp / "root.pem"), "-purpose", "any", "-out", os.devnull],
        capture_output=True, check=False, timeout=60)
    return proc.returncode == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
@pytest.mark.parametrize(("leaf", "alg", "scheme"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("pades", [False, True], ids=["cades", "pades"])
def test_openssl_verifies_and_detects_tampering(
        pki: Pki, tmp_path: Path, leaf: str, alg: DigestAlgorithm, scheme: SignatureScheme,
        pades: bool) -> None:
    der = _make_cms(pki, leaf, alg, scheme, pades=pades)
    assert _openssl_verify(tmp_path, der, DATA, pki.root)
    tampered = bytearray(DATA)
    tampered[100] ^= 0x01
    assert not _openssl_verify(tmp_path, der, bytes(tampered), pki.root)


# ------------------------------------------------------ (b) asn1crypto parse


@pytest.mark.parametrize(("leaf", "alg", "scheme"), CASES, ids=CASE_IDS)
def test_structure_parses_and_is_canonical_der(
        pki: Pki, leaf: str, alg: DigestAlgorithm, scheme: SignatureScheme) -> None:
    leaf_cert = pki.leaves[leaf][1]
    der = _make_cms(pki, leaf, alg, scheme)
    ci = _assert_canonical(der)
    sd = ci["content"]
    assert sd["version"].native == "v1"
    assert [a["algorithm"].native for a in sd["digest_algorithms"]] == [alg.value]
    # RFC 5754: SHA-2 AlgorithmIdentifiers are generated without parameters
    assert sd["digest_algorithms"][0].dump() == core.Sequence.load(
        _tlv(0x30, core.ObjectIdentifier(alg.oid).dump())).dump()
    assert sd["encap_content_info"]["content_type"].native == "data"
    assert sd["encap_content_info"]["content"].native is None  # detached
    embedded = {c.chosen.dump() for c in sd["certificates"]}
    assert embedded == {leaf_cert.public_bytes(serialization.Encoding.DER),
                        pki.intermediate.public_bytes(serialization.Encoding.DER)}

    si = sd["signer_infos"][0]
    assert si["version"].native == "v1"
    ias = si["sid"].chosen
    asn1_leaf = asn1_x509.Certificate.load(leaf_cert.public_bytes(serialization.Encoding.DER))
    assert ias["issuer"] == asn1_leaf.issuer
    assert ias["serial_number"].native == leaf_cert.serial_number
    assert si["digest_algorithm"]["algorithm"].native == alg.value
    sig_alg = si["signature_algorithm"]
    if scheme is SignatureScheme.ECDSA:
        assert sig_alg["algorithm"].native == f"{alg.value}_ecdsa"
        assert sig_alg["parameters"].native is None
    elif scheme is SignatureScheme.RSA_PKCS1V15:
        assert sig_alg["algorithm"].native == f"{alg.value}_rsa"
        assert isinstance(sig_alg["parameters"], core.Null)
    else:
        assert sig_alg["algorithm"].native == "rsassa_pss"
        params = sig_alg["parameters"].native
        assert params["hash_algorithm"]["algorithm"] == alg.value
        assert params["mask_gen_algorithm"]["algorithm"] == "mgf1"
        assert params["mask_gen_algorithm"]["parameters"]["algorithm"] == alg.value
        assert params["salt_length"] == alg.size

    attrs = _attrs(si)
    assert set(attrs) == {"content_type", "message_digest", "signing_certificate_v2",
                          "signing_time"}
    assert all(len(v) == 1 for v in attrs.values())
    assert attrs["content_type"][0].native == "data"
    assert attrs["message_digest"][0].native == hashlib.new(alg.value, DATA).digest()
    assert attrs["signing_time"][0].native == NOW
    cert_id = attrs["signing_certificate_v2"][0]["certs"][0]
    leaf_der = leaf_cert.public_bytes(serialization.Encoding.DER)
    assert cert_id["cert_hash"].native == hashlib.new(alg.value, leaf_der).digest()
    assert cert_id["hash_algorithm"]["algorithm"].native == alg.value
    raw_cert_id = parser.parse(cert_id.dump())
    first_child = parser.parse(raw_cert_id[4])
    # RFC 5035: hashAlgorithm is DEFAULT sha256, so DER omits it for SHA-256
    assert (first_child[2] == 4) == (alg is DigestAlgorithm.SHA256)

    # the signature covers the signed attributes as a SET OF (tag 0x31)
    signed_set = b"\x31" + si["signed_attrs"].dump()[1:]
    public_key = leaf_cert.public_key()
    signature = si["signature"].native
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, signed_set, ec.ECDSA(_HASHES[alg]()))
    elif scheme is SignatureScheme.RSA_PKCS1V15:
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(signature, signed_set, padding.PKCS1v15(), _HASHES[alg]())
    else:
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(signature, signed_set,
                          padding.PSS(padding.MGF1(_HASHES[alg]()), alg.size), _HASHES[alg]())


def test_signed_attributes_are_what_gets_signed(pki: Pki) -> None:
    tpl = _template(pki, "p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    digest = Hashed.of(DATA)
    attrs = tpl.signed_attributes(digest, NOW)
    assert attrs[0] == 0x31
    assert tpl.to_be_signed_digest(attrs) == Hashed.of(attrs)
    # bytes and Hashed inputs give the same attributes
    assert tpl.signed_attributes(digest.digest, NOW) == attrs
    parsed = asn1_cms.CMSAttributes.load(attrs, strict=True)
    assert parsed.dump(force=True) == attrs  # DER SET OF order
    der = tpl.assemble(attrs, b"\x30\x06\x02\x01\x01\x02\x01\x01")
    si = _signer_info(der)
    assert si["signed_attrs"].dump() == b"\xa0" + attrs[1:]


# -------------------------------------------------------------- (c) pyHanko


def _pyhanko_status(der: bytes, pki: Pki, data: bytes = DATA) -> Any:
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    root = asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))
    vc = ValidationContext(trust_roots=[root], allow_fetching=False,
                           revocation_mode="soft-fail")
    signed_data = asn1_cms.ContentInfo.load(der)["content"]
    return asyncio.run(async_validate_detached_cms(data, signed_data,
                                                   signer_validation_context=vc))


@pytest.mark.parametrize(("leaf", "alg", "scheme"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("pades", [False, True], ids=["cades", "pades"])
def test_pyhanko_validates(pki: Pki, leaf: str, alg: DigestAlgorithm,
                           scheme: SignatureScheme, pades: bool) -> None:
    der = _make_cms(pki, leaf, alg, scheme, pades=pades)
    status = _pyhanko_status(der, pki)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.bottom_line
    assert status.signer_reported_dt == (None if pades else NOW)

    bad = _pyhanko_status(der, pki, DATA + b"x")
    assert not bad.intact
    assert not bad.bottom_line


def test_pyhanko_validates_signature_timestamp(pki: Pki) -> None:
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    alg, scheme = DigestAlgorithm.SHA256, SignatureScheme.ECDSA
    tpl = _template(pki, "p256", alg, scheme)
    attrs = tpl.signed_attributes(Hashed.of(DATA), NOW)
    signature = _sign(pki.leaves["p256"][0], scheme, tpl.to_be_signed_digest(attrs))

    tsa_key = keys.PrivateKeyInfo.load(pki.tsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    stamper = DummyTimeStamper(
        asn1_x509.Certificate.load(pki.tsa.public_bytes(serialization.Encoding.DER)), tsa_key,
        certs_to_embed=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(
            pki.intermediate.public_bytes(serialization.Encoding.DER))]))
    token = asyncio.run(stamper.async_timestamp(hashlib.sha256(signature).digest(), "sha256"))
    token_der = token.dump()

    der = tpl.assemble(attrs, signature, [timestamp_attribute(token_der)])
    ci = _assert_canonical(der)
    si = ci["content"]["signer_infos"][0]
    unsigned = si["unsigned_attrs"]
    assert [a["type"].native for a in unsigned] == ["signature_time_stamp_token"]
    assert unsigned[0]["values"][0].dump() == token_der
    status = _pyhanko_status(der, pki)
    assert status.bottom_line, status.pretty_print_details()
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.intact and status.timestamp_validity.valid
    assert status.timestamp_validity.trusted


# ---------------------------------------------------------------- (d) PAdES


def test_pades_omits_signing_time(pki: Pki) -> None:
    der = _make_cms(pki, "p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA, pades=True)
    _assert_canonical(der)
    attrs = _attrs(_signer_info(der))
    assert set(attrs) == {"content_type", "message_digest", "signing_certificate_v2"}


def test_cades_without_time_omits_signing_time(pki: Pki) -> None:
    tpl = _template(pki, "p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    attrs = tpl.signed_attributes(Hashed.of(DATA), None)
    parsed = asn1_cms.CMSAttributes.load(attrs)
    assert "signing_time" not in {a["type"].native for a in parsed}


@pytest.mark.parametrize(("when", "kind"), [
    (dt.datetime(1950, 1, 1, tzinfo=dt.UTC), "utc_time"),
    (dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC), "utc_time"),
    (dt.datetime(2050, 1, 1, tzinfo=dt.UTC), "generalized_time"),
    (dt.datetime(1949, 12, 31, 23, 59, 59, tzinfo=dt.UTC), "generalized_time"),
    (dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=2))), "utc_time"),
])
def test_signing_time_encoding(pki: Pki, when: dt.datetime, kind: str) -> None:
    tpl = _template(pki, "p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    attrs = tpl.signed_attributes(Hashed.of(DATA), when.replace(microsecond=654321))
    parsed = asn1_cms.CMSAttributes.load(attrs, strict=True)
    assert parsed.dump(force=True) == attrs
    (time_attr,) = [a for a in parsed if a["type"].native == "signing_time"]
    value = time_attr["values"][0]
    assert value.name == kind
    assert value.native == when.astimezone(dt.UTC)  # to the second, in UTC


# ------------------------------------------------------- (e) length encoding


def _reference_header(tag: int, n: int) -> bytes:
    encoded = bytes(parser.emit(0, 0, tag, b"\x00" * n))
    return encoded[: len(encoded) - n]


@pytest.mark.parametrize("n", [0, 1, 127, 128, 129, 255, 256, 257, 383, 384, 385,
                               0xFFFF, 0x10000, 0x10080, 0xFFFFFF, 0x1000000])
def test_der_len_matches_asn1crypto(n: int) -> None:
    assert b"\x04" + _der_len(n) == _reference_header(4, n)
    tlv = _tlv(0x04, b"\x00" * n)
    assert _tlv_span(tlv, "x") == (0x04, len(tlv) - n)
    assert parser.parse(tlv, strict=True)[4] == b"\x00" * n


def test_der_len_large_values() -> None:
    assert _der_len(2**32 - 1) == b"\x84\xff\xff\xff\xff"
    assert _der_len(2**32) == b"\x85\x01\x00\x00\x00\x00"


@pytest.mark.parametrize("bad", [
    b"", b"\x04", b"\x04\x80\x00\x00",            # indefinite
    b"\x04\x81\x05abcde",                          # non-minimal
    b"\x04\x82\x00\x80" + b"a" * 128,              # leading zero
    b"\x04\x03ab", b"\x04\x01ab",                  # short / trailing
    b"\x1f\x22\x01a",                              # high tag number
])
def test_tlv_span_rejects(bad: bytes) -> None:
    with pytest.raises(InvalidInput):
        _tlv_span(bad, "value")


def _tlv_reencode(data: bytes) -> bytes:
    """asn1crypto's own DER TLV re-encoding of a byte string, recursively.

    Independent of the module's length code and fast (the full asn1crypto
    object re-encoding costs ~0.5 s per CMS, see asn1crypto issue #249).
    """
    out = []
    while data:
        size = parser.peek(data)
        class_, method, tag, _header, content, trailer = parser.parse(data[:size], strict=True)
        assert trailer == b""  # definite lengths only
        out.append(parser.emit(class_, method, tag,
                               _tlv_reencode(content) if method == 1 else content))
        data = data[size:]
    return b"".join(out)


def _child(der: bytes, index: int) -> bytes:
    """The ``index``-th child TLV of the constructed value ``der``."""
    content = parser.parse(der, strict=True)[4]
    for _ in range(index):
        content = content[parser.peek(content):]
    return bytes(content[: parser.peek(content)])


def _level_lengths(der: bytes) -> list[int]:
    """Content lengths of every variable-length level, outermost first:
    ContentInfo, [0], SignedData, signerInfos, SignerInfo, signature."""
    explicit = _child(der, 1)
    signed_data = _child(explicit, 0)
    signer_infos = _child(signed_data, 4)
    signer_info = _child(signer_infos, 0)
    signature = _child(signer_info, 5)
    return [len(parser.parse(v)[4])
            for v in (der, explicit, signed_data, signer_infos, signer_info, signature)]


def _interesting(length: int) -> bool:
    """Length values at a DER length-encoding edge, or that trip asn1crypto #249."""
    return length in (127, 128, 255, 256, 0xFFFF, 0x10000) or length & 0xFF == 0x80


def test_every_length_boundary_matches_asn1crypto(pki: Pki) -> None:
    tpl = _template(pki, "p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    attrs = tpl.signed_attributes(Hashed.of(DATA), NOW)
    rng = random.Random(1234)

    # Sweeping 300 consecutive signature sizes takes every level through a full
    # cycle of its low length byte (127/128, 255/256, ...0x80 lengths).
    sizes = set(range(1, 301))
    # ...and every level across the 2-byte/3-byte boundary at 65536.
    for level_len in _level_lengths(tpl.assemble(attrs, b"\x00" * 1000)):
        base = 1000 + 0x10000 - level_len
        sizes.update(range(base - 4, base + 5))
    seen: set[int] = set()
    full_check: dict[tuple[int, int], int] = {}
    for size in sorted(sizes):
        signature = rng.randbytes(size)
        der = tpl.assemble(attrs, signature)
        assert _tlv_reencode(der) == der, size
        assert _child(_child(_child(_child(_child(der, 1), 0), 4), 0), 5) == \
            b"\x04" + _der_len(size) + signature
        lengths = _level_lengths(der)
        seen.update(lengths)
        for level, length in enumerate(lengths):
            if _interesting(length):
                full_check.setdefault((level, length), size)
    for boundary in (127, 128, 255, 256, 384, 0xFFFF, 0x10000):
        assert boundary in seen, boundary

    # The full asn1crypto object re-encoding (slow) on one size per edge case.
    assert len(full_check) >= 18
    for size in sorted(set(full_check.values())):
        signature = rng.randbytes(size)
        der = tpl.assemble(attrs, signature)
        ci = asn1_cms.ContentInfo.load(der)
        assert ci["content"]["signer_infos"][0]["signature"].native == signature
        assert asn1_cms.ContentInfo.load(der).dump(force=True) == der, size


def test_unsigned_attribute_lengths_match_asn1crypto(pki: Pki) -> None:
    tpl = _template(pki, "rsa2048", DigestAlgorithm.SHA256, SignatureScheme.RSA_PSS)
    attrs = tpl.signed_attributes(Hashed.of(DATA), NOW)
    signature = b"\x5a" * 256
    for size in [*range(100, 140), *range(230, 270), 380, 384, 0xFFF0, 0x10000]:
        attr = asn1_cms.CMSAttribute({"type": "1.3.6.1.4.1.55555.1",
                                      "values": [core.OctetString(b"\x07" * size)]}).dump()
        other = asn1_cms.CMSAttribute({"type": "1.3.6.1.4.1.55555.0",
                                       "values": [core.Integer(size)]}).dump()
        der = tpl.assemble(attrs, signature, [attr, other])
        assert _tlv_reencode(der) == der, size
        unsigned = _child(_child(_child(_child(_child(der, 1), 0), 4), 0), 6)
        assert unsigned[0] == 0xA1
        assert _tlv_reencode(b"\x31" + unsigned[1:]) == _tlv(0x31, b"".join(sorted([attr, other])))
        if size in (128, 256, 384):
            assert asn1_cms.ContentInfo.load(der).dump(force=True) == der, size
            parsed = _signer_info(der)["unsigned_attrs"]
            assert [a.dump() for a in parsed] == sorted([attr, other])


# ------------------------------------------------------------- other checks


def test_certificate_inputs_as_der_or_objects_are_equivalent(pki: Pki) -> None:
    leaf = pki.leaves["p256"][1]
    chain = [leaf, pki.intermediate, pki.root]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    a = CmsTemplate(chain, DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    b = CmsTemplate([*ders, ders[1]], DigestAlgorithm.SHA256, SignatureScheme.ECDSA,
                    key_algorithm=KeyAlgorithm.EC_P256)
    assert a.certificates_der == b.certificates_der == tuple(ders)  # duplicates dropped
    assert a.signer_certificate_der == ders[0]
    attrs = a.signed_attributes(Hashed.of(DATA), NOW)
    assert a.assemble(attrs, b"sig") == b.assemble(attrs, b"sig")
    certs = asn1_cms.ContentInfo.load(a.assemble(attrs, b"sig"))["content"]["certificates"]
    assert [c.chosen.dump() for c in certs] == sorted(ders)  # DER SET OF order


def test_template_rejects_bad_inputs(pki: Pki) -> None:
    ec_leaf, rsa_leaf = pki.leaves["p256"][1], pki.leaves["rsa2048"][1]
    with pytest.raises(InvalidInput):
        CmsTemplate([], DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    with pytest.raises(InvalidInput):
        CmsTemplate([ec_leaf], DigestAlgorithm.SHA256, SignatureScheme.RSA_PSS)
    with pytest.raises(InvalidInput):
        CmsTemplate([rsa_leaf], DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    with pytest.raises(InvalidInput):
        CmsTemplate([ec_leaf], DigestAlgorithm.SHA256, SignatureScheme.ECDSA,
                    key_algorithm=KeyAlgorithm.EC_P384)
    with pytest.raises(InvalidInput):
        CmsTemplate([b"\x30\x03\x02\x01\x01"], DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    ed_key = ec.generate_private_key(ec.SECP521R1())
    p521 = _issue("P-521", ed_key.public_key(), None, ed_key, ca=False)
    with pytest.raises(InvalidInput):
        CmsTemplate([p521], DigestAlgorithm.SHA512, SignatureScheme.ECDSA)


def test_per_signature_inputs_are_checked(pki: Pki) -> None:
    tpl = _template(pki, "p256", DigestAlgorithm.SHA256, SignatureScheme.ECDSA)
    with pytest.raises(InvalidInput):
        tpl.signed_attributes(b"\x00" * 31, NOW)
    with pytest.raises(InvalidInput):
        tpl.signed_attributes(Hashed.of(DATA, DigestAlgorithm.SHA384), NOW)
    with pytest.raises(InvalidInput):
        tpl.signed_attributes(Hashed.of(DATA), dt.datetime(2026, 1, 1))  # naive
    attrs = tpl.signed_attributes(Hashed.of(DATA), NOW)
    with pytest.raises(InvalidInput):
        tpl.assemble(b"\xa0" + attrs[1:], b"sig")
    with pytest.raises(InvalidInput):
        tpl.assemble(attrs[:-1], b"sig")
    with pytest.raises(InvalidInput):
        tpl.assemble(attrs, b"")
    with pytest.raises(InvalidInput):
        tpl.assemble(attrs, b"sig", [b"\x04\x01a"])
    with pytest.raises(InvalidInput):
        timestamp_attribute(b"\x30\x03\x02\x01\x01")
    with pytest.raises(InvalidInput):
        timestamp_attribute(asn1_cms.ContentInfo({"content_type": "data",
                                                  "content": b"x"}).dump())


def test_timestamp_attribute_keeps_token_bytes(pki: Pki) -> None:
    token = _make_cms(pki, "p384", DigestAlgorithm.SHA384, SignatureScheme.ECDSA)
    attr = timestamp_attribute(token)
    parsed = asn1_cms.CMSAttribute.load(attr, strict=True)
    assert parsed["type"].native == "signature_time_stamp_token"
    assert parsed["values"][0].dump() == token
    assert attr.endswith(token)
