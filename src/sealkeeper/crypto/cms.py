"""Fast detached CMS SignedData (RFC 5652) for CAdES / PAdES signatures.

Scope: the server's native signing path. A :class:`CmsTemplate` is built once
per (signer certificate chain, digest algorithm, signature scheme, PAdES or
not); building it uses asn1crypto for every structure. Per signature, the
template only splices the message digest, the signing time and the signature
value into pre-encoded DER and computes the enclosing lengths, which costs a
few microseconds instead of the 8-45 ms of building the objects again (see
``PERFORMANCE-NOTES``: asn1crypto re-encodes any value whose length header
ends in 0x80).

The output is canonical DER: SET OF contents are sorted, SHA-2 digest
algorithm identifiers carry no parameters (RFC 5754), and the signer is named
by issuerAndSerialNumber (SignerInfo and SignedData version 1). Signed
attributes: contentType (id-data), messageDigest, signingCertificateV2
(RFC 5035; no issuerSerial, as EN 319 122-1 recommends) and, unless the
template is for PAdES, signingTime. Unsigned attributes, such as a signature
time-stamp token (:func:`timestamp_attribute`), are spliced in as given.

Typical use::

    tpl = CmsTemplate([signer_cert, ca_cert], DigestAlgorithm.SHA256,
                      SignatureScheme.ECDSA)
    attrs = tpl.signed_attributes(document_digest, now)
    signature = key_store.sign_digest(key_ref, tpl.to_be_signed_digest(attrs), tpl.scheme)
    der = tpl.assemble(attrs, signature)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from asn1crypto import algos, tsp
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.crypto.keystore.base import KeyAlgorithm, SignatureScheme
from sealkeeper.errors import InvalidInput

__all__ = ["CmsTemplate", "timestamp_attribute"]

_ID_SIGNED_DATA = "signed_data"
_SIGNATURE_TIMESTAMP_ATTR = "signature_time_stamp_token"

# RFC 5652 section 11.3: UTCTime for 1950..2049, GeneralizedTime otherwise.
_UTCTIME_FIRST_YEAR = 1950
_UTCTIME_END_YEAR = 2050


# ---------------------------------------------------------------- DER helpers


_SHORT_LENGTHS = tuple(bytes((n,)) for n in range(0x80))


def _der_len(n: int) -> bytes:
    """The DER length octets for a content of ``n`` bytes (short or long form)."""
    if n < 0x80:
        return _SHORT_LENGTHS[n]
    if n < 0x100:
        return b"\x81" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\x82" + n.to_bytes(2, "big")
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    """One TLV with a single-octet ``tag`` and a definite DER length."""
    return bytes((tag,)) + _der_len(len(content)) + content


def _tlv_span(data: bytes, what: str) -> tuple[int, int]:
    """Check that ``data`` is exactly one DER TLV; return (tag, header length).

    Rejects high tag numbers, indefinite and non-minimal lengths, and trailing
    or missing bytes. Costs well under a microsecond.
    """
    size = len(data)
    if size < 2 or data[0] & 0x1F == 0x1F:
        raise InvalidInput(f"{what} is not a DER value")
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or size < 2 + count or data[2] == 0:
            raise InvalidInput(f"{what} has an indefinite or non-DER length")
        length = int.from_bytes(data[2:2 + count], "big")
        if length < 0x80:
            raise InvalidInput(f"{what} has a non-minimal length")
        header = 2 + count
    if header + length != size:
        raise InvalidInput(f"{what} length does not match its content")
    return data[0], header


# ------------------------------------------------------- template construction


def _certificate_der(cert: x509.Certificate | bytes) -> bytes:
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(Encoding.DER)
    if isinstance(cert, bytes | bytearray | memoryview):
        return bytes(cert)
    raise InvalidInput("certificates must be x509.Certificate objects or DER bytes",
                       field="certificates")


def _key_algorithm(cert: x509.Certificate) -> KeyAlgorithm:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return KeyAlgorithm.EC_P256
        if isinstance(key.curve, ec.SECP384R1):
            return KeyAlgorithm.EC_P384
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size == 2048:
            return KeyAlgorithm.RSA_2048
        if key.key_size == 3072:
            return KeyAlgorithm.RSA_3072
    raise InvalidInput("the signer certificate's key type is not supported",
                       field="certificates")


def _digest_algorithm_id(alg: DigestAlgorithm) -> bytes:
    """AlgorithmIdentifier with absent parameters (RFC 5754 section 2)."""
    # asn1crypto forces NULL parameters on SHA-2 when constructing, so build
    # the SEQUENCE around its OID encoding and let asn1crypto check the result.
    der = _tlv(0x30, algos.DigestAlgorithmId(alg.oid).dump())
    return bytes(algos.DigestAlgorithm.load(der, strict=True).dump())


def _signature_algorithm_id(alg: DigestAlgorithm, scheme: SignatureScheme) -> bytes:
    name = alg.value  # "sha256", ...
    value: algos.SignedDigestAlgorithm
    if scheme is SignatureScheme.ECDSA:
        value = algos.SignedDigestAlgorithm({"algorithm": f"{name}_ecdsa"})
    elif scheme is SignatureScheme.RSA_PKCS1V15:
        # parameters NULL (RFC 4055 section 5), added by asn1crypto
        value = algos.SignedDigestAlgorithm({"algorithm": f"{name}_rsa"})
    else:
        # RFC 4055: explicit parameters, MGF1 with the same hash, salt = hash size;
        # the hash identifiers inside carry NULL parameters (RFC 4055 section 2.1).
        params = algos.RSASSAPSSParams({
            "hash_algorithm": {"algorithm": name},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": name}},
            "salt_length": alg.size,
        })
        value = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    return bytes(value.dump())


def _signing_certificate_v2_attr(signer_der: bytes, alg: DigestAlgorithm) -> bytes:
    cert_id: dict[str, object] = {"cert_hash": hashlib.new(alg.value, signer_der).digest()}
    if alg is not DigestAlgorithm.SHA256:
        # SHA-256 is the DEFAULT and must then be omitted (DER, RFC 5035)
        cert_id["hash_algorithm"] = algos.DigestAlgorithm.load(_digest_algorithm_id(alg))
    value = tsp.SigningCertificateV2({"certs": [tsp.ESSCertIDv2(cert_id)]})
    attr = asn1_cms.CMSAttribute({"type": "signing_certificate_v2", "values": [value]})
    return bytes(attr.dump())


def _prefix_before(encoded: bytes, tail: bytes) -> bytes:
    """The bytes of ``encoded`` before the placeholder ``tail`` it ends with."""
    if not encoded.endswith(tail):  # pragma: no cover - asn1crypto invariant
        raise AssertionError("unexpected asn1crypto encoding of a template attribute")
    return encoded[: len(encoded) - len(tail)]


def _time_attr_prefix(utc: bool) -> bytes:
    # A placeholder time of the right kind; only the header bytes are kept.
    when = datetime(2000 if utc else 2100, 1, 1, tzinfo=UTC)
    choice = {"utc_time": when} if utc else {"generalized_time": when}
    attr = asn1_cms.CMSAttribute({"type": "signing_time", "values": [asn1_cms.Time(choice)]})
    text = b"000101000000Z" if utc else b"21000101000000Z"
    return _prefix_before(bytes(attr.dump()), text)


# ---------------------------------------------------------------- the template


class CmsTemplate:
    """Pre-encoded detached SignedData for one signer and algorithm set.

    Never mutated after construction, so safe to share between threads. Build it
    once per (certificate chain, digest algorithm, scheme, pades) and reuse it.

    :param certificates: the signer's certificate first, then any chain
        certificates to embed (x509.Certificate or DER bytes).
    :param digest_algorithm: hashes the document and the signed attributes.
    :param scheme: how the key store turns the digest into a signature.
    :param key_algorithm: if given, must match the signer certificate's key.
    :param pades: omit signingTime (PAdES baseline forbids it).
    """

    __slots__ = (
        "_attr_content_type", "_attr_md_prefix", "_attr_signing_cert",
        "_attr_time_general_prefix", "_attr_time_utc_prefix", "_ci_prefix",
        "_digest_size", "_hash", "_sd_prefix", "_si_prefix", "_si_sig_alg", "certificates_der",
        "digest_algorithm", "key_algorithm", "pades", "scheme",
    )

    def __init__(
        self,
        certificates: Sequence[x509.Certificate | bytes],
        digest_algorithm: DigestAlgorithm,
        scheme: SignatureScheme,
        *,
        key_algorithm: KeyAlgorithm | None = None,
        pades: bool = False,
    ) -> None:
        if not certificates:
            raise InvalidInput("at least the signer certificate is needed", field="certificates")
        ders: list[bytes] = []
        for cert in certificates:
            der = _certificate_der(cert)
            if der not in ders:
                ders.append(der)
        try:
            parsed = [x509.load_der_x509_certificate(d) for d in ders]
            tbs = asn1_x509.Certificate.load(ders[0], strict=True)["tbs_certificate"]
        except ValueError as e:
            raise InvalidInput("a certificate is not valid DER", field="certificates") from e

        actual = _key_algorithm(parsed[0])
        if key_algorithm is not None and key_algorithm is not actual:
            raise InvalidInput(f"the signer certificate holds an {actual.value} key, "
                               f"not {key_algorithm.value}", field="key_algorithm")
        if actual.is_rsa == (scheme is SignatureScheme.ECDSA):
            raise InvalidInput(f"scheme {scheme.value} does not fit an {actual.value} key",
                               field="scheme")

        self.digest_algorithm = digest_algorithm
        self.scheme = scheme
        self.key_algorithm = actual
        self.pades = pades
        self.certificates_der: tuple[bytes, ...] = tuple(ders)
        self._hash: Callable[[bytes], hashlib._Hash] = getattr(hashlib, digest_algorithm.value)
        self._digest_size = digest_algorithm.size

        # --- SignerInfo pieces (version 1, issuerAndSerialNumber)
        sid = asn1_cms.SignerIdentifier({
            "issuer_and_serial_number": asn1_cms.IssuerAndSerialNumber({
                "issuer": tbs["issuer"], "serial_number": tbs["serial_number"],
            }),
        })
        if bytes(tbs["issuer"].dump()) not in ders[0]:  # pragma: no cover - non-DER cert
            raise InvalidInput("the signer certificate's issuer name is not DER-encoded",
                               field="certificates")
        digest_alg_id = _digest_algorithm_id(digest_algorithm)
        self._si_prefix = (asn1_cms.CMSVersion(1).dump() + sid.dump() + digest_alg_id)
        self._si_sig_alg = _signature_algorithm_id(digest_algorithm, scheme)

        # --- SignedData prefix: version 1, digestAlgorithms, detached id-data,
        # certificates [0] IMPLICIT SET OF (sorted: DER), the certificates' own
        # bytes spliced unchanged.
        digest_algs = _tlv(0x31, digest_alg_id)
        encap = asn1_cms.EncapsulatedContentInfo({"content_type": "data"}).dump()
        cert_set = _tlv(0xA0, b"".join(sorted(ders)))
        self._sd_prefix = asn1_cms.CMSVersion(1).dump() + digest_algs + encap + cert_set
        self._ci_prefix = asn1_cms.ContentType(_ID_SIGNED_DATA).dump()

        # --- signed attribute skeleton
        size = digest_algorithm.size
        self._attr_content_type = bytes(asn1_cms.CMSAttribute(
            {"type": "content_type", "values": ["data"]}).dump())
        placeholder = bytes(size)
        md_attr = asn1_cms.CMSAttribute({"type": "message_digest", "values": [placeholder]})
        self._attr_md_prefix = _prefix_before(bytes(md_attr.dump()), placeholder)
        self._attr_signing_cert = _signing_certificate_v2_attr(ders[0], digest_algorithm)
        self._attr_time_utc_prefix = _time_attr_prefix(utc=True)
        self._attr_time_general_prefix = _time_attr_prefix(utc=False)

    # ------------------------------------------------------------ per signature

    @property
    def signer_certificate_der(self) -> bytes:
        return self.certificates_der[0]

    def signed_attributes(self, message_digest: bytes | Hashed,
                          signing_time: datetime | None = None) -> bytes:
        """The DER SET OF signed attributes (tag 0x31): the bytes to hash and sign.

        ``message_digest`` is the document's digest under the template's
        algorithm. ``signing_time`` must be timezone-aware; it is encoded to
        the second. It is left out when ``None`` and always for a PAdES
        template (PAdES carries the time in the signature dictionary).
        """
        if isinstance(message_digest, Hashed):
            if message_digest.algorithm is not self.digest_algorithm:
                raise InvalidInput(
                    f"the digest is {message_digest.algorithm.value}, the signature "
                    f"uses {self.digest_algorithm.value}", field="digest")
            digest = message_digest.digest
        else:
            digest = message_digest
            if len(digest) != self._digest_size:
                raise InvalidInput(
                    f"a {self.digest_algorithm.value} digest is "
                    f"{self.digest_algorithm.size} bytes, got {len(digest)}", field="digest")
        parts = [self._attr_content_type, self._attr_md_prefix + digest, self._attr_signing_cert]
        if signing_time is not None and not self.pades:
            parts.append(self._signing_time_attr(signing_time))
        parts.sort()  # DER SET OF order
        body = b"".join(parts)
        return b"\x31" + _der_len(len(body)) + body

    def to_be_signed_digest(self, signed_attrs_der: bytes) -> Hashed:
        """The digest of the signed attributes, as the key store signs it."""
        return Hashed(self.digest_algorithm, self._hash(signed_attrs_der).digest())

    def assemble(self, signed_attrs_der: bytes, signature: bytes,
                 unsigned_attrs: list[bytes] | None = None) -> bytes:
        """The complete ContentInfo DER.

        ``signed_attrs_der`` is the output of :meth:`signed_attributes`
        (re-tagged [0] IMPLICIT here); ``signature`` the key store's value
        (DER ECDSA-Sig-Value or the RSA signature); ``unsigned_attrs`` are
        encoded Attribute values, e.g. from :func:`timestamp_attribute`.
        """
        tag, _ = _tlv_span(signed_attrs_der, "signed attributes")
        if tag != 0x31:
            raise InvalidInput("signed attributes must be a DER SET OF")
        if not signature:
            raise InvalidInput("the signature is empty")
        sig_hdr = b"\x04" + _der_len(len(signature))
        unsigned = b""
        if unsigned_attrs:
            for attr in unsigned_attrs:
                if _tlv_span(attr, "unsigned attribute")[0] != 0x30:
                    raise InvalidInput("an unsigned attribute must be a SEQUENCE")
            body = b"".join(sorted(unsigned_attrs))
            unsigned = b"\xa1" + _der_len(len(body)) + body

        si_len = (len(self._si_prefix) + len(signed_attrs_der) + len(self._si_sig_alg)
                  + len(sig_hdr) + len(signature) + len(unsigned))
        si_hdr = b"\x30" + _der_len(si_len)
        sis_len = len(si_hdr) + si_len
        sis_hdr = b"\x31" + _der_len(sis_len)
        sd_len = len(self._sd_prefix) + len(sis_hdr) + sis_len
        sd_hdr = b"\x30" + _der_len(sd_len)
        explicit_len = len(sd_hdr) + sd_len
        explicit_hdr = b"\xa0" + _der_len(explicit_len)
        ci_len = len(self._ci_prefix) + len(explicit_hdr) + explicit_len
        return b"".join((
            b"\x30", _der_len(ci_len), self._ci_prefix, explicit_hdr,
            sd_hdr, self._sd_prefix, sis_hdr, si_hdr, self._si_prefix,
            b"\xa0", memoryview(signed_attrs_der)[1:], self._si_sig_alg,
            sig_hdr, signature, unsigned,
        ))

    def build(self, message_digest: bytes | Hashed, signing_time: datetime | None,
              sign_digest: Callable[[Hashed], bytes],
              unsigned_attrs: list[bytes] | None = None) -> bytes:
        """Signed attributes, one ``sign_digest`` call, and :meth:`assemble`."""
        attrs = self.signed_attributes(message_digest, signing_time)
        return self.assemble(attrs, sign_digest(self.to_be_signed_digest(attrs)),
                             unsigned_attrs)

    # ----------------------------------------------------------------- helpers

    def _signing_time_attr(self, when: datetime) -> bytes:
        if when.utcoffset() is None:
            raise InvalidInput("the signing time must be timezone-aware", field="signing_time")
        t = when.astimezone(UTC)
        year = t.year
        if _UTCTIME_FIRST_YEAR <= year < _UTCTIME_END_YEAR:
            return self._attr_time_utc_prefix + b"%02d%02d%02d%02d%02d%02dZ" % (
                year % 100, t.month, t.day, t.hour, t.minute, t.second)
        return self._attr_time_general_prefix + b"%04d%02d%02d%02d%02d%02dZ" % (
            year, t.month, t.day, t.hour, t.minute, t.second)


def timestamp_attribute(token_der: bytes) -> bytes:
    """The id-aa-signatureTimeStampToken unsigned attribute (RFC 3161 appendix A).

    ``token_der`` is the TimeStampToken (a ContentInfo holding SignedData) as
    returned by the TSA; its bytes are kept unchanged.
    """
    try:
        token = asn1_cms.ContentInfo.load(token_der, strict=True)
        content_type = token["content_type"].native
    except ValueError as e:
        raise InvalidInput("the time-stamp token is not a CMS ContentInfo",
                           field="timestamp_token") from e
    if content_type != _ID_SIGNED_DATA:
        raise InvalidInput("the time-stamp token does not hold SignedData",
                           field="timestamp_token")
    oid = asn1_cms.CMSAttributeType(_SIGNATURE_TIMESTAMP_ATTR).dump()
    return _tlv(0x30, oid + _tlv(0x31, bytes(token_der)))

